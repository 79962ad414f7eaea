import { setContractionHook, type ContractionPlan } from "@jax-js/jax";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { grad, jit, np, startEngine, type Array as Tensor } from "../../src/engine/index.ts";
import { contractReference, gemmFromPlan, gemmParams, PARAM_A, PARAM_B, PARAM_C, type Gemm } from "../../src/engine/gemm.ts";
import { uniformValues } from "../helpers/values.ts";

beforeAll(() => startEngine());
afterEach(() => setContractionHook(undefined));

/** What a plan means, evaluated directly: out[o] = Σ_k A[offA + o·sA + k·sAk] · B[…]. */
function evaluatePlan(plan: ContractionPlan, inputs: Float32Array[]): Float64Array {
  const outShape = plan.shape.slice(0, -1);
  const k = plan.shape[plan.shape.length - 1]!;
  const size = outShape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(size);
  for (let flat = 0; flat < size; flat++) {
    const idx: number[] = [];
    let rest = flat;
    for (let i = outShape.length - 1; i >= 0; i--) {
      idx[i] = rest % outShape[i]!;
      rest = Math.floor(rest / outShape[i]!);
    }
    const base = plan.operands.map((op) => op.offset + idx.reduce((s, v, i) => s + v * op.strides[i]!, 0));
    for (let r = 0; r < k; r++) {
      const [a, b] = plan.operands.map((op, j) => inputs[op.gid]![base[j]! + r * op.strides[plan.shape.length - 1]!]!);
      out[flat] += a! * b!;
    }
  }
  return out;
}

/** Lay the inputs and an output out in one heap and run the GEMM on it with the JS reference. */
function runReference(gemm: Gemm, inputs: Float32Array[], outSize: number): Float32Array {
  const starts: number[] = [];
  let used = 3; // a non-zero start, so offsets are exercised
  for (const x of inputs) {
    starts.push(used);
    used += x.length;
  }
  const heap = new Float32Array(used + outSize).fill(Number.NaN);
  inputs.forEach((x, i) => heap.set(x, starts[i]));
  const params = gemmParams(gemm, 1);
  params[PARAM_A] = starts[gemm.aInput]! + gemm.aOffset;
  params[PARAM_B] = starts[gemm.bInput]! + gemm.bOffset;
  params[PARAM_C] = used;
  contractReference(heap, params);
  return heap.subarray(used);
}

// Plans as jax-js builds them: output dims + K, each operand's strides per dim (0 = not read).
const PLANS: Record<string, ContractionPlan> = {
  "x[B,T,D]·w[D,F]": { shape: [2, 3, 4, 5], operands: [{ gid: 0, strides: [12, 4, 0, 1], offset: 0 }, { gid: 1, strides: [0, 0, 1, 4], offset: 0 }] },
  "x·wᵀ (w stored [F,D])": { shape: [6, 4, 5], operands: [{ gid: 0, strides: [5, 0, 1], offset: 0 }, { gid: 1, strides: [0, 5, 1], offset: 0 }] },
  "xᵀ·g weight gradient": { shape: [5, 4, 6], operands: [{ gid: 0, strides: [1, 0, 5], offset: 0 }, { gid: 1, strides: [0, 1, 4], offset: 0 }] },
  "attention q·kᵀ [B,H,T,T]": { shape: [2, 3, 4, 4, 5], operands: [{ gid: 0, strides: [60, 20, 5, 0, 1], offset: 0 }, { gid: 1, strides: [60, 20, 0, 5, 1], offset: 0 }] },
  "operands swapped (B first)": { shape: [4, 6, 5], operands: [{ gid: 1, strides: [0, 1, 6], offset: 0 }, { gid: 0, strides: [5, 0, 1], offset: 0 }] },
  "view offsets, one input twice": { shape: [3, 3, 4], operands: [{ gid: 0, strides: [4, 0, 1], offset: 2 }, { gid: 0, strides: [0, 4, 1], offset: 1 }] },
  "batched dot products (x·x)": { shape: [5, 6], operands: [{ gid: 0, strides: [6, 1], offset: 0 }, { gid: 0, strides: [6, 1], offset: 0 }] },
  "broadcast output dim": { shape: [3, 2, 4, 5], operands: [{ gid: 0, strides: [5, 0, 0, 1], offset: 0 }, { gid: 1, strides: [0, 0, 1, 4], offset: 0 }] },
  "rows that do not chain": { shape: [3, 4, 2, 6], operands: [{ gid: 0, strides: [6, 18, 0, 1], offset: 0 }, { gid: 1, strides: [0, 0, 1, 2], offset: 0 }] },
  "rows split by a column dim": { shape: [2, 3, 4, 5], operands: [{ gid: 0, strides: [20, 0, 5, 1], offset: 0 }, { gid: 1, strides: [0, 1, 0, 3], offset: 0 }] },
  "K = 1 outer product": { shape: [4, 7, 1], operands: [{ gid: 0, strides: [1, 0, 0], offset: 0 }, { gid: 1, strides: [0, 1, 0], offset: 0 }] },
};

