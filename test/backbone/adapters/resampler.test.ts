import { beforeAll, describe, expect, it } from "vitest";
import { np, random, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { checkResamplerConfig, checkResamplerSlots, initResampler, resample, type ResamplerConfig, type ResamplerParams } from "../../../src/backbone/adapters/resampler.ts";
import { compileSequence } from "../../../src/backbone/sequence/compile.ts";
import { JointVocab } from "../../../src/backbone/sequence/vocab.ts";
import { crossAttention } from "../../../src/nn/cross-attention.ts";
import { mlp } from "../../../src/nn/mlp.ts";
import { layerNorm } from "../../../src/nn/norm.ts";
import { DEFAULT_ADAMW } from "../../../src/train/optim.ts";
import { Trainer } from "../../../src/train/step.ts";
import { gradCheck, probe, toF64 } from "../../helpers/gradcheck.ts";
import { expectClose, f32, flat } from "../../helpers/fixtures.ts";
import { uniformValues } from "../../helpers/values.ts";

beforeAll(startEngine);

const cfg: ResamplerConfig = { queries: 4, dim: 8, featureDim: 12, layers: 2, heads: 2, mlpRatio: 2 };

describe("Perceiver Resampler", () => {
  it("features [B, N, Df] → [B, Q, D], for any N; an input projection only when Df ≠ D", () => {
    const p = initResampler(new KeyStream(0), cfg);
    expect(p.input!.w.shape).toEqual([12, 8]);
    expect(p.queries.shape).toEqual([4, 8]);
    for (const n of [1, 6, 9]) {
      const y = resample(tree.ref(p), f32(uniformValues(2 * n * 12, n), [2, n, 12]), cfg);
      expect(y.shape).toEqual([2, 4, 8]);
      y.dispose();
    }
    tree.dispose(p);
    expect("input" in initResampler(new KeyStream(0), { ...cfg, featureDim: 8 })).toBe(false);
  });

  it("is invariant to the order of the features (no positions), and not to their values", () => {
    const p = initResampler(new KeyStream(1), cfg);
    const f = Array.from(uniformValues(5 * 12, 2));
    const rows = (order: number[]) => order.flatMap((r) => f.slice(12 * r, 12 * r + 12));
    const run = (v: number[]) => flat(resample(tree.ref(p), f32(v, [1, 5, 12]), cfg));
    const base = run(rows([0, 1, 2, 3, 4]));
    expectClose(run(rows([3, 0, 4, 2, 1])), base, 1e-5);
    const other = run(rows([0, 1, 2, 3, 0]));
    expect(Math.max(...other.map((v, i) => Math.abs(v - base[i]!)))).toBeGreaterThan(1e-3);
    // the queries differ from each other: not Q copies of one pooled vector
    expect(Math.max(...base.slice(0, 8).map((v, i) => Math.abs(v - base[8 + i]!)))).toBeGreaterThan(1e-2);
    tree.dispose(p);
  });

  it("one layer by hand: queries attend over [LN_f(features); LN_q(queries)], then the feed-forward and the final LayerNorm", () => {
    const c = { ...cfg, layers: 1, featureDim: 8 };
    const p = initResampler(new KeyStream(4), c);
    const f = () => f32(uniformValues(5 * 8, 8), [1, 5, 8]);
    const got = flat(resample(tree.ref(p), f(), c));
    const l = p.layers[0]!;
    const byHand = (withQueries: boolean) => {
      const q = tree.ref(l);
      const x0 = p.queries.ref.reshape([1, 4, 8]);
      const xn = layerNorm(q.lnQueries, x0.ref);
      const fn = layerNorm(q.lnFeatures, f());
      const kv = withQueries ? np.concatenate([fn, xn.ref], 1) : fn;
      const x1 = x0.add(crossAttention(q.attn, xn, kv, { heads: 2 }));
      const x2 = x1.ref.add(mlp(q.mlp, layerNorm(q.ln2, x1)));
      return flat(layerNorm(tree.ref(p.lnf), x2));
    };
    expectClose(got, byHand(true), 1e-5);
    const featuresOnly = byHand(false);
    expect(Math.max(...got.map((v, i) => Math.abs(v - featuresOnly[i]!)))).toBeGreaterThan(1e-3);
    tree.dispose(p);
  });

  it.each([12, 8])("gradients match finite differences (float64, feature width %i)", (featureDim) => {
    const c = { ...cfg, featureDim, layers: 1 };
    const p = toF64(initResampler(new KeyStream(2), c));
    const features = random.normal(random.key(3), [2, 3, featureDim]).astype(np.float64);
    const err = gradCheck((p, x) => probe(resample(p as ResamplerParams, x as JaxArray, c)), [p as never, features], { perLeaf: 4 });
    expect(err).toBeLessThan(1e-3);
  });

  it("config errors name the field; a placeholder with another slot count than Q is refused clearly", () => {
    expect(() => checkResamplerConfig({ ...cfg, heads: 3 })).toThrow("resampler config.dim: 8 is not divisible by heads (3)");
    expect(() => checkResamplerConfig({ ...cfg, queries: 0 })).toThrow("resampler config.queries: expected an integer in [1, 16384], got 0");
    expect(() => checkResamplerConfig({ ...cfg, layers: 1.5 })).toThrow("resampler config.layers: expected an integer in [1, 64], got 1.5");
    const vocab = JointVocab.build({ text: { size: 8, pad: 0 }, specials: ["<image>"], modalities: [], placeholders: ["<image>"] });
    const doc = (slots: number) => compileSequence(vocab, { segments: [{ kind: "text", ids: [1] }, { kind: "placeholder", name: "image", slots, token: "<image>" }] });
    expect(() => checkResamplerSlots(cfg, doc(6).placeholders[0]!)).toThrow(
      'placeholder "image" has 6 slots, but the resampler makes 4 embeddings (queries = 4): give the placeholder 4 slots or the resampler 6 queries',
    );
    expect(() => checkResamplerSlots(cfg, doc(4).placeholders[0]!)).not.toThrow();
    const p = initResampler(new KeyStream(0), cfg);
    expect(() => resample(p, np.zeros([2, 3, 8]), cfg)).toThrow("resample: expected features [B, N, 12], got [2, 3, 8]");
  });

  it("maps 8 fixed feature sets to 8 targets with Trainer (loss falls ≥ 10×)", async () => {
    const c: ResamplerConfig = { queries: 4, dim: 16, featureDim: 8, layers: 2, heads: 2, mlpRatio: 2 };
    const features = f32(uniformValues(8 * 6 * 8, 5), [8, 6, 8]);
    // targets each with zero mean and unit variance over D: what the final LayerNorm can reach
    const raw = uniformValues(8 * 4 * 16, 6);
    for (let r = 0; r < 32; r++) {
      const row = raw.subarray(16 * r, 16 * r + 16);
      const m = row.reduce((a, v) => a + v, 0) / 16;
      const sd = Math.sqrt(row.reduce((a, v) => a + (v - m) ** 2, 0) / 16);
      row.forEach((v, i) => (row[i] = (v - m) / sd));
    }
    const targets = f32(raw, [8, 4, 16]);
    const loss = (p: ResamplerParams, b: { x: JaxArray; y: JaxArray }): [JaxArray, Record<string, JaxArray>] => [np.square(resample(p, b.x, c).sub(b.y)).mean(), {}];
    const trainer = new Trainer(initResampler(new KeyStream(7), c), (p, b) => loss(p as ResamplerParams, b as never), { ...DEFAULT_ADAMW, weightDecay: 0 });
    const losses: number[] = [];
    for (let s = 0; s < 300 && !(losses.length > 0 && losses.at(-1)! < losses[0]! / 20); s++) losses.push((await trainer.step({ x: features.ref, y: targets.ref }, 3e-3)).loss);
    tree.dispose([features, targets]);
    trainer.dispose();
    expect(losses.at(-1)!, `loss ${losses[0]} → ${losses.at(-1)} in ${losses.length} steps`).toBeLessThan(losses[0]! / 10);
  });
});
