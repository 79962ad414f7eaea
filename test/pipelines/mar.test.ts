import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, jit, random, startEngine, tree } from "../../src/engine/index.ts";
import { allCaptions, caption } from "../../src/data/captions.ts";
import { loadMnist } from "../../src/data/mnist.ts";
import { seededPermutation, splitTrainTest, subset } from "../../src/data/shuffle.ts";
import type { ImageSet } from "../../src/data/types.ts";
import { InputError } from "../../src/io/errors.ts";
import { cosineSchedule } from "../../src/backbone/heads/diffusion-schedule.ts";
import { TextTokenizer } from "../../src/tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../../src/tokenizers/text/train.ts";
import { checkMarConfig, DEFAULT_MAR, marShapes, type MarConfig } from "../../src/pipelines/mar-config.ts";
import { imageTokens, initMarParams, marBackboneConfig, marConditions, marIds, marLayout, marLoss, marVocab, tokenImages, type MarBatch, type MarLayout, type MarParams } from "../../src/pipelines/mar-model.ts";
import { imagesAt } from "../../src/pipelines/continuous-model.ts";
import { disposeMar, sampleMar, trainMar, type MarGenerator } from "../../src/pipelines/mar.ts";
import { DEMO_SPLIT } from "../../src/pipelines/demo.ts";

/** A toy generator: one backbone layer of width 32, a head 32 wide and 2 deep, batches of 8. */
const TOY: MarConfig = {
  ...DEFAULT_MAR,
  backbone: { contextLength: 64, dim: 32, layers: 1, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" },
  head: { width: 32, depth: 2, steps: 1000 },
  multiplier: 2,
  batch: 8,
  steps: 30,
  lr: 3e-3,
  sampling: { steps: 4, eta: 1, temperature: 1, guidance: 2 },
};

let text: TextTokenizer;
let digits: ImageSet;
let model: MarGenerator;
const losses: number[] = [];

beforeAll(async () => {
  await startEngine();
  text = TextTokenizer.fromJSON(await trainTextTokenizer(allCaptions()));
  const { train } = splitTrainTest(loadMnist(), DEMO_SPLIT);
  digits = subset(train, Array.from(seededPermutation(train.n, 2).subarray(0, 300)));
  model = await trainMar(digits, text, TOY, { progress: false, onStep: (_, r) => void losses.push(r.loss) });
});

const longest = () => Math.max(...allCaptions().map((c) => text.encodeText(c).length));
const layoutOf = (cfg: MarConfig): MarLayout => marLayout(marVocab(text), cfg, longest());

describe("config errors name the field, the value and what is allowed", () => {
  const refuse = (cfg: MarConfig, message: string) => {
    expect(() => checkMarConfig(cfg)).toThrow(InputError);
    expect(() => checkMarConfig(cfg)).toThrow(message);
  };

  it("the defaults are valid: 49 tokens of 16 values", () => {
    expect(marShapes(DEFAULT_MAR)).toMatchObject({ rows: 7, cols: 7, count: 49, patchDim: 16 });
  });

  it("bad values", () => {
    refuse({ ...TOY, lr: 2 }, "mar config: lr must be in (0, 1), got 2");
    refuse({ ...TOY, dropCaption: 1 }, "mar config: dropCaption must be in [0, 1), got 1");
    refuse({ ...TOY, templates: 9 }, "mar config: templates must be an integer in [1, 8], got 9");
    refuse({ ...TOY, multiplier: 0 }, "mar config: multiplier: expected an integer in [1, 1024]");
    refuse({ ...TOY, patch: 5 }, "mar config: patch: patch size 5 does not divide the image size 28×28");
    refuse({ ...TOY, sampling: { ...TOY.sampling, steps: 0 } }, "mar config: sampling");
    const short = { ...TOY, backbone: { ...TOY.backbone, contextLength: 40 } };
    expect(() => layoutOf(short)).toThrow(InputError);
    expect(() => layoutOf(short)).toThrow(/backbone\.contextLength 40 is too short for sequences of \d+ inputs/);
  });
});

describe("the model", () => {
  it("images ↔ tokens: 49 tokens of 16 values in [−1, 1], and back exactly", () => {
    const images = imagesAt(digits, [0, 1]);
    const host = Array.from(images.ref.dataSync() as Float32Array);
    const tokens = imageTokens(images, TOY.patch);
    expect(tokens.shape).toEqual([2, 49, 16]);
    const t = tokens.ref.dataSync() as Float32Array;
    expect(Math.min(...t)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...t)).toBeLessThanOrEqual(1);
    const back = Array.from(tokenImages(tokens, TOY).dataSync() as Float32Array);
    back.forEach((v, k) => expect(v).toBeCloseTo(host[k]!, 5));
  });

  it("raster causality: token k's condition reads the caption and tokens < k, never tokens ≥ k", () => {
    const vocab = marVocab(text);
    const layout = layoutOf(TOY);
    const bcfg = marBackboneConfig(TOY, vocab);
    const p = initMarParams(TOY, vocab);
    const x0 = Array.from(imageTokens(imagesAt(digits, [0]), TOY.patch).dataSync() as Float32Array);
    const run = (tokens: number[], digit = digits.labels[0]!) => {
      const ids = fromHost(marIds(vocab, layout, [text.encodeText(caption(digit, 0))]), [1, layout.length]);
      return Array.from(marConditions(tree.ref(p), ids, fromHost(Float32Array.from(tokens), [1, 49, 16]), layout, bcfg).dataSync() as Float32Array);
    };
    const a = run(x0);
    const k = 20;
    const b = run(x0.map((v, i) => (i >= k * 16 && i < (k + 1) * 16 ? -v : v))); // token k flipped
    const d = TOY.backbone.dim;
    const diff = (u: number[], j: number) => Math.max(...u.slice(j * d, (j + 1) * d).map((w, i) => Math.abs(w - a[j * d + i]!)));
    for (let j = 0; j <= k; j++) expect(diff(b, j), `token ${j}`).toBe(0);
    expect(diff(b, k + 1), `token ${k + 1}`).toBeGreaterThan(1e-4);
    const other = run(x0, (digits.labels[0]! + 1) % 10); // another caption changes token 0's condition
    expect(diff(other, 0)).toBeGreaterThan(1e-4);
    tree.dispose(p as never);
  });
});

