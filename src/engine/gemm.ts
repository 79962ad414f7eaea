/**
 * jax-js contraction kernels as strided, batched GEMMs.
 *
 * jax-js lowers every matmul, einsum and dot (forward and backward) to one kernel shape:
 * `out[o] = Σ_k A[viewA(o, k)] · B[viewB(o, k)]`, where `o` runs over the output dims in
 * row-major order and each operand's view gives a stride per output dim and for `k`. The
 * vendored patch 3 (vendor/README.md) hands such kernels' views to a hook as a
 * `ContractionPlan`. This file turns a plan into GEMM parameters for the native kernel
 * (src/engine/native.ts, the native/ addon) and holds a plain-JS reference of that kernel.
 *
 * Each output dim is classified by which operand moves along it:
 * - only A: a row dim (M); only B: a column dim (N); both, or neither: a batch dim.
 * The innermost row dim becomes M and absorbs outer row dims while the strides chain
 * (`stride_outer == stride_inner · size_inner` in both A and the output), likewise N; any
 * row or column dim that does not chain becomes a batch dim. So `[B,T,D]·[D,F]` is one GEMM
 * with M = B·T, attention's `[B,H,T,Dh]·[B,H,Dh,T]` is B·H batched GEMMs, and the
 * transposes of the backward pass are the same GEMMs with other strides.
 */
import type { ContractionPlan } from "@jax-js/jax";

/** Batch dims a GEMM may have (each is one loop in the native kernel). */
export const MAX_BATCH_DIMS = 4;

/** A strided batched GEMM: `C[m·scm + n·scn] = Σ_k A[m·sam + k·sak] · B[k·sbk + n·sbn]` per batch. */
export interface GemmLayout {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly sam: number;
  readonly sak: number;
  readonly sbk: number;
  readonly sbn: number;
  readonly scm: number;
  readonly scn: number;
  /** Outermost first: `[count, strideA, strideB, strideC]`. */
  readonly batch: readonly (readonly [number, number, number, number])[];
}

/** A jax-js contraction kernel as a GEMM: its layout, and where A and B come from. */
export interface Gemm extends GemmLayout {
  /** Which kernel input is A / B (indexes the kernel's input pointers). */
  readonly aInput: number;
  readonly bInput: number;
  /** Element offsets of A and B within their buffers (views may start inside a buffer). */
  readonly aOffset: number;
  readonly bOffset: number;
}

interface Dim {
  size: number;
  a: number;
  b: number;
  c: number;
}

/** Row-major strides of `shape`. */
function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= shape[i]!;
  }
  return strides;
}

/**
 * Merge `dims` (in output order) from the innermost outwards while their strides chain in
 * `key` and in the output; returns the merged dim and the dims left over (outer ones).
 */
function mergeInner(dims: Dim[], key: "a" | "b"): { merged: Dim | undefined; rest: Dim[] } {
  if (dims.length === 0) return { merged: undefined, rest: [] };
  const merged = { ...dims[dims.length - 1]! };
  let i = dims.length - 2;
  for (; i >= 0; i--) {
    const outer = dims[i]!;
    if (outer[key] !== merged[key] * merged.size || outer.c !== merged.c * merged.size) break;
    merged.size *= outer.size;
  }
  return { merged, rest: dims.slice(0, i + 1) };
}

