/**
 * KV-cached forward of the random order (RAR, Yu et al. 2024): as `forwardCached`
 * (transformer.ts), T new tokens go into cache slots start..start+T−1 and attend to the slots
 * before them and causally among themselves, but each token carries its own position id (the
 * raster cell it fills, P + π_i, not its slot) and the target position it predicts (forward.ts).
 * So a random-order image costs one prefill and N − 1 one-token steps, as a raster one does.
 */
import { np, type Array } from "../../engine/index.ts";
import { attentionCached, type FreshKV, type KVCache } from "../../nn/attention.ts";
import { mlp } from "../../nn/mlp.ts";
import { layerNorm } from "../../nn/norm.ts";
import { linear } from "../../nn/linear.ts";
import { causalMask } from "../masks.ts";
import type { TransformerConfig } from "../transformer.ts";
import type { OrderParams } from "./forward.ts";

/**
 * tokens, positions, target: [B, T] int32; start: scalar int32 (the first new slot); caches as
 * `initCaches` makes them (read, not consumed) → logits of the last new token [B, V] and the new
 * keys and values per layer (for `writeFresh`). Learned or 1-D rope positions. Consumes tokens,
 * positions, target and start.
 */
export function forwardCachedRandomOrder(p: OrderParams, tokens: Array, caches: readonly KVCache[], start: Array, positions: Array, target: Array, cfg: TransformerConfig): { logits: Array; fresh: FreshKV[] } {
  if (!p.target) throw new Error("forwardCachedRandomOrder: the model has no target-position table (it was not built for the random order)");
  const t = tokens.shape[1];
  const s = cfg.contextLength;
  const cacheVisible = np.arange(s).astype(np.int32).reshape([1, s]).less(start); // [1, S]: the slots already written
  const newVisible = causalMask(t);
  // never differentiated, so rows are gathered (as transformer.ts's embedStep)
  let x = np.take(p.tok.table, tokens, 0).add(np.take(p.target.table, target, 0));
  if (p.pos) x = x.add(np.take(p.pos.table, positions.ref, 0));
  const opts = { heads: cfg.heads, rope: cfg.positions === "rope" ? ("1d" as const) : false };
  const fresh: FreshKV[] = [];
  p.blocks.forEach((b, i) => {
    const out = attentionCached(b.attn, layerNorm(b.ln1, x.ref), caches[i]!, cacheVisible.ref, newVisible.ref, positions.ref, opts);
    fresh.push(out.fresh);
    x = x.add(out.y);
    x = x.ref.add(mlp(b.mlp, layerNorm(b.ln2, x)));
  });
  cacheVisible.dispose();
  newVisible.dispose();
  positions.dispose();
  const last = x.slice([], t - 1); // [B, D]
  return { logits: linear(p.head, layerNorm(p.lnf, last)), fresh };
}
