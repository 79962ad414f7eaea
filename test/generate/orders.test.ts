import { beforeAll, describe, expect, it } from "vitest";
import { startEngine, tree } from "../../src/engine/index.ts";
import { blockCausalMaskHost } from "../../src/backbone/masks.ts";
import { nextScaleInput, upsampleNearest } from "../../src/backbone/orders/next-scale.ts";
import { OrderDecoder, type OrderModel } from "../../src/generate/order-decoder.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import type { StepPreview } from "../../src/generate/schedule.ts";
import { bestImageCode, config, IMG, imageProb, logitsOf, MASK, model, prompt, vocab } from "./helpers.ts";

beforeAll(startEngine);

const cfg = config();
const grid = { modality: "image", shape: [3, 3] };
const N = 9;
const P = 3;
const SCALES = [1, 2, 3];

const decoderFor = (order: OrderModel["order"], seed = 1, targets?: number) => new OrderDecoder({ params: model(seed, cfg, targets), config: cfg, order }, vocab);
const done = (d: OrderDecoder) => (d.dispose(), tree.dispose(d.model.params));

/** MaskGIT's input as the oracle sees it: prompt causal, the image block sees everything. */
const maskgitSees = (q: number, k: number) => (q < P ? k <= q : true);

describe("MaskGIT", () => {
  it("revealing one token per step in a fixed order equals a fixed-order decode by full forward passes (batch of 2)", async () => {
    const d = decoderFor({ name: "maskgit" });
    const order = [4, 0, 7, 2, 8, 1, 6, 3, 5];
    const got = await d.generate([prompt(2), prompt(3)], { order: { name: "maskgit", steps: N, maskSchedule: "linear", revealOrder: order }, image: grid, sampling: GREEDY });
    for (const [i, c] of [2, 3].entries()) {
      const image = new Array<number>(N).fill(-1);
      for (const pos of order) {
        const logits = logitsOf(d.model.params, cfg, [...prompt(c), ...image.map((x) => (x < 0 ? MASK : IMG.start + x))], maskgitSees);
        image[pos] = bestImageCode(logits[P + pos]!);
      }
      expect(Array.from(got[i]!)).toEqual(image);
    }
    expect(new Set(got.flatMap((g) => Array.from(g))).size).toBeGreaterThan(2);
    done(d);
  });

  it("with choice temperature 0 reveals the most confident masked token each step (linear schedule, steps = N)", async () => {
    const d = decoderFor({ name: "maskgit" }, 2);
    const [got] = await d.generate([prompt(4)], { order: { name: "maskgit", steps: N, maskSchedule: "linear", choiceTemperature: 0 }, image: grid, sampling: GREEDY });
    const image = new Array<number>(N).fill(-1);
    for (let step = 0; step < N; step++) {
      const logits = logitsOf(d.model.params, cfg, [...prompt(4), ...image.map((x) => (x < 0 ? MASK : IMG.start + x))], maskgitSees);
      let best = -1;
      let bestP = -1;
      for (let j = 0; j < N; j++) {
        if (image[j]! >= 0) continue;
        const pr = imageProb(logits[P + j]!, bestImageCode(logits[P + j]!));
        if (pr > bestP) [best, bestP] = [j, pr];
      }
      image[best] = bestImageCode(logits[P + best]!);
    }
    expect(Array.from(got!)).toEqual(image);
    done(d);
  });

  it("one step with guidance 3 draws argmax(ℓ_u + 3·(ℓ_c − ℓ_u)) at every position, cond and uncond in one batch", async () => {
    const d = decoderFor({ name: "maskgit" }, 3);
    const [got] = await d.generate([prompt(5)], { order: { name: "maskgit", steps: 1 }, image: grid, sampling: GREEDY, guidance: { prompts: [prompt(0)], scale: 3 } });
    const masked = new Array<number>(N).fill(MASK);
    const lc = logitsOf(d.model.params, cfg, [...prompt(5), ...masked], maskgitSees);
    const lu = logitsOf(d.model.params, cfg, [...prompt(0), ...masked], maskgitSees);
    const want = Array.from({ length: N }, (_, j) => bestImageCode(lc[P + j]!.map((c, v) => lu[P + j]![v]! + 3 * (c - lu[P + j]![v]!))));
    expect(Array.from(got!)).toEqual(want);
    done(d);
  });

  it("cosine schedule with 4 steps: previews reveal ⌊N·γ⌋-many fewer masks each step and every token by the last", async () => {
    const d = decoderFor({ name: "maskgit" }, 4);
    const unknown: number[] = [];
    await d.generate([prompt(1)], { order: { name: "maskgit", steps: 4 }, image: grid, sampling: { temperature: 1, topK: 0 }, seed: 3, onStep: (s) => void unknown.push(s.images[0]!.filter((x) => x < 0).length) });
    // ⌊9·cos(π/2·k/4)⌋ for k = 1, 2, 3, then 0
    expect(unknown).toEqual([8, 6, 3, 0]);
    done(d);
  });
});