/** The GEMM a contraction plan computes, or undefined if it needs more than MAX_BATCH_DIMS loops. */
export function gemmFromPlan(plan: ContractionPlan): Gemm | undefined {
  const { shape, operands } = plan;
  if (operands.length !== 2) return undefined;
  const [opA, opB] = operands as [ContractionPlan["operands"][0], ContractionPlan["operands"][0]];
  const outShape = shape.slice(0, -1);
  const outStrides = rowMajorStrides(outShape);
  const rows: Dim[] = [];
  const cols: Dim[] = [];
  const batch: Dim[] = [];
  outShape.forEach((size, i) => {
    if (size === 1) return;
    const dim = { size, a: opA.strides[i]!, b: opB.strides[i]!, c: outStrides[i]! };
    if (dim.a !== 0 && dim.b === 0) rows.push(dim);
    else if (dim.a === 0 && dim.b !== 0) cols.push(dim);
    else batch.push(dim);
  });
  const m = mergeInner(rows, "a");
  const n = mergeInner(cols, "b");
  // Unchained row/column dims loop as batch dims; keep every batch dim in output order.
  const loops = [...batch, ...m.rest, ...n.rest].sort((x, y) => y.c - x.c);
  if (loops.length > MAX_BATCH_DIMS) return undefined;
  return {
    m: m.merged?.size ?? 1,
    n: n.merged?.size ?? 1,
    k: shape[shape.length - 1]!,
    aInput: opA.gid,
    bInput: opB.gid,
    aOffset: opA.offset,
    bOffset: opB.offset,
    sam: m.merged?.a ?? 0,
    sak: opA.strides[shape.length - 1]!,
    sbk: opB.strides[shape.length - 1]!,
    sbn: n.merged?.b ?? 0,
    scm: m.merged?.c ?? 0,
    scn: n.merged?.c ?? 0,
    batch: loops.map((d) => [d.size, d.a, d.b, d.c] as const),
  };
}

/** Multiply-adds of a GEMM. */
export function gemmWork(g: GemmLayout): number {
  return g.batch.reduce((w, [count]) => w * count, g.m * g.n * g.k);
}

// The native kernel's parameter vector (native/contract.c documents the same layout):
// [M, N, K, a, sam, sak, b, sbk, sbn, c, scm, scn, threads, nb, (count, sa, sb, sc) × nb].
export const PARAM_A = 3;
export const PARAM_B = 6;
export const PARAM_C = 9;
export const PARAM_THREADS = 12;

/** The parameter vector for `g`, with the operand offsets left at 0 (set per call). */
export function gemmParams(g: GemmLayout, threads: number): Int32Array {
  const head = [g.m, g.n, g.k, 0, g.sam, g.sak, 0, g.sbk, g.sbn, 0, g.scm, g.scn, threads, g.batch.length];
  return Int32Array.from([...head, ...g.batch.flat()]);
}

/** Element offsets that batch entry `index` (row-major over `batch`) adds to A, B and C. */
export function batchOffsets(batch: GemmLayout["batch"], index: number): [number, number, number] {
  const offsets: [number, number, number] = [0, 0, 0];
  for (let i = batch.length - 1, rest = index; i >= 0; i--) {
    const [count, sa, sb, sc] = batch[i]!;
    const idx = rest % count;
    rest = Math.floor(rest / count);
    offsets[0] += idx * sa;
    offsets[1] += idx * sb;
    offsets[2] += idx * sc;
  }
  return offsets;
}

/**
 * The native kernel's semantics in plain JS (float64 accumulation): the oracle its tests
 * compare against. `mem` is the whole heap; offsets and strides are in elements.
 */
export function contractReference(mem: Float32Array, params: Int32Array): void {
  const [m, n, k, a, sam, sak, b, sbk, sbn, c, scm, scn, , nb] = params as unknown as number[];
  const batch: [number, number, number, number][] = [];
  for (let i = 0; i < nb!; i++) batch.push(Array.from(params.subarray(14 + 4 * i, 18 + 4 * i)) as [number, number, number, number]);
  const total = batch.reduce((t, [count]) => t * count, 1);
  for (let flat = 0; flat < total; flat++) {
    const [da, db, dc] = batchOffsets(batch, flat);
    const [oa, ob, oc] = [a! + da, b! + db, c! + dc];
    for (let i = 0; i < m!; i++) {
      for (let j = 0; j < n!; j++) {
        let sum = 0;
        for (let r = 0; r < k!; r++) sum += mem[oa + i * sam! + r * sak!]! * mem[ob + r * sbk! + j * sbn!]!;
        mem[oc + i * scm! + j * scn!] = sum;
      }
    }
  }
}