/** Buffer size a plan reads from input `gid`. */
function extent(plan: ContractionPlan, gid: number): number {
  let max = 0;
  for (const op of plan.operands) if (op.gid === gid) max = Math.max(max, op.offset + plan.shape.reduce((s, d, i) => s + (d - 1) * op.strides[i]!, 0) + 1);
  return max;
}

describe("gemmFromPlan", () => {
  it.each(Object.entries(PLANS))("%s: the GEMM computes what the plan means", (_, plan) => {
    const gids = Math.max(...plan.operands.map((op) => op.gid)) + 1;
    const inputs = Array.from({ length: gids }, (_, gid) => uniformValues(extent(plan, gid), gid));
    const gemm = gemmFromPlan(plan)!;
    expect(gemm).toBeDefined();
    const outSize = plan.shape.slice(0, -1).reduce((p, d) => p * d, 1);
    const got = runReference(gemm, inputs, outSize);
    const want = evaluatePlan(plan, inputs);
    for (let i = 0; i < outSize; i++) expect(got[i]).toBeCloseTo(want[i]!, 5);
  });

  it("merges chained row dims into one M and keeps the transpose in the strides", () => {
    const g = gemmFromPlan(PLANS["x[B,T,D]·w[D,F]"]!)!;
    expect([g.m, g.n, g.k, g.sam, g.sak, g.sbk, g.sbn, g.scm, g.scn, g.batch.length]).toEqual([6, 4, 5, 4, 1, 4, 1, 4, 1, 0]);
    const t = gemmFromPlan(PLANS["xᵀ·g weight gradient"]!)!;
    expect([t.m, t.n, t.k, t.sam, t.sak, t.sbk, t.sbn]).toEqual([5, 4, 6, 1, 5, 4, 1]);
  });

  it("turns head dims into batch loops and unchained rows into extra loops", () => {
    expect(gemmFromPlan(PLANS["attention q·kᵀ [B,H,T,T]"]!)!.batch).toEqual([[2, 60, 60, 48], [3, 20, 20, 16]]);
    const g = gemmFromPlan(PLANS["rows that do not chain"]!)!;
    expect([g.m, g.n, g.batch]).toEqual([4, 2, [[3, 6, 0, 8]]]);
  });

  it("declines plans that need more than four batch loops", () => {
    const plan: ContractionPlan = { shape: [2, 2, 2, 2, 2, 3], operands: [{ gid: 0, strides: [48, 24, 12, 6, 3, 1], offset: 0 }, { gid: 1, strides: [48, 24, 12, 6, 3, 1], offset: 0 }] };
    expect(gemmFromPlan(plan)).toBeUndefined();
  });
});

