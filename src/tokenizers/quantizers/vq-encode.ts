import { ConcreteArray, jit, np, tree, type Array, type OwnedFunction } from "../../engine/index.ts";
import { linear, type LinearParams } from "../../nn/linear.ts";
import { expectLastDim, fmt } from "../../nn/shapes.ts";
import { checkQuantizerInput } from "./checks.ts";
import { checkPositiveInt, l2normalize, type Distance, type VQOptions, type VQParams } from "./vq.ts";

/**
 * Inference-only VQ encoding: nearest-code ids for many vectors, without codes, losses or
 * gradients (`vq.quantize` computes all of those). The ids are `vq.quantize`'s, up to float
 * rounding on near-ties: argmin_k ‖z − c_k‖² = argmin_k (‖c_k‖² − 2 z·c_k), since ‖z‖² is the same
 * for every k; ties go to the lowest k, as `np.argmin`.
 *
 * The vectors go through in chunks of a fixed size B, so one jitted function of one shape
 * serves any N and the [K, B] distance block stays cache-sized:
 *   prepare:  x [B, D] → z1 [B, C + 1]: projIn and l2-normalize where the options ask, then a
 *             column of ones appended.
 *   nearest:  d = [−2·codebook, ‖c‖²] @ z1ᵀ  [K, B];  ids = argmin over K  [B].
 * ‖c‖² rides in the matmul as a (C + 1)-th column against the ones: added after the matmul, it
 * was a separate pass over the 16 MiB block (the native GEMM runs the post-sum math as its own
 * wasm kernel), 1.6–1.9 ms of 6.7–7.0 per chunk (native GEMM 2.6 ms, argmin 2.2 ms; 2026-11-23).
 * Why this layout (jax-js 0.1.25 wasm kernels, K = 1024, D = 64, B = 4096, one thread):
 * - d is [K, B], so the argmin's two reductions run down columns and vectorize over B:
 *   2.2 ms per chunk, against 9.6 ms along rows of a [B, K] block (the matmul takes ~16 ms).
 * - zᵀ is a view: both matmul operands are contiguous along the contracted C axis, which
 *   jax-js turns into SIMD dot products: 33 GFLOP/s, against 28.5 with zᵀ materialized [C, B].
 * - prepare is a separate jitted call, so z is materialized once: normalizing inside `nearest`
 *   would be fused into the matmul's operand loads and recomputed K times.
 * - [−2·codebook, ‖c‖²] is computed once per call, not per chunk.
 * Nothing is read back to the host: chunks are submitted a few at a time (see `encodeIds`),
 * and their ids are concatenated on the device (in a tree, so no chunk is copied more than
 * log₈(N/B) times).
 * B must be a multiple of 4 for jax-js's SIMD matmul (4097 runs at 40% of the speed of 4096):
 * chunks are rounded up to a multiple of 16, and the last chunk is zero-padded.
 */
export type EncodeOptions = {
  /** Vectors per jitted call, B (rounded up to a multiple of 16). 4096: [K, B] float32 distances of 16 MiB for K = 1024. */
  readonly chunk: number;
};

export const DEFAULT_ENCODE: EncodeOptions = { chunk: 4096 };

/** Chunks submitted and not yet finished, at most (see `encodeIds`). */
const IN_FLIGHT = 4;

/** Chunk sizes are rounded up to a multiple of this (fewer vectors are zero-padded). */
const MIN_CHUNK = 16;

/** prepare's input: a chunk x [B, D], and projIn when factorized. */
type Chunk = { x: Array; projIn?: LinearParams };

/** prepare: { x [B, D], projIn? } → z1 [B, C + 1], the lookup vectors with a ones column. Consumes the chunk. */
const prepares = new Map<Distance, OwnedFunction<(chunk: Chunk) => Array>>();

function prepareFor(distance: Distance): OwnedFunction<(chunk: Chunk) => Array> {
  let f = prepares.get(distance);
  if (f === undefined) {
    f = jit(({ x, projIn }: Chunk): Array => {
      const projected = projIn ? linear(projIn, x) : x;
      const z = distance === "cosine" ? l2normalize(projected) : projected;
      return np.concatenate([z, np.ones([z.shape[0], 1])], 1);
    });
    prepares.set(distance, f);
  }
  return f;
}

/**
 * c: [−2·codebook, ‖c‖²] [K, C + 1], z1: [B, C + 1] (ones last) → ids [B] int32, the first k
 * attaining min_k (‖c_k‖² − 2·c_k·z). Consumes its arguments.
 */
const nearest = jit((c: Array, z1: Array): Array => np.argmin(np.matmul(c, z1.transpose([1, 0])), 0));

