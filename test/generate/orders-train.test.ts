import { beforeAll, describe, expect, it } from "vitest";
import { startEngine, tree } from "../../src/engine/index.ts";
import { hostRng } from "../../src/engine/rng.ts";
import type { OrderParams } from "../../src/backbone/orders/forward.ts";
import { batchOrderRows } from "../../src/backbone/orders/rows.ts";
import { trainingRow, type TrainedOrder } from "../../src/backbone/orders/training.ts";
import { OrderDecoder, type DecodeOrder } from "../../src/generate/order-decoder.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import { maskedTokenLoss } from "../../src/train/masked.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";
import { config, IMG, MASK, model, prompt, vocab } from "./helpers.ts";

beforeAll(startEngine);

const cfg = config(20);
const CLASSES = [2, 3, 4, 5];

/** One fixed image of `n` codes per class, all different. */
function images(n: number): number[][] {
  const rng = hostRng(n);
  return CLASSES.map(() => Array.from({ length: n }, () => Math.floor(rng() * 8)));
}

/** Trains a fresh tiny model for `order` to memorize `data` (one image per class): each step all classes twice, new masks / permutations. */
async function train(order: TrainedOrder, data: number[][], steps: number): Promise<{ params: OrderParams; first: number; last: number }> {
  const n = data[0]!.length;
  const trainer = new Trainer(model(0, cfg, order.name === "random" ? n : undefined), (p, b) => maskedTokenLoss(p as OrderParams, b as never, cfg), { ...DEFAULT_ADAMW, weightDecay: 0 });
  const rng = hostRng(1);
  let first = 0;
  let last = 0;
  for (let step = 0; step < steps; step++) {
    const rows = [...CLASSES, ...CLASSES].map((c, i) => trainingRow(order, prompt(c), data[i % 4]!.map((x) => IMG.start + x), { rng, maskId: MASK, progress: 0 }));
    const r = await trainer.step(batchOrderRows(rows, { length: cfg.contextLength, padId: vocab.padId }) as never, 3e-3);
    if (step === 0) first = r.loss;
    last = r.loss;
  }
  const params = trainer.params as OrderParams;
  trainer.params = {};
  trainer.dispose();
  return { params, first, last };
}

describe("each order trains a tiny model that then decodes the memorized images", () => {
  const cases: { order: TrainedOrder; decode: DecodeOrder[]; n: number; steps: number }[] = [
    { order: { name: "raster" }, decode: [{ name: "raster" }], n: 9, steps: 150 },
    { order: { name: "maskgit" }, decode: [{ name: "maskgit", steps: 3 }, { name: "maskgit", steps: 9 }], n: 9, steps: 250 },
    // trained on random permutations only (no annealing): every order must then work
    { order: { name: "random" }, decode: [{ name: "random" }, { name: "random", order: "random" }], n: 9, steps: 400 },
    { order: { name: "next-scale", scales: [1, 2, 3] }, decode: [{ name: "next-scale" }], n: 14, steps: 200 },
  ];

  it.each(cases)("$order.name", async ({ order, decode, n, steps }) => {
    const data = images(n);
    const started = performance.now();
    const { params, first, last } = await train(order, data, steps);
    const seconds = (performance.now() - started) / 1000;
    console.log(`${order.name}: ${steps} steps in ${seconds.toFixed(1)} s, loss ${first.toFixed(3)} → ${last.toFixed(4)}`);
    expect(first).toBeGreaterThan(1.5);
    expect(last).toBeLessThan(0.05);
    const decoder = new OrderDecoder({ params, config: cfg, order }, vocab);
    for (const how of decode) {
      const got = await decoder.generate(CLASSES.map(prompt), { order: how, image: { modality: "image", shape: [n] }, sampling: GREEDY, seed: 2 });
      expect(got.map((g) => Array.from(g)), JSON.stringify(how)).toEqual(data);
    }
    decoder.dispose();
    tree.dispose(params);
  });
});