describe("random order (RAR)", () => {
  it("greedy decoding in a given order equals growing-sequence full passes told each next position", async () => {
    const d = decoderFor({ name: "random" }, 5, N);
    const order = [8, 3, 0, 5, 1, 7, 2, 6, 4];
    const [got] = await d.generate([prompt(3)], { order: { name: "random", order }, image: grid, sampling: GREEDY });
    const image = new Array<number>(N).fill(-1);
    for (let k = 0; k < N; k++) {
      const ids = [...prompt(3), ...order.slice(0, k).map((pos) => IMG.start + image[pos]!)];
      const positions = [0, 1, 2, ...order.slice(0, k).map((pos) => P + pos)];
      const target = [0, 0, ...order.slice(0, k + 1).map((pos) => 1 + pos)];
      const logits = logitsOf(d.model.params, cfg, ids, (q, c) => c <= q, { positions, target });
      image[order[k]!] = bestImageCode(logits[ids.length - 1]!);
    }
    expect(Array.from(got!)).toEqual(image);
    done(d);
  });
});

describe("next-scale (VAR)", () => {
  const shape = { modality: "image", shape: [14] };

  it("the block-causal mask, entry by entry: a scale sees itself and every coarser scale", () => {
    const blocks = [1, 1, 1, 4, 9];
    const m = blockCausalMaskHost(blocks);
    const blockOf = blocks.flatMap((n, b) => new Array<number>(n).fill(b));
    for (let q = 0; q < 16; q++) for (let k = 0; k < 16; k++) expect(m[q * 16 + k], `(${q}, ${k})`).toBe(blockOf[k]! <= blockOf[q]! ? 1 : 0);
    const image = Array.from({ length: 14 }, (_, j) => IMG.start + (j % 8));
    const input = nextScaleInput(prompt(2), image, SCALES);
    expect(input.inputs.length).toBe(P - 1 + 14);
    expect(Array.from(input.mask)).toEqual(Array.from(m));
    // scale 2's inputs: the 1×1 map upsampled; scale 3's: the 2×2 map upsampled nearest
    expect(Array.from(input.inputs.subarray(P, P + 4))).toEqual(new Array<number>(4).fill(image[0]!));
    expect(Array.from(input.inputs.subarray(P + 4))).toEqual(Array.from(upsampleNearest(image.slice(1, 5), 2, 3)));
    expect(Array.from(upsampleNearest([1, 2, 3, 4], 2, 3))).toEqual([1, 1, 2, 1, 1, 2, 3, 3, 4]);
  });

  it("decodes one whole scale per step (1, 2×2, 3×3) and equals per-scale full passes under the block-causal mask", async () => {
    const d = decoderFor({ name: "next-scale", scales: SCALES }, 6);
    const previews: StepPreview[] = [];
    const [got] = await d.generate([prompt(1)], { order: { name: "next-scale" }, image: shape, sampling: GREEDY, onStep: (s) => void previews.push(s) });
    expect(previews.map((s) => s.images[0]!.filter((x) => x >= 0).length)).toEqual([1, 5, 14]);
    expect(previews.map((s) => [s.step, s.steps])).toEqual([[0, 3], [1, 3], [2, 3]]);
    const offs = [0, 1, 5, 14];
    const blockOf = (t: number) => (t < P - 1 ? -1 - (P - 1 - t) : offs.findIndex((o, k) => t - (P - 1) < offs[k + 1]!) ); // prompt tokens: their own blocks
    const image: number[] = [];
    for (let k = 0; k < 3; k++) {
      const ids = [...prompt(1)];
      for (let s = 1; s <= k; s++) ids.push(...Array.from(upsampleNearest(image.slice(offs[s - 1], offs[s]).map((c) => IMG.start + c), SCALES[s - 1]!, SCALES[s]!)));
      const logits = logitsOf(d.model.params, cfg, ids, (q, c) => (q < P - 1 ? c <= q : blockOf(c) <= blockOf(q)));
      for (let j = 0; j < SCALES[k]! ** 2; j++) image.push(bestImageCode(logits[P - 1 + offs[k]! + j]!));
    }
    expect(Array.from(got!)).toEqual(image);
    done(d);
  });
});

