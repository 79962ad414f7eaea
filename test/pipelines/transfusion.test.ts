import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, jit, np, random, startEngine, tree, type Array as JaxArray } from "../../src/engine/index.ts";
import { allCaptions, caption } from "../../src/data/captions.ts";
import { loadMnist } from "../../src/data/mnist.ts";
import { seededPermutation, splitTrainTest, subset } from "../../src/data/shuffle.ts";
import type { ImageSet } from "../../src/data/types.ts";
import { InputError } from "../../src/io/errors.ts";
import { cosineSchedule, epsilonFromX0, qSample } from "../../src/backbone/heads/diffusion-schedule.ts";
import { TextTokenizer } from "../../src/tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../../src/tokenizers/text/train.ts";
import { checkTransfusionConfig, DEFAULT_TRANSFUSION, transfusionShapes, type TransfusionConfig } from "../../src/pipelines/transfusion-config.ts";
import {
  imagePatches,
  initTransfusionParams,
  layoutMask,
  transfusionBackboneConfig,
  transfusionBatch,
  transfusionHidden,
  transfusionLayout,
  transfusionLoss,
  transfusionVocab,
  type TransfusionBatch,
  type TransfusionLayout,
  type TransfusionParams,
} from "../../src/pipelines/transfusion-model.ts";
import { captionTransfusion, ddimSampleAwaited, disposeTransfusion, sampleTransfusion, trainTransfusion, type TransfusionModel } from "../../src/pipelines/transfusion.ts";
import { ddimSample, type NoisePredictor } from "../../src/generate/diffusion.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import type { JointVocab } from "../../src/backbone/sequence/vocab.ts";
import { DEMO_SPLIT } from "../../src/pipelines/demo.ts";

