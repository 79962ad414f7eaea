import { np, type Array, type DType } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { normal } from "./init.ts";

export type EmbeddingParams = { table: Array };

/** table: [V, D] ~ N(0, std²). */
export function initEmbedding(keys: KeyStream, vocab: number, dim: number, std = 0.02): EmbeddingParams {
  return { table: normal(keys, [vocab, dim], std) };
}

/**
 * ids: [...] int32 → [..., D].
 * A one-hot matmul rather than a gather: jax-js 0.1.25 cannot differentiate a gather
 * with traced indices inside `jit` ("routine primitive scatter input is not imm").
 * Ids are not range-checked here (they may be tracers); check them at the entry point
 * with `checkIds`.
 */
export function embed(p: EmbeddingParams, ids: Array): Array {
  return np.matmul(oneHot(ids, p.table.shape[0]!, p.table.dtype), p.table);
}

/**
 * ids [...] (integers) → [..., k] of 0 and 1 in `dtype`. An `ids == iota` comparison, one flat
 * kernel: jax-js's `nn.oneHot` gathers rows of an identity matrix, whose index arithmetic made it
 * ~3× slower (4.3 ms for [32, 64] ids over 292 rows, 1 thread). Consumes ids.
 */
export function oneHot(ids: Array, k: number, dtype: DType = np.float32): Array {
  return np.arange(k).astype(np.int32).equal(ids.astype(np.int32).reshape([...ids.shape, 1])).astype(dtype);
}

/** Host-side range check of token ids, so a bad id fails loudly instead of embedding zeros. */
export function checkIds(ids: ArrayLike<number>, vocab: number, what = "token id"): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new Error(`unknown ${what} ${id} at position ${i}: expected an integer in [0, ${vocab - 1}]`);
    }
  }
}