describe("guidance", () => {
  const orders = [
    { trained: { name: "raster" }, order: { name: "raster" }, image: grid },
    { trained: { name: "maskgit" }, order: { name: "maskgit", steps: 4 }, image: grid },
    { trained: { name: "random" }, order: { name: "random", order: "random" }, image: grid, targets: N },
    { trained: { name: "next-scale", scales: SCALES }, order: { name: "next-scale" }, image: { modality: "image", shape: [14] } },
  ] as const;

  it.each(orders)("at the neutral scale 1 equals the conditional model ($order.name, sampled, top-p 0.9)", async ({ trained, order, image, ...rest }) => {
    const d = decoderFor(trained, 7, "targets" in rest ? rest.targets : undefined);
    const sampling = { temperature: 1, topK: 0, topP: 0.9 };
    const prompts = [prompt(1), prompt(2), prompt(3)];
    const plain = await d.generate(prompts, { order, image, sampling, seed: 11 });
    for (const schedule of ["constant", "linear"] as const) {
      const guided = await d.generate(prompts, { order, image, sampling, seed: 11, guidance: { prompts: prompts.map(() => prompt(0)), scale: 1, schedule } });
      expect(guided.map((g) => Array.from(g))).toEqual(plain.map((g) => Array.from(g)));
    }
    expect(new Set(plain.flatMap((g) => Array.from(g))).size).toBeGreaterThan(2);
    done(d);
  });

  it("a linear schedule starts at scale 1: its first raster token is the conditional model's", async () => {
    const d = decoderFor({ name: "raster" }, 8);
    const opts = { order: { name: "raster" }, image: grid, sampling: GREEDY } as const;
    const [plain] = await d.generate([prompt(4)], opts);
    const [strong] = await d.generate([prompt(4)], { ...opts, guidance: { prompts: [prompt(0)], scale: 50, schedule: "linear" } });
    const [constant] = await d.generate([prompt(4)], { ...opts, guidance: { prompts: [prompt(0)], scale: 50 } });
    expect(strong![0]).toBe(plain![0]);
    const lc = logitsOf(d.model.params, cfg, prompt(4), (q, k) => k <= q)[P - 1]!;
    const lu = logitsOf(d.model.params, cfg, prompt(0), (q, k) => k <= q)[P - 1]!;
    expect(constant![0]).toBe(bestImageCode(lc.map((c, v) => lu[v]! + 50 * (c - lu[v]!))));
    done(d);
  });
});

describe("bad options give errors naming the value and what is allowed", () => {
  it.each([
    [{ name: "maskgit", steps: 0 }, "maskgit: steps 0 must be an integer in [1, 9]"],
    [{ name: "maskgit", steps: 10 }, "maskgit: steps 10 must be an integer in [1, 9]"],
    [{ name: "maskgit", steps: 2.5 }, "maskgit: steps 2.5 must be an integer in [1, 9]"],
    [{ name: "maskgit", steps: 4, maskSchedule: "cubic" as never }, 'maskgit: maskSchedule "cubic" must be one of cosine, linear'],
    [{ name: "maskgit", steps: 4, revealOrder: [0, 1] }, "maskgit: revealOrder must be a permutation of 0..8"],
    [{ name: "maskgit", steps: 4, choiceTemperature: -1 }, "maskgit: choiceTemperature -1 must be a finite number ≥ 0"],
  ] as const)("%j", async (order, message) => {
    const d = decoderFor({ name: "maskgit" });
    await expect(d.generate([prompt(1)], { order, image: grid, sampling: GREEDY })).rejects.toThrow(message);
    done(d);
  });

  it("orders the model was not trained for, scales that do not match, bad sampling and guidance", async () => {
    const raster = decoderFor({ name: "raster" });
    const base = { image: grid, sampling: GREEDY } as const;
    await expect(raster.generate([prompt(1)], { ...base, order: { name: "maskgit", steps: 4 } })).rejects.toThrow('this model was trained for the "raster" order and cannot decode in the "maskgit" order (it decodes: "raster")');
    await expect(raster.generate([prompt(1)], { ...base, order: { name: "diffusion" } as never })).rejects.toThrow('unknown order "diffusion": expected one of "raster", "maskgit", "random", "next-scale"');
    await expect(raster.generate([prompt(1)], { ...base, order: { name: "raster" }, sampling: { temperature: 1, topK: 0, topP: 0 } })).rejects.toThrow("sampling.topP: expected a number in (0, 1] (1 = all tokens), got 0");
    await expect(raster.generate([prompt(1)], { ...base, order: { name: "raster" }, guidance: { prompts: [prompt(0)], scale: 2, schedule: "cosine" as never } })).rejects.toThrow('guidance.schedule: expected one of constant, linear, got "cosine"');
    await expect(raster.generate([prompt(1)], { ...base, order: { name: "raster" }, image: { modality: "image", shape: [5, 5] } })).rejects.toThrow("the raster order needs 27 positions for a prompt of 3 and 25 image tokens, more than the model's context of 24");
    done(raster);
    const var3 = decoderFor({ name: "next-scale", scales: SCALES });
    await expect(var3.generate([prompt(1)], { ...base, order: { name: "next-scale" } })).rejects.toThrow("next-scale: scales [1, 2, 3] hold 14 tokens (Σ s²), but an image has 9: use the image tokenizer's multi-scale quantizer scales");
    await expect(var3.generate([prompt(1)], { ...base, image: { modality: "image", shape: [14] }, order: { name: "next-scale", scales: [1, 3] } })).rejects.toThrow("next-scale: scales [1, 3] differ from the model's [1, 2, 3]");
    done(var3);
    const rar = decoderFor({ name: "random" }, 1);
    await expect(rar.generate([prompt(1)], { ...base, order: { name: "random" } })).rejects.toThrow("the random order needs one target position per image token (9), but the model has no target-position table");
    done(rar);
    const rar9 = decoderFor({ name: "random" }, 1, N);
    await expect(rar9.generate([prompt(1)], { ...base, order: { name: "random", order: [0, 0, 1, 2, 3, 4, 5, 6, 7] } })).rejects.toThrow("random order: order[1] = 0 — the order must be a permutation of 0..8");
    done(rar9);
  });
});