/** A toy model: one layer of width 32, batches of 8 (2 of them image → caption). */
const TOY: TransfusionConfig = {
  ...DEFAULT_TRANSFUSION,
  backbone: { contextLength: 64, dim: 32, layers: 1, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" },
  timeDim: 16,
  captionRows: 2,
  batch: 8,
  steps: 30,
  lr: 3e-3,
  sampling: { steps: 5, eta: 0, guidance: 2 },
};

let text: TextTokenizer;
let digits: ImageSet;
let model: TransfusionModel;
const losses: { loss: number; lm: number; diffusion: number }[] = [];

beforeAll(async () => {
  await startEngine();
  text = TextTokenizer.fromJSON(await trainTextTokenizer(allCaptions()));
  const { train } = splitTrainTest(loadMnist(), DEMO_SPLIT);
  digits = subset(train, Array.from(seededPermutation(train.n, 1).subarray(0, 300)));
  model = await trainTransfusion(digits, text, TOY, { progress: false, onStep: (_, r) => void losses.push({ loss: r.loss, lm: r.metrics.lm!, diffusion: r.metrics.diffusion! }) });
});

/** One caption → image row per index of `digits` (caption template 0), no image → caption rows. */
const batchOf = (vocab: JointVocab, layout: TransfusionLayout, indices: number[]) =>
  transfusionBatch(vocab, layout, digits, indices.map((index) => ({ index, caption: text.encodeText(caption(digits.labels[index]!, 0)) })), [], random.key(0));

const layoutOf = (cfg: TransfusionConfig): TransfusionLayout => transfusionLayout(transfusionVocab(text), cfg, Math.max(...allCaptions().map((c) => text.encodeText(c).length)));

describe("config errors name the field, the value and what is allowed", () => {
  const refuse = (cfg: TransfusionConfig, message: string) => {
    expect(() => checkTransfusionConfig(cfg)).toThrow(InputError);
    expect(() => checkTransfusionConfig(cfg)).toThrow(message);
  };

  it("the defaults are valid: 49 patches of 16 values", () => {
    expect(transfusionShapes(DEFAULT_TRANSFUSION)).toMatchObject({ rows: 7, cols: 7, count: 49, patchDim: 16 });
    checkTransfusionConfig(TOY);
  });

  it("bad values", () => {
    refuse({ ...TOY, lambda: -1 }, "transfusion config: lambda must be a finite number ≥ 0 (the diffusion loss's weight), got -1");
    refuse({ ...TOY, minSnr: -5 }, "transfusion config: minSnr must be a finite number ≥ 0 (0 = no Min-SNR weighting), got -5");
    refuse({ ...TOY, captionRows: 8 }, "transfusion config: captionRows must be an integer in [0, 7], got 8");
    refuse({ ...TOY, captionNoise: 1001 }, "transfusion config: captionNoise must be an integer in [0, 1000], got 1001");
    refuse({ ...TOY, dropCaption: 1 }, "transfusion config: dropCaption must be in [0, 1), got 1");
    refuse({ ...TOY, timeDim: 15 }, "transfusion config: timeDim must be an even integer in [2, 16384] (cos and sin halves), got 15");
    refuse({ ...TOY, patch: 5 }, "transfusion config: patch: patch size 5 does not divide the image size 28×28");
    refuse({ ...TOY, diffusionSteps: 0 }, "transfusion config: diffusionSteps: expected an integer T in [1, 1048576], got 0");
    refuse({ ...TOY, sampling: { steps: 2000 } }, "transfusion config: sampling.steps: expected an integer in [1, 1000] (the schedule's T), got 2000");
    refuse({ ...TOY, backbone: { ...TOY.backbone, dim: 30, heads: 4 } }, "transfusion config: backbone.dim: 30 is not divisible by heads (4)");
    expect(() => layoutOf({ ...TOY, backbone: { ...TOY.backbone, contextLength: 50 } })).toThrow(
      "transfusion config: backbone.contextLength 50 is too short for sequences of 58 inputs (<bos>, <boi>, <eoi>, 49 image positions and up to 7 caption tokens); give at least 58",
    );
  });
});

describe("the attention mask: causal, bidirectional exactly within the image block", () => {
  it("mask contents of both sequence kinds", () => {
    const layout = layoutOf(TOY);
    const vocab = transfusionVocab(text);
    for (const [name, seq] of Object.entries({ generation: layout.generation, captioning: layout.captioning })) {
      const { length: l, start, slots } = seq;
      expect(slots, name).toEqual(Array.from({ length: 49 }, (_, k) => start + k));
      const inImage = (i: number) => i >= start && i < start + 49;
      let bad = 0;
      for (let i = 0; i < l; i++) for (let j = 0; j < l; j++) bad += seq.mask[i * l + j] !== (j <= i || (inImage(i) && inImage(j)) ? 1 : 0) ? 1 : 0;
      expect(bad, `${name}: entries that differ from "causal, or both in the image block"`).toBe(0);
      expect(Array.from(layoutMask(seq).astype(np.int32).dataSync() as Int32Array), `${name}: the device mask`).toEqual(Array.from(seq.mask));
    }
    // the block is where the placeholder tokens are: after <boi> in generation, after <bos> <boi> in captioning
    expect(layout.generation.start).toBe(layout.captionLength + 2);
    expect(layout.captioning.start).toBe(2);
    expect(layout.captioning.prompt).toBe(2 + 49 + 1);
    const { gen: rows, key } = batchOf(vocab, layout, [0]);
    tree.dispose([rows.targets, rows.weights, rows.images, key]);
    const gen = rows.ids;
    const img = vocab.special("<img>");
    expect(Array.from(gen.dataSync() as Int32Array).flatMap((id, t) => (id === img ? [t] : []))).toEqual(layout.generation.slots);
  });

  it("in the model: the first patch reads the last patch; the tokens before the image do not", () => {
    const vocab = transfusionVocab(text);
    const layout = layoutOf(TOY);
    const bcfg = transfusionBackboneConfig(TOY, vocab);
    const p = initTransfusionParams(TOY, vocab);
    const { head, ...backbone } = p.backbone;
    const seq = layout.generation;
    const batch = batchOf(vocab, layout, [0]);
    const x0 = Array.from(imagePatches(batch.gen.images, TOY.patch).dataSync() as Float32Array); // [1, 49, 16]
    const run = (v: number[]) => Array.from(transfusionHidden(tree.ref({ ...p, backbone }), batch.gen.ids.ref, fromHost(Float32Array.from(v), [1, 49, 16]), fromHost(Int32Array.of(300), [1]), seq, bcfg).dataSync() as Float32Array);
    const a = run(x0);
    const b = run(x0.map((v, k) => (k >= 48 * 16 ? 0.9 : v))); // only the last patch changes
    const d = TOY.backbone.dim;
    const diff = (t: number) => Math.max(...a.slice(t * d, (t + 1) * d).map((u, k) => Math.abs(u - b[t * d + k]!)));
    expect(diff(0), "<bos>").toBe(0);
    expect(diff(seq.start - 1), "<boi>, just before the image").toBe(0);
    expect(diff(seq.start), "the first patch").toBeGreaterThan(1e-4);
    void head;
    tree.dispose([p, batch.gen.ids, batch.gen.targets, batch.gen.weights, batch.key] as never);
  });
});

describe("training", () => {
  it("the loss is finite and falls over 30 steps; LM and diffusion terms both fall", () => {
    expect(losses.length).toBe(30);
    expect(losses.every((l) => [l.loss, l.lm, l.diffusion].every(Number.isFinite))).toBe(true);
    const mean = (xs: typeof losses, f: (l: (typeof losses)[0]) => number) => xs.reduce((s, l) => s + f(l), 0) / xs.length;
    const [first, last] = [losses.slice(0, 3), losses.slice(-5)];
    console.log(`toy: loss ${mean(first, (l) => l.loss).toFixed(3)} → ${mean(last, (l) => l.loss).toFixed(3)}, lm ${mean(first, (l) => l.lm).toFixed(3)} → ${mean(last, (l) => l.lm).toFixed(3)}, diffusion ${mean(first, (l) => l.diffusion).toFixed(3)} → ${mean(last, (l) => l.diffusion).toFixed(3)}`);
    expect(mean(last, (l) => l.loss)).toBeLessThan(0.85 * mean(first, (l) => l.loss));
    expect(mean(last, (l) => l.lm)).toBeLessThan(0.8 * mean(first, (l) => l.lm));
    expect(mean(last, (l) => l.diffusion)).toBeLessThan(0.8 * mean(first, (l) => l.diffusion));
    // L = L_LM + λ·L_DDPM
    for (const l of losses.slice(0, 3)) expect(l.loss).toBeCloseTo(l.lm + TOY.lambda * l.diffusion, 3);
  });

  it("Min-SNR-γ: a γ above every SNR weighs nothing, a small γ only shrinks the nearly clean timesteps' terms", () => {
    const vocab = transfusionVocab(text);
    const layout = layoutOf(TOY);
    const bcfg = transfusionBackboneConfig(TOY, vocab);
    const schedule = cosineSchedule(TOY.diffusionSteps);
    const p = initTransfusionParams(TOY, vocab);
    const diffusionAt = (minSnr: number) => {
      const [loss, { lm, diffusion }] = transfusionLoss(tree.ref(p), batchOf(vocab, layout, [0, 1, 2, 3, 4, 5, 6, 7]), { ...TOY, prediction: "epsilon", minSnr }, layout, bcfg, schedule);
      tree.dispose([loss, lm!]);
      return diffusion!.js() as number;
    };
    const [off, huge, small] = [diffusionAt(0), diffusionAt(1e12), diffusionAt(1)];
    tree.dispose(p as never);
    expect(huge).toBeCloseTo(off, 5);
    expect(small).toBeLessThan(0.999 * off);
    expect(small).toBeGreaterThan(0);
  });

  it("prediction x0: at init (x̂_0 = 0) the diffusion loss is each image's mean squared pixel in [−1, 1], at any timestep", () => {
    const cfg: TransfusionConfig = { ...TOY, prediction: "x0" };
    const vocab = transfusionVocab(text);
    const layout = layoutOf(cfg);
    const p = initTransfusionParams(cfg, vocab);
    const indices = [0, 1, 2, 3, 4, 5, 6, 7];
    const [loss, { lm, diffusion }] = transfusionLoss(p, batchOf(vocab, layout, indices), cfg, layout, transfusionBackboneConfig(cfg, vocab), cosineSchedule(cfg.diffusionSteps));
    tree.dispose([loss, lm!]);
    const px = digits.height * digits.width;
    let expected = 0;
    for (const i of indices) for (let k = 0; k < px; k++) expected += (2 * digits.images[i * px + k]! - 1) ** 2 / px / indices.length;
    expect(diffusion!.js() as number).toBeCloseTo(expected, 5);
  });

  it("epsilonFromX0 inverts the forward process: the true x_0 gives back the ε that noised it, at every timestep", () => {
    const schedule = cosineSchedule(1000);
    for (const t of [0, 10, 500, 990]) {
      const x0 = random.uniform(random.key(t), [4, 16], { minval: -1, maxval: 1 });
      const eps = random.normal(random.key(t + 1), [4, 16]);
      const xt = qSample(schedule, x0.ref, eps.ref, fromHost(Int32Array.from([t, t, t, t]), [4]));
      const back = epsilonFromX0(schedule, xt, x0, np.array(t, { dtype: np.float32 }));
      const [a, b] = [back.js() as number[][], eps.js() as number[][]];
      // float32: at t = 0, 1/√(1 − ᾱ) ≈ 160 magnifies x_t's rounding
      const tol = t === 0 ? 2e-3 : 1e-4;
      a.flat().forEach((v, i) => expect(Math.abs(v - b.flat()[i]!)).toBeLessThan(tol));
    }
  });

  it("refuses a prediction it does not know, and Min-SNR with x0 prediction", () => {
    expect(() => checkTransfusionConfig({ ...TOY, prediction: "v" as never })).toThrow('transfusion config: prediction must be one of "epsilon", "x0", got "v"');
    expect(() => checkTransfusionConfig({ ...TOY, prediction: "x0", minSnr: 5 })).toThrow("minSnr applies to prediction \"epsilon\" only");
  });

  it("overfits four digits: the denoising loss at fixed (t, ε) falls far below its start", async () => {
    const four = subset(digits, [0, 1, 2, 3]);
    const cfg: TransfusionConfig = { ...TOY, prediction: "epsilon", captionRows: 0, dropCaption: 0, templates: 1, steps: 150, batch: 8, lr: 3e-3 };
    const vocab = transfusionVocab(text);
    const layout = layoutOf(cfg);
    const bcfg = transfusionBackboneConfig(cfg, vocab);
    const schedule = cosineSchedule(cfg.diffusionSteps);
    // the four digits 8 times each, one fixed key: the same 32 draws of (t, ε) before and after
    const rows = Array.from({ length: 32 }, (_, i) => ({ index: i % 4, caption: text.encodeText(caption(four.labels[i % 4]!, 0)) }));
    const evaluate = jit((p: TransfusionParams, b: TransfusionBatch) => transfusionLoss(p, b, cfg, layout, bcfg, schedule));
    const fixed = (p: TransfusionParams) => {
      const [loss, { lm, diffusion }] = evaluate(tree.ref(p), transfusionBatch(vocab, layout, four, rows, [], random.key(5)));
      tree.dispose([loss, lm!]);
      return diffusion!.js() as number;
    };
    const init = initTransfusionParams(cfg, vocab);
    const before = fixed(init);
    tree.dispose(init as never);
    const trained = await trainTransfusion(four, text, cfg, { progress: false });
    const after = fixed(trained.params);
    evaluate.dispose();
    disposeTransfusion(trained);
    console.log(`overfit: diffusion loss at fixed draws ${before.toFixed(3)} → ${after.toFixed(3)}`);
    expect(before).toBeGreaterThan(0.8); // ε̂ = 0 at init: E ε² = 1
    expect(after).toBeLessThan(0.35 * before);
  });
});

describe("generation and captioning", () => {
  const prompts = () => [text.encodeText(caption(3, 0)), text.encodeText(caption(7, 0))];

  it("images: right size, in [0, 1], fixed by the seed (guided and unguided)", async () => {
    const a = await sampleTransfusion(model, prompts(), { seed: 1 });
    const b = await sampleTransfusion(model, prompts(), { seed: 1 });
    const c = await sampleTransfusion(model, prompts(), { seed: 2 });
    expect(a.length).toBe(2 * 28 * 28);
    expect(a.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(Array.from(c)).not.toEqual(Array.from(a));
    const u = await sampleTransfusion(model, prompts().slice(0, 1), { seed: 1, sampling: { steps: 3, guidance: 1, eta: 1 } });
    expect(u.length).toBe(784);
    expect(u.every((v) => v >= 0 && v <= 1)).toBe(true);
  });

  it.each([0, 1])("the awaited DDIM loop is ddimSample's, draw for draw (η = %i)", async (eta) => {
    const schedule = cosineSchedule(1000);
    const predict: NoisePredictor<{ w: JaxArray }> = ({ w }, x, t) => x.mul(w).add(t.mul(1e-4)); // any traceable ε̂
    const ctx = { w: fromHost(Float32Array.of(0.3), [1]) };
    const run = async (awaited: boolean) => {
      const keys = new KeyStream(3);
      const x = awaited ? await ddimSampleAwaited(predict, ctx, [2, 5], schedule, keys, { steps: 4, eta }) : ddimSample(predict, ctx, [2, 5], schedule, keys, { steps: 4, eta }).x;
      keys.dispose();
      return Array.from((await x.data()) as Float32Array);
    };
    expect(await run(true)).toEqual(await run(false));
    ctx.w.dispose();
  });

  it("captions: greedy text ids for each image, at most M + 1 tokens", async () => {
    const ids = await captionTransfusion(model, subset(digits, [0, 1, 2]));
    expect(ids.length).toBe(3);
    for (const row of ids) {
      expect(row.length).toBeLessThanOrEqual(model.layout.captionLength + 1);
      expect(row.every((id) => Number.isInteger(id) && id >= 0 && id < text.vocabSize)).toBe(true);
    }
    expect(await captionTransfusion(model, subset(digits, [0, 1, 2]), { batch: 2 })).toEqual(ids);
  });
});
