/**
 * Generation orders as schedules. A schedule decides *which* image positions a decoding step
 * fills and what the model is shown; the processors (sampling.ts, guidance.ts, the layout's
 * constraint) decide *what* goes there; `OrderDecoder` (order-decoder.ts) is the one loop that
 * runs any schedule. The orders of the survey:
 *
 *   raster      one token per step, left to right, KV-cached (LlamaGen; `Decoder`)        N steps
 *   maskgit     every masked token per step, the least confident re-masked (maskgit.ts)   K steps
 *   random      one token per step in any order, told the next position (random-order.ts) N steps
 *   next-scale  one whole scale per step, coarse to fine (next-scale.ts)                  S steps
 */
import type { OrderInput } from "../backbone/orders/rows.ts";
import type { OrderName } from "../backbone/orders/training.ts";

export { ORDER_NAMES, type OrderName, type TrainedOrder } from "../backbone/orders/training.ts";

/** A drawn token at one still-unknown position: its joint id and the model's probability of it. */
export type Draw = { readonly position: number; readonly id: number; readonly confidence: number };

export interface Schedule {
  readonly name: OrderName;
  /** K, the model passes per image. */
  readonly steps: number;
  /** The Q image positions row b's logits predict at step k, in the order they come back. */
  targets(step: number, row: number): Int32Array;
  /**
   * Full-forward orders: row b's model input at step k, from its prompt (joint ids) and its image
   * so far (joint ids, −1 = unknown). Absent for the KV-cached orders (raster, random).
   */
  input?(step: number, row: number, prompt: readonly number[], image: Int32Array): OrderInput;
  /** Full-forward orders: the sequence indices [start, start + count) whose logits step k reads (count = Q). */
  query?(step: number): { readonly start: number; readonly count: number };
  /** Which draws stay revealed (default: all); `draws` are the step's still-unknown positions. */
  keep?(step: number, draws: readonly Draw[], rng: () => number): readonly boolean[];
  /** Whether `keep` reads each draw's confidence (else it is not computed). */
  readonly needsConfidence?: boolean;
}

/** What a preview callback receives after every step. */
export type StepPreview = {
  readonly order: OrderName;
  /** 0-based step just done, of `steps` */
  readonly step: number;
  readonly steps: number;
  /** one per prompt: the image's local codes so far, −1 where not yet generated (copies) */
  readonly images: readonly Int32Array[];
};

/** Raster order: step k fills image position k, one KV-cached pass per token. */
export function rasterSchedule(tokens: number): Schedule {
  return { name: "raster", steps: tokens, targets: (step) => Int32Array.of(step) };
}