describe("training", () => {
  it("the loss is finite and falls over 30 steps", () => {
    expect(losses.length).toBe(30);
    expect(losses.every(Number.isFinite)).toBe(true);
    const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
    console.log(`toy: loss ${mean(losses.slice(0, 3)).toFixed(3)} → ${mean(losses.slice(-5)).toFixed(3)}`);
    expect(losses[0]).toBeGreaterThan(0.8); // ε̂ ≈ 0 at init: E ε² = 1
    expect(mean(losses.slice(-5))).toBeLessThan(0.7 * mean(losses.slice(0, 3)));
  });

  it("overfits four digits: the loss at fixed (t, ε) falls far below its start", async () => {
    const four = subset(digits, [0, 1, 2, 3]);
    const cfg: MarConfig = { ...TOY, dropCaption: 0, templates: 1, steps: 150, lr: 3e-3 };
    const vocab = marVocab(text);
    const layout = layoutOf(cfg);
    const bcfg = marBackboneConfig(cfg, vocab);
    const schedule = cosineSchedule(cfg.head.steps);
    const rows = Array.from({ length: 16 }, (_, i) => i % 4);
    const evaluate = jit((p: MarParams, b: MarBatch) => marLoss(p, b, cfg, layout, bcfg, schedule)[0]);
    const fixed = (p: MarParams) => {
      const ids = fromHost(marIds(vocab, layout, rows.map((i) => text.encodeText(caption(four.labels[i]!, 0)))), [rows.length, layout.length]);
      return evaluate(tree.ref(p), { ids, images: imagesAt(four, rows), key: random.key(5) }).js() as number;
    };
    const init = initMarParams(cfg, vocab);
    const before = fixed(init);
    tree.dispose(init as never);
    const trained = await trainMar(four, text, cfg, { progress: false });
    const after = fixed(trained.params);
    evaluate.dispose();
    disposeMar(trained);
    console.log(`overfit: loss at fixed draws ${before.toFixed(3)} → ${after.toFixed(3)}`);
    expect(before).toBeGreaterThan(0.8);
    expect(after).toBeLessThan(0.4 * before);
  });
});

describe("sampling", () => {
  const prompts = () => [text.encodeText(caption(3, 0)), text.encodeText(caption(7, 0))];

  it("images: right size, in [0, 1], fixed by the seed (guided and unguided)", async () => {
    const a = await sampleMar(model, prompts(), { seed: 1 });
    const b = await sampleMar(model, prompts(), { seed: 1 });
    const c = await sampleMar(model, prompts(), { seed: 2 });
    expect(a.length).toBe(2 * 28 * 28);
    expect(a.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(Array.from(c)).not.toEqual(Array.from(a));
    const u = await sampleMar(model, prompts().slice(0, 1), { seed: 1, sampling: { steps: 3, eta: 0, guidance: 1 } });
    expect(u.length).toBe(784);
    expect(u.every((v) => v >= 0 && v <= 1)).toBe(true);
  });

  it("bad sampling options are refused before anything runs", async () => {
    await expect(sampleMar(model, prompts(), { sampling: { steps: 5000, eta: 1 } })).rejects.toThrow(/sampleMar: sampling/);
  });
});
