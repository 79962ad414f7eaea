/**
 * Random-order decoding of a RAR model (Yu et al. 2024, §3.2; layout in
 * backbone/orders/random-order.ts): step k fills position π_k of each image, one KV-cached pass
 * per token (backbone/orders/cached.ts), the model told π_k through its target-position
 * embedding. π is any permutation: raster (RAR's own choice at inference, the training
 * permutations having been annealed to it), one random permutation per image, or a given one.
 */
import { checkOrder, randomPermutation, rasterOrder } from "../backbone/orders/random-order.ts";
import type { Schedule } from "./schedule.ts";

export type RandomOrderOptions = {
  /** "raster" (default), "random" (a permutation per image, from the decoding seed) or a permutation of 0..N−1 */
  readonly order?: "raster" | "random" | readonly number[];
};

/** The schedule and each row's order π (read by the cached source). */
export type RandomOrderSchedule = Schedule & { readonly orders: readonly Int32Array[] };

/** `rows` images of N tokens; `rng` draws the random permutations. */
export function randomOrderSchedule(opts: RandomOrderOptions, tokens: number, rows: number, rng: () => number): RandomOrderSchedule {
  const how = opts.order ?? "raster";
  if (typeof how === "string" && how !== "raster" && how !== "random") throw new Error(`random order: order ${JSON.stringify(how)} must be "raster", "random" or a permutation of 0..${tokens - 1}`);
  if (typeof how !== "string") checkOrder(how, tokens, "random order");
  const orders = Array.from({ length: rows }, () => (how === "raster" ? rasterOrder(tokens) : how === "random" ? randomPermutation(tokens, rng) : Int32Array.from(how)));
  return { name: "random", steps: tokens, orders, targets: (step, row) => Int32Array.of(orders[row]![step]!) };
}
