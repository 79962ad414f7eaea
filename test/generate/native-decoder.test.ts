/**
 * NativeDecoder (one native call per step, native/decode.c) against the jax-js Decoder on the
 * same weights: every step's logits, through the prompt and the fed tokens, for each kind of
 * positions and MLP, at batch 2 and with rope2d grids; then generate (greedy, guidance) and the
 * errors a user can meet.
 */
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../../src/engine/node.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { tree } from "../../src/engine/index.ts";
import { initTransformer, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { Decoder } from "../../src/generate/decode.ts";
import { NativeDecoder, nativeDecoderMissing } from "../../src/generate/native-decoder.ts";
import { GREEDY } from "../../src/generate/sampling.ts";

beforeAll(() => startEngine());

const compilerPresent = spawnSync("cc", ["--version"]).status === 0;
const base = { vocabSize: 37, contextLength: 24, dim: 32, layers: 2, heads: 4, mlpRatio: 4 } as const;
const CONFIGS: [string, TransformerConfig][] = [
  ["learned positions, GELU", { ...base, mlp: "gelu", positions: "learned" }],
  ["rotary positions, SwiGLU", { ...base, mlp: "swiglu", positions: "rope" }],
  ["2-D rotary positions over grids, GELU", { ...base, mlp: "gelu", positions: "rope2d" }],
];

function init(cfg: TransformerConfig, seed: number): TransformerParams {
  const keys = new KeyStream(seed);
  const p = initTransformer(keys, cfg);
  keys.dispose();
  return p;
}

const argmaxRows = (logits: Float32Array, v: number) =>
  Int32Array.from({ length: logits.length / v }, (_, b) => {
    let best = 0;
    for (let j = 1; j < v; j++) if (logits[b * v + j]! > logits[b * v + best]!) best = j;
    return best;
  });

describe.skipIf(!compilerPresent || process.env.MMNTP_NATIVE === "0")("NativeDecoder", () => {
  it("is available where the native GEMM builds", () => {
    expect(nativeDecoderMissing()).toBeUndefined();
  });

  it.each(CONFIGS)("%s: every step's logits equal the jax-js Decoder's to float32 rounding", async (_, cfg) => {
    const params = init(cfg, 5);
    const jaxDecoder = new Decoder(params, cfg);
    const native = await NativeDecoder.create(params, cfg);
    const prompts = [
      [3, 1, 4],
      [2, 7, 1],
    ];
    const steps = 8;
    // rope2d: (row, column) ids of a 4-wide grid, shifted per row, as a layout's image block would give
    const grids = cfg.positions === "rope2d" ? prompts.map((_, r) => Int32Array.from({ length: 2 * (3 + steps) }, (_, i) => (i % 2 === 0 ? Math.floor(i / 2 / 4) + r : (i / 2) % 4 | 0))) : undefined;
    const a = await jaxDecoder.open(prompts, steps, grids);
    const b = await native.open(prompts, steps, grids);
    let worst = 0;
    let scale = 0;
    for (let s = 0; s < steps; s++) {
      const want = await a.advance();
      const got = await b.advance();
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        scale = Math.max(scale, Math.abs(want[i]!));
      }
      const next = argmaxRows(want, cfg.vocabSize);
      a.feed(next);
      b.feed(next);
    }
    a.dispose();
    b.dispose();
    expect(scale).toBeGreaterThan(0.1); // the logits are not all ~0, so the comparison means something
    expect(worst).toBeLessThan(2e-5 * Math.max(1, scale));
    jaxDecoder.dispose();
    native.dispose();
    tree.dispose(params);
  });

  it("generate: greedy tokens and classifier-free guidance match the jax-js Decoder", async () => {
    const cfg = CONFIGS[0]![1];
    const params = init(cfg, 11);
    const jaxDecoder = new Decoder(params, cfg);
    const native = await NativeDecoder.create(params, cfg, { threads: 2 });
    const opts = { sampling: GREEDY, guidance: { prompts: [[0], [0]], scale: 3 } };
    const want = await jaxDecoder.generate([[5], [9]], 12, opts);
    const got = await native.generate([[5], [9]], 12, opts);
    expect(got).toEqual(want);
    expect(new Set(got.flat()).size).toBeGreaterThan(2); // not one token repeated
    jaxDecoder.dispose();
    native.dispose();
    tree.dispose(params);
  });

  it("refuses bad input, naming the value", async () => {
    const cfg = CONFIGS[1]![1];
    const params = init(cfg, 2);
    const native = await NativeDecoder.create(params, cfg);
    tree.dispose(params);
    await expect(native.generate([[1, 99]], 2, { sampling: GREEDY })).rejects.toThrow(/99/);
    await expect(native.generate([[1]], cfg.contextLength + 1, { sampling: GREEDY })).rejects.toThrow(/context of 24/);
    const stream = await native.open([[1]], 2);
    await stream.advance();
    stream.feed(Int32Array.of(40));
    await expect(stream.advance()).rejects.toThrow(/token 40 .*vocabulary \[0, 37\)/);
    stream.feed(Int32Array.of(4));
    await stream.advance();
    await expect(stream.advance()).rejects.toThrow(/filled its 2 positions/);
    stream.dispose();
    await expect(NativeDecoder.create(init(cfg, 2), cfg, { threads: 0 })).rejects.toThrow(/threads .* got 0/);
    native.dispose();
    await expect(native.generate([[1]], 1, { sampling: GREEDY })).rejects.toThrow(/after dispose/);
  });
});