describe("patched jax-js hands its contraction kernels to the hook", () => {
  /** A hook that runs every contraction with the JS reference, counting them. */
  function referenceHook(): { calls: number; epilogues: number; install(): void } {
    const state = {
      calls: 0,
      epilogues: 0,
      install() {
        setContractionHook((plan) => {
          if (plan.epilogue) state.epilogues++;
          const gemm = gemmFromPlan(plan);
          if (!gemm) return undefined;
          const params = gemmParams(gemm, 1);
          return (memory, ptrs) => {
            params[PARAM_A] = ptrs[gemm.aInput]! / 4 + gemm.aOffset;
            params[PARAM_B] = ptrs[gemm.bInput]! / 4 + gemm.bOffset;
            params[PARAM_C] = ptrs[ptrs.length - 1]! / 4;
            contractReference(new Float32Array(memory.buffer), params);
            state.calls++;
          };
        });
      },
    };
    return state;
  }

  const array = (shape: number[], seed: number): Tensor => np.array(uniformValues(shape.reduce((p, d) => p * d, 1), seed)).reshape(shape);

  const CASES: [string, number[], number[], (a: Tensor, b: Tensor) => Tensor][] = [
    ["x·w", [3, 5, 7], [7, 6], (a, b) => np.matmul(a, b)],
    ["x·wᵀ", [3, 5, 7], [6, 7], (a, b) => np.matmul(a, b.transpose())],
    ["aᵀ·b", [7, 5], [7, 6], (a, b) => np.matmul(a.transpose(), b)],
    ["batched q·kᵀ", [2, 3, 5, 4], [2, 3, 6, 4], (a, b) => np.matmul(a, b.transpose([0, 1, 3, 2]))],
    ["broadcast batch", [2, 3, 5, 4], [4, 6], (a, b) => np.matmul(a, b)],
    // math fused after the sum runs as an epilogue over the GEMM's result
    ["x·w + bias (epilogue)", [3, 5, 7], [7, 6], (a, b) => np.matmul(a, b).add(np.arange(6).astype(np.float32))],
    ["tanh(q·kᵀ·0.5) (epilogue), batched", [2, 3, 5, 4], [2, 3, 6, 4], (a, b) => np.tanh(np.matmul(a, b.transpose([0, 1, 3, 2])).mul(0.5))],
    ["x + x·w, a residual (epilogue)", [3, 5, 7], [7, 7], (a, b) => a.ref.add(np.matmul(a, b))],
  ];

  it.each(CASES)("%s: same numbers as the wasm kernel, through the hook", (name, sa, sb, f) => {
    // jitted, as models run: only then does jax-js fuse elementwise math into a matmul
    const want = jit(f)(array(sa, 1), array(sb, 2)).dataSync();
    const hook = referenceHook();
    hook.install();
    const got = jit(f)(array(sa, 1), array(sb, 2)).dataSync();
    expect(hook.calls).toBe(1);
    expect(hook.epilogues).toBe(name.includes("epilogue") ? 1 : 0);
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 5);
  });

  it("gradients of a jitted two-layer net agree with the wasm kernels", () => {
    const loss = (w1: Tensor, w2: Tensor, x: Tensor) => np.tanh(np.matmul(np.tanh(np.matmul(x, w1)), w2)).sum();
    const step = jit(grad(loss, { argnums: [0, 1] } as never) as unknown as (w1: Tensor, w2: Tensor, x: Tensor) => [Tensor, Tensor]);
    const run = () => step(array([6, 8], 3), array([8, 3], 4), array([2, 5, 6], 5)).map((g) => g.dataSync());
    const want = run();
    const hook = referenceHook();
    hook.install();
    const got = run();
    expect(hook.calls).toBeGreaterThanOrEqual(4); // 2 forward, ≥ 2 backward (dW1, dW2, dh)
    want.forEach((w, j) => w.forEach((v, i) => expect(got[j]![i]).toBeCloseTo(v, 5)));
  });
});
