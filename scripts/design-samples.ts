/**
 * Draws a class grid from a saved generator run (`mmntp train --preset mar-mnist |
 * transfusion-mnist`): `--per` samples of each caption "a handwritten d", one column per digit,
 * with the run's sampling settings or overrides of them; prints one JSON line (seconds, the
 * sampling used) and writes the grid for scripts/compare-designs.ts to score.
 *
 *   node --import tsx scripts/design-samples.ts --run runs/transfusion-mnist --set clip=1 --set guidance=2 --out /tmp/tf.png
 */
import "../src/engine/node.ts";
import { applyOverrides, parseArgs } from "../src/cli/args.ts";
import { caption } from "../src/data/captions.ts";
import { MNIST_INFO } from "../src/data/mnist.ts";
import { InputError } from "../src/io/errors.ts";
import { writeGrayGrid } from "../src/io/png.ts";
import { disposeDesignRun, loadDesignRun } from "../src/pipelines/design-run.ts";
import { sampleMar } from "../src/pipelines/mar.ts";
import { sampleTransfusion } from "../src/pipelines/transfusion.ts";
import type { DiffusionSampling } from "../src/generate/diffusion.ts";

const SPEC = {
  usage: "node --import tsx scripts/design-samples.ts --run DIR --out GRID.png",
  options: [
    { name: "run", type: "string", required: true, help: "a mar-mnist or transfusion-mnist run folder" },
    { name: "out", type: "string", required: true, help: "the grid PNG to write" },
    { name: "set", type: "string", multiple: true, help: "override a sampling setting, e.g. guidance=2, steps=100, eta=1, clip=1" },
    { name: "per", type: "number", default: 16, help: "samples per digit" },
    { name: "seed", type: "number", default: 0, help: "sampling seed" },
  ],
} as const;

const args = parseArgs(process.argv.slice(2), SPEC);
if (args.kind === "help") {
  console.log(args.text);
  process.exit(0);
}
const run = await loadDesignRun(args.values.run);
if (run.preset === "llava-mnist") throw new InputError(`${args.values.run} is a llava-mnist run, which captions; give a mar-mnist or transfusion-mnist run`);
// `clip` is optional in the sampling settings, so overrides start from a copy that has it
const base: DiffusionSampling = { clip: 0, ...run.model.config.sampling };
const sampling = applyOverrides(base, args.values.set ?? []);
const settings: DiffusionSampling = sampling.clip === 0 ? (({ clip, ...rest }) => (void clip, rest))(sampling) : sampling;
const { per, seed } = args.values;
const classes = MNIST_INFO.classes.length;
// grid order: row r holds sample r of every digit
const prompts = Array.from({ length: per * classes }, (_, i) => run.model.text.encodeText(caption(i % classes, 0)));
const started = performance.now();
const images = run.preset === "mar-mnist" ? await sampleMar(run.model, prompts, { seed, sampling: settings }) : await sampleTransfusion(run.model, prompts, { seed, sampling: settings });
const seconds = (performance.now() - started) / 1000;
disposeDesignRun(run);
writeGrayGrid(args.values.out, images, { height: MNIST_INFO.height, width: MNIST_INFO.width, cols: classes });
console.log(JSON.stringify({ run: args.values.run, preset: run.preset, sampling: settings, images: prompts.length, seconds, images_per_second: prompts.length / seconds, grid: args.values.out }));
