/**
 * Per-timestep denoising error of a saved transfusion-mnist run on 32 held-out digits, with and
 * without their captions: the ε MSE and the x̂_0 MSE it implies at t = 10 … 990. Equal figures
 * with and without the caption mean the denoiser ignores the text (what the default run shows).
 *
 *   node --import tsx scripts/transfusion-diagnose.ts [RUN_DIR]
 */
import "../src/engine/node.ts";
import { fromHost, np, random, tree } from "../src/engine/index.ts";
import { caption } from "../src/data/captions.ts";
import { loadMnist } from "../src/data/mnist.ts";
import { splitTrainTest } from "../src/data/shuffle.ts";
import { imagesAt } from "../src/pipelines/continuous-model.ts";
import { loadDesignRun } from "../src/pipelines/design-run.ts";
import { denoiserParams, imagePatches, predictPatchNoise, transfusionHidden } from "../src/pipelines/transfusion-model.ts";
import { generationIds } from "../src/pipelines/transfusion.ts";
import { qSample, alphaBar } from "../src/backbone/heads/diffusion-schedule.ts";
import { DEMO_SPLIT } from "../src/pipelines/demo.ts";
const run = await loadDesignRun(process.argv[2] ?? "runs/transfusion-mnist");
if (run.preset !== "transfusion-mnist") throw new Error(`${process.argv[2]} is a ${run.preset} run, not transfusion-mnist`);
const m = run.model;
const { test } = splitTrainTest(loadMnist(), DEMO_SPLIT);
const b = 32;
const idx = Array.from({ length: b }, (_, i) => i);
const d = denoiserParams(m.params);
const { patchOut, ...rest } = d;
for (const tt of [10, 50, 200, 500, 800, 950, 990]) {
  for (const cond of [true, false]) {
    const x0 = imagePatches(imagesAt(test, idx), m.config.patch);
    const [, n, dx] = x0.shape;
    const eps = random.normal(random.key(tt), [b, n * dx]);
    const t = fromHost(Int32Array.from(idx, () => tt), [b]);
    const flat = x0.reshape([b, n * dx]);
    const xt = qSample(m.schedule, flat.ref, eps.ref, t.ref).reshape([b, n, dx]);
    const ids = fromHost(generationIds(m, idx.map((i) => (cond ? m.text.encodeText(caption(test.labels[i]!, 0)) : null))), [b, m.layout.generation.length]);
    const h = transfusionHidden(tree.ref(rest) as never, ids, xt, t.astype(np.float32), m.layout.generation, m.backbone);
    const e = predictPatchNoise(tree.ref(patchOut), h, m.layout.generation).reshape([b, n * dx]);
    const a = alphaBar(m.schedule, tt);
    // ε̂ and x̂_0 errors are one error in two units: ‖x̂_0 − x_0‖² = ‖ε̂ − ε‖²·(1 − ᾱ)/ᾱ
    const x0Model = m.config.prediction === "x0";
    const mse = np.square(e.sub(x0Model ? flat : (flat.dispose(), eps.ref))).mean().js() as number;
    eps.dispose();
    const [epsMse, x0Mse] = x0Model ? [(mse * a) / (1 - a), mse] : [mse, (mse * (1 - a)) / a];
    console.log(`t ${tt} cond ${cond}: eps mse ${epsMse.toFixed(4)}  x0 mse ${x0Mse.toFixed(4)}`);
  }
}