/** Concatenate along axis 0 in a tree of ≤ 8-way concatenations. Consumes parts. */
function concatAll(parts: Array[]): Array {
  while (parts.length > 1) {
    const next: Array[] = [];
    for (let i = 0; i < parts.length; i += 8) {
      const group = parts.slice(i, i + 8);
      next.push(group.length === 1 ? group[0] : np.concatenate(group, 0));
    }
    parts = next;
  }
  return parts[0];
}

/** Throw unless the params fit the options: codebook [K, lookupDim ?? D], projIn iff lookupDim. */
function checkParams(p: VQParams, opts: VQOptions): void {
  const c = opts.lookupDim ?? opts.dim;
  const s = p.codebook.shape;
  if (s.length !== 2 || s[0] !== opts.codebookSize || s[1] !== c) {
    throw new Error(`vq.encodeIds: expected codebook [${opts.codebookSize}, ${c}] (codebookSize, ${opts.lookupDim === undefined ? "dim" : "lookupDim"}), got ${fmt(s)}`);
  }
  if ((opts.lookupDim !== undefined) !== (p.projIn !== undefined)) {
    throw new Error(`vq.encodeIds: lookupDim is ${opts.lookupDim ?? "off"} but the params ${p.projIn ? "have" : "lack"} projIn`);
  }
}

/**
 * checkQuantizerInput's NaN/Inf check, cheaply: one sum over x first (no temporaries); only if
 * that is not finite (a NaN/Inf, or an overflow of large values) the exact check, which counts
 * them but materializes three temporaries of x's size (3 GiB for 4M vectors of 64 floats).
 */
async function checkInput(x: Array, dim: number): Promise<void> {
  expectLastDim(x, dim, "vq.encodeIds");
  if (!(x instanceof ConcreteArray)) return;
  // An async read: x may come from work still queued on the worker pool (MMNTP_THREADS > 1).
  const [sum] = (await x.ref.sum().data()) as Float32Array;
  if (!Number.isFinite(sum)) checkQuantizerInput(x, dim, "vq.encodeIds");
}

/**
 * x: [..., D] → ids [...] int32, the nearest code of each vector (`vq.quantize(...).indices`
 * without the codes and losses), `chunk` vectors per jitted call. Async: jax-js runs work lazily,
 * so chunks are submitted as they go, at most `IN_FLIGHT` ahead of the last one finished; that
 * bounds the heap (each unsubmitted chunk holds its [K, B] distances: 245 chunks of 16 MiB for
 * 1M vectors overflow the 4 GiB wasm heap) and keeps the worker pool (MMNTP_THREADS > 1) fed.
 * Resolves when the ids are computed. Consumes params and x.
 */
export async function encodeIds(params: VQParams, x: Array, opts: VQOptions, { chunk }: EncodeOptions = DEFAULT_ENCODE): Promise<Array> {
  checkParams(params, opts);
  checkPositiveInt(chunk, "vq.encodeIds chunk");
  await checkInput(x, opts.dim);
  const lead = x.shape.slice(0, -1);
  const n = lead.reduce((a, b) => a * b, 1);
  const { projIn } = params;
  if (params.projOut) tree.dispose(params.projOut);
  if (n === 0) {
    tree.dispose([params.codebook, projIn ?? [], x]);
    return np.zeros(lead, { dtype: np.int32 });
  }
  const codebook = opts.distance === "cosine" ? l2normalize(params.codebook) : params.codebook;
  const cc = np.square(codebook.ref).sum(-1, { keepdims: true }); // [K, 1]
  const c = np.concatenate([codebook.mul(-2), cc], 1); // [K, C + 1]
  const flat = x.reshape([n, opts.dim]);
  const b = Math.ceil(Math.min(chunk, n) / MIN_CHUNK) * MIN_CHUNK;
  const prepare = prepareFor(opts.distance);
  const parts: Array[] = [];
  const inFlight: Promise<Array>[] = [];
  try {
    for (let start = 0; start < n; start += b) {
      const m = Math.min(b, n - start);
      let xb = flat.ref.slice([start, start + m]); // [m, D]
      if (m < b) xb = np.pad(xb, [[0, b - m], [0, 0]]); // the last chunk: zero rows, ids dropped below
      const z1 = prepare(projIn ? { x: xb, projIn: tree.ref(projIn) } : { x: xb });
      const ids = nearest(c.ref, z1);
      parts.push(m < b ? ids.slice([0, m]) : ids);
      inFlight.push(parts[parts.length - 1].blockUntilReady()); // submits the chunk's kernels
      if (inFlight.length > IN_FLIGHT) await inFlight.shift();
    }
    await Promise.all(inFlight);
  } finally {
    tree.dispose([flat, c, projIn ?? []]);
  }
  return concatAll(parts).reshape(lead);
}
