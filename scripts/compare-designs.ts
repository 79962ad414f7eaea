/**
 * Scores the sample grids of several text→image designs with one evaluator, so their figures can
 * be compared: one judge (the demo's classifier, seed 0, 500 steps on the training digits outside
 * the demo's held-out split) reads every grid; the Fréchet distance is on its hidden features,
 * against the first 1,000 held-out digits; diversity is the mean pairwise pixel distance of one
 * prompt's samples. Real held-out digits, as many as the samples, give the floor of both.
 *
 * Each grid is `writeGrayGrid`'s layout with one column per digit (16 rows by default), as
 * `mmntp demo`, scripts/mar-generate.ts and scripts/transfusion-generate.ts write them.
 *
 *   node --import tsx scripts/compare-designs.ts \
 *     --grid unified-vq=runs/demo/samples.png --grid mar=runs/mar/samples.png --grid transfusion=runs/transfusion/samples.png
 */
import "../src/engine/node.ts";
import { parseArgs } from "../src/cli/args.ts";
import { InputError } from "../src/io/errors.ts";
import { readGrayGrid } from "../src/io/png.ts";
import { loadMnist, MNIST_INFO } from "../src/data/mnist.ts";
import { splitTrainTest } from "../src/data/shuffle.ts";
import { accuracy } from "../src/eval/metrics.ts";
import { frechetDistance, gaussianOf } from "../src/eval/frechet.ts";
import { byClass, diversity } from "../src/experiments/orders.ts";
import { trainJudge } from "../src/pipelines/judge.ts";
import { DEMO_SPLIT } from "../src/pipelines/demo.ts";

const SPEC = {
  usage: "node --import tsx scripts/compare-designs.ts --grid NAME=PATH ...",
  options: [
    { name: "grid", type: "string", multiple: true, help: "a design's sample grid, NAME=PATH.png (one column per digit)" },
    { name: "per", type: "number", default: 16, help: "samples per digit in every grid" },
  ],
} as const;

const args = parseArgs(process.argv.slice(2), SPEC);
if (args.kind === "help") {
  console.log(args.text);
  process.exit(0);
}
const grids = (args.values.grid ?? []).map((g) => {
  const at = g.indexOf("=");
  if (at < 1) throw new InputError(`--grid must be NAME=PATH, got ${JSON.stringify(g)}`);
  return { name: g.slice(0, at), path: g.slice(at + 1) };
});
if (grids.length === 0) throw new InputError("give at least one --grid NAME=PATH");
const per = args.values.per;
const classes = MNIST_INFO.classes.length;
const px = MNIST_INFO.height * MNIST_INFO.width;

const { train, test } = splitTrainTest(loadMnist(), DEMO_SPLIT);
const judge = await trainJudge(train, MNIST_INFO, 500, 0);
const refCount = 1000;
const reference = gaussianOf(await judge.features(test.images.subarray(0, refCount * px), refCount), refCount, judge.featureDim);
const score = async (classMajor: Float32Array) => {
  const n = per * classes;
  const judged = await judge.predict(classMajor, n);
  const wanted = Int32Array.from({ length: n }, (_, i) => Math.floor(i / per));
  return {
    generation_accuracy: accuracy(judged, wanted),
    frechet: frechetDistance(gaussianOf(await judge.features(classMajor, n), n, judge.featureDim), reference),
    diversity: diversity(classMajor, per, classes, px),
  };
};

const results: Record<string, unknown> = { real_held_out: await score(byClass(test, per, classes, refCount)) };
for (const { name, path } of grids) {
  const cells = readGrayGrid(path, { height: MNIST_INFO.height, width: MNIST_INFO.width, cols: classes, count: per * classes });
  // grid rows are samples, columns digits → class-major
  const classMajor = new Float32Array(cells.length);
  for (let r = 0; r < per; r++) for (let d = 0; d < classes; d++) classMajor.set(cells.subarray((r * classes + d) * px, (r * classes + d + 1) * px), (d * per + r) * px);
  results[name] = { ...(await score(classMajor)), grid: path };
}
results.judge_accuracy = accuracy(await judge.predict(test.images, test.n), test.labels);
judge.dispose();
console.log(JSON.stringify(results));
