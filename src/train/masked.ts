/**
 * The training loss of the non-raster generation orders: weighted cross-entropy at the positions
 * an order predicts, each reading what its mask lets it see — masked image tokens (MaskGIT), the
 * next token of a permuted sequence told its target position (RAR), a whole scale from the
 * coarser ones (VAR). The batches come from backbone/orders/ (`batchOrderRows`); the targets sit
 * at the index that predicts them, so this is `nextTokenLoss` (losses.ts) without the shift.
 */
import type { Array } from "../engine/index.ts";
import { orderLogits, type OrderParams } from "../backbone/orders/forward.ts";
import type { OrderBatch } from "../backbone/orders/rows.ts";
import type { TransformerConfig } from "../backbone/transformer.ts";
import { weightedCrossEntropy } from "./losses.ts";

/** −Σ w·log p(target) / Σ w over the batch. Consumes params and batch. */
export function maskedTokenLoss(p: OrderParams, batch: OrderBatch, cfg: TransformerConfig): [Array, Record<string, Array>] {
  const logits = orderLogits(p, { ids: batch.inputs, mask: batch.mask, positions: batch.positions, ...(batch.target ? { target: batch.target } : {}) }, cfg);
  return [weightedCrossEntropy(logits, batch.targets, batch.weights), {}];
}
