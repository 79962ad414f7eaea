/**
 * KV-cached forward of the random order (RAR, Yu et al. 2024): as `forwardCached`
 * (transformer.ts), T new tokens go into cache slots start..start+T−1 and attend to the slots
 * before them and causally among themselves, but each token carries its own position id (the
 * raster cell it fills, P + π_i, not its slot) and the target position it predicts (forward.ts).
 * So a random-order image costs one prefill and N − 1 one-token steps, as a raster one does.
 */
import { np, type Array } from "../../engine/index.ts";
import type { FreshKV, KVCache } from "../../nn/attention.ts";
import { cachedBlocks, type TransformerConfig } from "../transformer.ts";
import type { OrderParams } from "./forward.ts";

/**
 * tokens, positions, target: [B, T] int32; start: scalar int32 (the first new slot); caches as
 * `initCaches` makes them (read, not consumed) → logits of the last new token [B, V] and the new
 * keys and values per layer (for `writeFresh`). Learned or 1-D rope positions (OrderDecoder refuses rope2d for this order). Consumes tokens,
 * positions, target and start.
 */
export function forwardCachedRandomOrder(p: OrderParams, tokens: Array, caches: readonly KVCache[], start: Array, positions: Array, target: Array, cfg: TransformerConfig): { logits: Array; fresh: FreshKV[] } {
  if (!p.target) throw new Error("forwardCachedRandomOrder: the model has no target-position table (it was not built for the random order)");
  // never differentiated, so rows are gathered (as transformer.ts's embedStep)
  let x = np.take(p.tok.table, tokens, 0).add(np.take(p.target.table, target, 0));
  if (p.pos) x = x.add(np.take(p.pos.table, positions.ref, 0));
  return cachedBlocks(p, x, caches, start, positions, cfg);
}
