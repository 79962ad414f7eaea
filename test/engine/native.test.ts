import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, np, startEngine, tree, type Array as Tensor } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { contractReference, gemmParams, PARAM_A, PARAM_B, PARAM_C, type GemmLayout } from "../../src/engine/gemm.ts";
import { installNativeContractions, loadNativeKernels, nativeStats, uninstallNativeContractions, type NativeKernels } from "../../src/engine/native.ts";
import { forward, initTransformer, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { causalMask } from "../../src/backbone/masks.ts";
import { nextTokenLoss, type NextTokenBatch } from "../../src/train/losses.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";
import { uniformValues } from "../helpers/values.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
let native: NativeKernels | undefined;

beforeAll(async () => {
  await startEngine();
  native = loadNativeKernels();
});

const compilerPresent = spawnSync("cc", ["--version"]).status === 0;

it("the native GEMM builds and loads wherever a C compiler is present; else the stats say why", () => {
  const stats = nativeStats();
  if (compilerPresent && process.env.MMNTP_NATIVE !== "0") expect(stats.reason).toBeUndefined();
  if (native === undefined) {
    expect(stats.enabled).toBe(false);
    // the causes native.ts and native-build.ts report, each naming what is missing or failed
    expect(stats.reason).toMatch(/^(MMNTP_NATIVE=0|no native sources .+|could not compile .+: .+|could not load .+: .+)$/);
    return;
  }
  // startEngine installed it, and it computes: [2x3]·[3x2] of small integers is exact in fp32
  expect(stats.enabled).toBe(true);
  expect(stats.reason).toBeUndefined();
  const { params, heapSize } = layout(2, 2, 3, {});
  const heap = new Float32Array(heapSize).fill(-1);
  heap.set([1, 2, 3, 4, 5, 6], params[PARAM_A]);
  heap.set([7, 8, 9, 10, 11, 12], params[PARAM_B]);
  native.contract(heap, params);
  const c = params[PARAM_C]!;
  expect(Array.from(heap.subarray(c - 1, c + 5))).toEqual([12, 58, 64, 139, 154, -1]);
});

/** A GEMM of the given sizes and layout over one heap, with A, B then C laid out from `base`. */
function layout(m: number, n: number, k: number, opts: { aT?: boolean; bT?: boolean; batch?: number; threads?: number }) {
  const batch = opts.batch ?? 1;
  const base = 5;
  const aSize = m * k;
  const bSize = k * n;
  const gemm: GemmLayout = {
    m,
    n,
    k,
    sam: opts.aT ? 1 : k,
    sak: opts.aT ? m : 1,
    sbk: opts.bT ? 1 : n,
    sbn: opts.bT ? k : 1,
    scm: n,
    scn: 1,
    batch: batch > 1 ? [[batch, aSize, bSize, m * n]] : [],
  };
  const params = gemmParams(gemm, opts.threads ?? 1);
  params[PARAM_A] = base;
  params[PARAM_B] = base + batch * aSize;
  params[PARAM_C] = base + batch * (aSize + bSize);
  return { params, heapSize: base + batch * (aSize + bSize + m * n) + 7 };
}

const SHAPES: [string, number, number, number, { aT?: boolean; bT?: boolean; batch?: number; threads?: number }][] = [
  ["square, not a multiple of any tile", 37, 45, 29, {}],
  ["one row (decode's matrix-vector)", 1, 300, 256, {}],
  ["one row, B transposed", 1, 130, 257, { bT: true }],
  ["eight rows (batch-8 decode), K and N off the blocks", 8, 301, 37, {}],
  ["sixteen rows, threads 2", 16, 130, 70, { threads: 2 }],
  ["one column (the transposed problem streams)", 70, 1, 33, { aT: true }],
  ["two rows, threads 2", 2, 96, 64, { threads: 2 }],
  ["Aᵀ·B (weight gradient)", 70, 33, 150, { aT: true }],
  ["A·Bᵀ", 50, 70, 65, { bT: true }],
  ["both transposed", 19, 23, 31, { aT: true, bT: true }],
  ["batched, threads 2", 24, 40, 16, { batch: 6, threads: 2 }],
  ["big enough to split, threads 2", 200, 300, 256, { threads: 2 }],
  ["K = 1", 9, 70, 1, {}],
];

/**
 * Runs the addon on a heap of seeded values (shared memory or not) and checks every element,
 * C and its surroundings, against the float64 reference on a copy.
 */
function expectReferenceResult(params: Int32Array, heapSize: number, k: number, seed: number, shared: boolean): void {
  const bytes = heapSize * 4;
  const heap = new Float32Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  heap.set(uniformValues(heapSize, seed));
  const want = heap.slice();
  contractReference(want, params);
  native!.contract(heap, params);
  // fp32 accumulation over K terms of size ≤ 1: error well under 1e-6·K
  let worst = 0;
  for (let i = 0; i < heapSize; i++) worst = Math.max(worst, Math.abs(heap[i]! - want[i]!));
  expect(worst).toBeLessThan(1e-6 * k + 1e-6);
}

describe.skipIf(!compilerPresent || process.env.MMNTP_NATIVE === "0")("native contract", () => {
  it.each(SHAPES)("%s: matches the float64 JS reference", (_, m, n, k, opts) => {
    for (const shared of [false, true]) {
      const { params, heapSize } = layout(m, n, k, opts);
      expectReferenceResult(params, heapSize, k, m * 31 + n, shared);
    }
  });

  it.each([
    [256, 300, 1],
    [37, 64, 2],
    [3, 5, 2],
    [1, 10, 2],
  ])("dot products along a unit-stride batch (a LayerNorm gain's gradient), %i columns of %i rows, threads %i: matches the reference", (count, k, threads) => {
    // C[j] = Σ_r A[r, j]·B[r, j] over row-major [K, count] A and B: M = N = 1, batch j at stride 1
    const gemm: GemmLayout = { m: 1, n: 1, k, sam: 0, sak: count, sbk: count, sbn: 0, scm: 0, scn: 0, batch: [[count, 1, 1, 1]] };
    const params = gemmParams(gemm, threads);
    const base = 3;
    [params[PARAM_A], params[PARAM_B], params[PARAM_C]] = [base, base + k * count, base + 2 * k * count];
    expectReferenceResult(params, base + (2 * k + 1) * count + 5, k, count + k, false);
  });

  it("rejects malformed parameters, naming the bad value", () => {
    const heap = new Float32Array(64);
    const ok = layout(3, 4, 2, {}).params;
    expect(() => native!.contract(heap, ok.subarray(0, 10))).toThrow(/14/);
    const negative = ok.slice();
    negative[0] = -3;
    expect(() => native!.contract(heap, negative)).toThrow(/-3/);
    const outside = ok.slice();
    outside[PARAM_C] = 60; // C needs 12 elements from 60: past the 64-element heap
    expect(() => native!.contract(heap, outside)).toThrow(/64/);
    const threads = ok.slice();
    threads[12] = 0;
    expect(() => native!.contract(heap, threads)).toThrow(/thread/i);
  });
});

describe.skipIf(!compilerPresent || process.env.MMNTP_NATIVE === "0")("jax-js matmuls on the native GEMM", () => {
  const cfg: TransformerConfig = { vocabSize: 40, contextLength: 16, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 4, positions: "learned" };

  function batch(): NextTokenBatch {
    const inputs = new Int32Array(4 * 16).map((_, i) => (i * 7 + 3) % 40);
    const targets = new Int32Array(4 * 16).map((_, i) => (i * 11 + 5) % 40);
    const weights = new Float32Array(4 * 16).fill(1 / 16);
    return { inputs: fromHost(inputs, [4, 16]), targets: fromHost(targets, [4, 16]), weights: fromHost(weights, [4, 16]) };
  }

  async function losses(): Promise<number[]> {
    const trainer = new Trainer<NextTokenBatch>(initTransformer(new KeyStream(3), cfg), (p, b) => nextTokenLoss(p as TransformerParams, b, cfg), DEFAULT_ADAMW);
    const out: number[] = [];
    for (let i = 0; i < 4; i++) out.push((await trainer.step(batch(), 3e-3)).loss);
    trainer.dispose();
    return out;
  }

  it("a transformer trains to the same losses on the native GEMM as on wasm, with its matmuls run natively", async () => {
    uninstallNativeContractions();
    const wasm = await losses();
    expect(installNativeContractions()).toBe(true);
    const calls0 = nativeStats().calls;
    const fast = await losses();
    // forward + backward of 2 layers × (qkv, QKᵀ, PV, out, MLP up, down) + head, per step
    expect(nativeStats().calls - calls0).toBeGreaterThan(4 * 20);
    fast.forEach((l, i) => expect(l).toBeCloseTo(wasm[i]!, 4));
    expect(fast[3]).toBeLessThan(fast[0]!); // it learns
  });

  it("the forward pass's logits agree to float32 rounding", () => {
    const p = initTransformer(new KeyStream(9), cfg);
    const tokens = fromHost(Int32Array.from({ length: 16 }, (_, i) => (i * 5) % 40), [1, 16]);
    const logits = (): Float32Array => (forward(tree.ref(p), tokens.ref, causalMask(16), cfg) as Tensor).dataSync() as Float32Array;
    uninstallNativeContractions();
    const wasm = logits();
    installNativeContractions();
    const fast = logits();
    let worst = 0;
    for (let i = 0; i < wasm.length; i++) worst = Math.max(worst, Math.abs(wasm[i]! - fast[i]!));
    expect(worst).toBeLessThan(1e-4);
    tree.dispose(p);
    tokens.dispose();
  });

  it("runs inside the worker pool's queue: a 2-thread training step gives the same loss as wasm", () => {
    // A fresh process: the pool is fixed when jax-js loads, and this file's engine has none.
    const script = `
      const { fromHost, np, startEngine, nativeStats } = await import("./src/engine/node.ts");
      const { Trainer } = await import("./src/train/step.ts");
      await startEngine();
      const x = fromHost(Float32Array.from({ length: 64 * 96 }, (_, i) => Math.sin(i)), [64, 96]);
      const trainer = new Trainer({ w: fromHost(Float32Array.from({ length: 96 * 80 }, (_, i) => Math.cos(i) / 10), [96, 80]) },
        (p, x) => [np.square(np.tanh(np.matmul(x, p.w))).mean(), {}]);
      const out = [];
      for (let i = 0; i < 3; i++) out.push((await trainer.step(x.ref, 0.1)).loss);
      console.log(JSON.stringify({ out, calls: nativeStats().calls }));
    `;
    const run = (nativeSetting: string) => {
      const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        cwd: ROOT,
        env: { ...process.env, MMNTP_THREADS: "2", MMNTP_NATIVE: nativeSetting },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { out: number[]; calls: number };
    };
    const wasm = run("0");
    const fast = run("1");
    expect(wasm.calls).toBe(0);
    expect(fast.calls).toBeGreaterThanOrEqual(3); // at least the forward matmul, per step
    fast.out.forEach((l, i) => expect(l).toBeCloseTo(wasm.out[i]!, 4));
  });
});
