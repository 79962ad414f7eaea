/**
 * The MAR-style generator (src/pipelines/mar.ts) trained in its default configuration
 * on the embedded MNIST digits outside the demo's held-out split, then scored: 16 generated
 * images per digit judged by a classifier. Prints one JSON line (generation_accuracy, per digit,
 * judge accuracy, parameters, seconds, config) and writes the
 * samples as a grid (rows: samples, columns: digits 0–9).
 *
 *   MMNTP_THREADS=1 node --import tsx scripts/mar-generate.ts                    # the default
 *   node --import tsx scripts/mar-generate.ts --set steps=50 --out /tmp/mar.png    # a smoke run
 *   node --import tsx scripts/mar-generate.ts --set sampling.guidance=2
 */
import "../src/engine/node.ts";
import { applyOverrides, parseArgs } from "../src/cli/args.ts";
import { MNIST_INFO } from "../src/data/mnist.ts";
import { writeGrayGrid } from "../src/io/png.ts";
import { DEFAULT_MAR } from "../src/pipelines/mar-config.ts";
import { runMarGeneration } from "../src/pipelines/mar.ts";

const SPEC = {
  usage: "node --import tsx scripts/mar-generate.ts",
  options: [
    { name: "set", type: "string", multiple: true, help: "override a config key by dotted path, e.g. steps=500 or sampling.guidance=2" },
    { name: "out", type: "string", help: "where the sample grid PNG goes (default runs/mar/samples.png)" },
  ],
} as const;

const args = parseArgs(process.argv.slice(2), SPEC);
if (args.kind === "help") {
  console.log(args.text);
  process.exit(0);
}
const { report, grid } = await runMarGeneration(applyOverrides(DEFAULT_MAR, args.values.set ?? []));
const out = args.values.out ?? "runs/mar/samples.png";
const { height, width } = MNIST_INFO;
writeGrayGrid(out, grid, { height, width, cols: MNIST_INFO.classes.length });
console.log(JSON.stringify({ ...report, samples_png: out }));
