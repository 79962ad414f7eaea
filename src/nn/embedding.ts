import { nn, np, type Array } from "../engine/index.ts";
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
  const [vocab] = p.table.shape;
  return np.matmul(nn.oneHot(ids, vocab).astype(p.table.dtype), p.table);
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
