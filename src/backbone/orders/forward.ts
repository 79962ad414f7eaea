/**
 * The backbone as the generation orders run it: `embedInputs → hidden → lmHead` (transformer.ts)
 * with per-sequence position ids, any attention mask and, for random-order models, RAR's
 * target-aware position embedding (Yu et al. 2024, "Randomized Autoregressive Visual Generation",
 * §3.2): a learned vector for the image position the token at t must predict next is added to
 * its input, so a model trained on random permutations is told which position comes next (a
 * causal model given only the tokens so far could not know which cell of the grid it is drawing).
 */
import { np, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { embed, type EmbeddingParams } from "../../nn/embedding.ts";
import { normal } from "../../nn/init.ts";
import { fmt } from "../../nn/shapes.ts";
import { embedInputs, hidden, lmHead, type TransformerConfig, type TransformerParams } from "../transformer.ts";

/** The transformer, plus the target-position table [N + 1, D] of a random-order model (row 0: no image position next). */
export type OrderParams = TransformerParams & { target?: EmbeddingParams };

/** Target-position table for N image positions: row 0 (prompt tokens) zero, rows 1..N ~ N(0, 0.02²) as RAR's. */
export function initTargetPositions(keys: KeyStream, positions: number, dim: number): EmbeddingParams {
  if (!Number.isInteger(positions) || positions < 1) throw new Error(`initTargetPositions: positions ${positions} must be a positive integer`);
  return { table: np.concatenate([np.zeros([1, dim]), normal(keys, [positions, dim], 0.02)], 0) };
}

/** What one forward takes: ids [B, T] int32, mask bool [T, T] or [B, 1, T, T], positions [T] or [B, T], target [B, T] int32 (RAR). */
export type OrderForwardInput = { readonly ids: Array; readonly mask: Array; readonly positions?: Array; readonly target?: Array };

/**
 * → logits [B, T, V], or with `select` (float [1, Q, T], one-hot rows) only the Q selected
 * positions' logits [B, Q, V]: the LM head then runs on Q rows instead of T. Consumes p and
 * every array given.
 */
export function orderLogits(p: OrderParams, input: OrderForwardInput, cfg: TransformerConfig, select?: Array): Array {
  const { tok, head, target, ...body } = p;
  const [, t] = input.ids.shape;
  if (cfg.positions === "rope2d") throw new Error(`orderLogits: the MaskGIT, random and next-scale orders take 1-D positions ("learned" or "rope"), got a "rope2d" model`);
  if ((input.target === undefined) !== (target === undefined)) {
    throw new Error(input.target ? "orderLogits: target positions given, but the model has no target-position table (it was not built for the random order)" : "orderLogits: the model has a target-position table, so each position needs its target (random order)");
  }
  let x = embedInputs(tok, { ids: input.ids });
  if (target && input.target) x = x.add(embed(target, input.target));
  const h = hidden(body, x, input.mask, cfg, input.positions);
  if (!select) return lmHead(head, h);
  if (select.ndim !== 3 || select.shape[2] !== t) throw new Error(`orderLogits: select must be [1, Q, ${t}], got ${fmt(select.shape)}`);
  return lmHead(head, np.matmul(select, h)); // [B, Q, D] → [B, Q, V]
}
