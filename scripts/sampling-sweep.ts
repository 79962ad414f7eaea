/**
 * Generated-digit accuracy of a saved run over a grid of sampling settings, judged by the run's
 * own classifier: which temperature / top-k / guidance scale draws the requested digit most
 * often. Seeds other than the demo's (0) keep the sweep off the demo's own evaluation draw.
 *
 *   node --import tsx scripts/sampling-sweep.ts --run runs/demo --temperature 0.4,0.6,0.8 --guidance 3,5 --seeds 1,2
 *
 * Prints one JSON object: per setting, the accuracy over every seed and the per-digit shares.
 */
import "../src/engine/node.ts";
import { startEngine } from "../src/engine/index.ts";
import { caption as captionOf } from "../src/data/captions.ts";
import { accuracy } from "../src/eval/metrics.ts";
import { Decoder } from "../src/generate/decode.ts";
import { parseArgs } from "../src/cli/args.ts";
import { disposeRun, loadRun } from "../src/pipelines/run.ts";
import { generateImages } from "../src/pipelines/unified.ts";

const SPEC = {
  usage: "node --import tsx scripts/sampling-sweep.ts",
  options: [
    { name: "run", type: "string", default: "runs/demo", help: "a run written by `mmntp demo`" },
    { name: "temperature", type: "string", default: "0.5,0.6,0.7", help: "comma-separated temperatures" },
    { name: "top-k", type: "string", default: "0", help: "comma-separated top-k values (0 = all)" },
    { name: "guidance", type: "string", default: "3,5,7", help: "comma-separated guidance scales" },
    { name: "seeds", type: "string", default: "1,2", help: "comma-separated sampling seeds" },
    { name: "per-class", type: "number", default: 8, help: "samples per digit and seed" },
  ],
} as const;

const list = (s: string) => s.split(",").map(Number);
const args = parseArgs(process.argv.slice(2), SPEC);
if (args.kind === "help") {
  console.log(args.text);
  process.exit(0);
}
await startEngine();
const run = loadRun(args.values.run);
const decoder = new Decoder(run.model.params, run.model.config);
const classes = run.dataset.classes.length;
const per = args.values["per-class"];
const prompts = Array.from({ length: classes * per }, (_, i) => run.text.encodeText(captionOf(Math.floor(i / per), 0)));
const wanted = Int32Array.from({ length: classes * per }, (_, i) => Math.floor(i / per));
const rows = [];
for (const temperature of list(args.values.temperature))
  for (const topK of list(args.values["top-k"]))
    for (const guidance of list(args.values.guidance)) {
      const judged: number[] = [];
      const labels: number[] = [];
      for (const seed of list(args.values.seeds)) {
        const codes = await generateImages(decoder, run.vocab, prompts, run.image.tokenShape, { sampling: { temperature, topK }, seed, guidance, layout: run.layout });
        const images = await run.image.decodeImages(Int32Array.from(codes.flat()), codes.length);
        judged.push(...(await run.judge.predict(images, codes.length)));
        labels.push(...wanted);
      }
      const row = { temperature, topK, guidance, samples: judged.length, accuracy: accuracy(judged, labels) };
      console.error(JSON.stringify(row));
      rows.push(row);
    }
decoder.dispose();
disposeRun(run);
console.log(JSON.stringify({ run: args.values.run, perClass: per, rows }, null, 2));
