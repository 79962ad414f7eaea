/**
 * Model inputs of the non-raster generation orders (MaskGIT, random order, next scale), one
 * sequence at a time on the host, and their device batch. Unlike next-token training
 * (backbone/batch.ts), the inputs are not the targets shifted by one: each order says what every
 * position sees (its attention mask), what it is given (a `<mask>` token, a coarser scale's token,
 * the position it must predict next) and what it predicts (targets and weights at the same index).
 */
import { fromHost, np, type Array } from "../../engine/index.ts";

/** One sequence's input, T positions. */
export type OrderInput = {
  /** joint ids [T] */
  readonly inputs: Int32Array;
  /** attention mask [T·T], row = query, 1 = may attend */
  readonly mask: Uint8Array;
  /** position ids [T] (learned or 1-D rope); absent = 0..T−1 */
  readonly positions?: Int32Array;
  /** RAR's target positions [T]: 1 + the image position the token at t predicts, 0 = none */
  readonly target?: Int32Array;
};

/** A training sequence: an input plus what each position predicts. */
export type OrderRow = OrderInput & {
  /** joint ids [T] predicted at each position (ignored where the weight is 0) */
  readonly targets: Int32Array;
  /** loss weights [T] */
  readonly weights: Float32Array;
};

/**
 * inputs, targets [B, L] int32, weights [B, L], mask bool [B, 1, L, L], positions [B, L] int32,
 * target [B, L] int32 (RAR only). `maskedTokenLoss` (train/masked.ts) trains on it.
 */
export type OrderBatch = { inputs: Array; targets: Array; weights: Array; mask: Array; positions: Array; target?: Array };

/**
 * Rows → one device batch of length L (the model's context): each row padded with `padId`,
 * weight 0, positions t, and a causal mask over the padding (every query sees at least itself).
 */
export function batchOrderRows(rows: readonly OrderRow[], { length, padId }: { readonly length: number; readonly padId: number }): OrderBatch {
  const b = rows.length;
  if (b === 0) throw new Error("batchOrderRows: no rows");
  const withTarget = rows[0]!.target !== undefined;
  const inputs = new Int32Array(b * length).fill(padId);
  const targets = new Int32Array(b * length).fill(padId);
  const weights = new Float32Array(b * length);
  const mask = new Int32Array(b * length * length);
  const positions = new Int32Array(b * length);
  const target = new Int32Array(b * length);
  rows.forEach((r, i) => {
    const t = r.inputs.length;
    if (t > length) throw new Error(`batchOrderRows: row ${i} has ${t} positions, more than the length ${length}`);
    if (r.targets.length !== t || r.weights.length !== t || r.mask.length !== t * t) throw new Error(`batchOrderRows: row ${i} has ${t} inputs but ${r.targets.length} targets, ${r.weights.length} weights and a mask of ${r.mask.length} (expected ${t * t})`);
    if ((r.target !== undefined) !== withTarget) throw new Error(`batchOrderRows: row ${i} ${withTarget ? "lacks" : "has"} target positions, unlike row 0`);
    const o = i * length;
    inputs.set(r.inputs, o);
    targets.set(r.targets, o);
    weights.set(r.weights, o);
    if (r.target) target.set(r.target, o);
    for (let q = 0; q < length; q++) {
      positions[o + q] = q < t && r.positions ? r.positions[q]! : q;
      const m = (o + q) * length;
      if (q < t) for (let k = 0; k < t; k++) mask[m + k] = r.mask[q * t + k]!;
      else for (let k = 0; k <= q; k++) mask[m + k] = 1;
    }
  });
  return {
    inputs: fromHost(inputs, [b, length]),
    targets: fromHost(targets, [b, length]),
    weights: fromHost(weights, [b, length]),
    mask: fromHost(mask, [b, 1, length, length]).astype(np.bool),
    positions: fromHost(positions, [b, length]),
    ...(withTarget ? { target: fromHost(target, [b, length]) } : {}),
  };
}
