/**
 * The generation order a model is trained for, and the training sequence of each: one function
 * from (prompt, image) to an `OrderRow`, so one trainer (`maskedTokenLoss`, train/masked.ts, on
 * `batchOrderRows`) trains every order at the same budget.
 */
import type { Rng } from "../../data/shuffle.ts";
import { blockCausalMaskHost } from "../masks.ts";
import { drawMaskedPositions, maskedRow } from "./masked.ts";
import { checkScales, nextScaleRow } from "./next-scale.ts";
import { permutationProbability, randomOrderRow, randomPermutation, rasterOrder } from "./random-order.ts";
import type { OrderRow } from "./rows.ts";

export type OrderName = "raster" | "maskgit" | "random" | "next-scale";
export const ORDER_NAMES: readonly OrderName[] = ["raster", "maskgit", "random", "next-scale"];

/** The order a model was trained for: what it can decode (next-scale: with the multi-scale tokenizer's scales). */
export type TrainedOrder =
  | { readonly name: "raster" }
  | { readonly name: "maskgit" }
  | { readonly name: "random" }
  | { readonly name: "next-scale"; readonly scales: readonly number[] };

export type TrainingRowOptions = {
  readonly rng: Rng;
  /** joint id of `<mask>` (maskgit) */
  readonly maskId?: number;
  /** training progress in [0, 1] (random order: RAR's permutation annealing); default 0 (always permute) */
  readonly progress?: number;
  /** the share of the image's loss, default 1 */
  readonly loss?: number;
};

/**
 * prompt: joint ids [P] ending with the image's begin marker; image: joint ids [N] → one training
 * sequence for `order`. Raster is next-token prediction: input t predicts token t + 1.
 */
export function trainingRow(order: TrainedOrder, prompt: readonly number[], image: ArrayLike<number>, opts: TrainingRowOptions): OrderRow {
  const loss = opts.loss ?? 1;
  const n = image.length;
  switch (order.name) {
    case "raster":
      return rasterRow(prompt, image, loss);
    case "maskgit":
      if (opts.maskId === undefined) throw new Error("trainingRow: the maskgit order needs maskId, the joint id of <mask>");
      return maskedRow(prompt, image, drawMaskedPositions(n, opts.rng), opts.maskId, loss);
    case "random": {
      const permute = opts.rng() < permutationProbability(opts.progress ?? 0);
      return randomOrderRow(prompt, image, permute ? randomPermutation(n, opts.rng) : rasterOrder(n), loss);
    }
    case "next-scale":
      checkScales(order.scales, n, "trainingRow");
      return nextScaleRow(prompt, image, order.scales, loss);
    default:
      throw new Error(`trainingRow: unknown order ${JSON.stringify((order as { name: unknown }).name)}: expected one of ${ORDER_NAMES.join(", ")}`);
  }
}

/** Next-token training of prompt + image: inputs [P + N − 1], targets shifted by one, causal. */
function rasterRow(prompt: readonly number[], image: ArrayLike<number>, loss: number): OrderRow {
  const p = prompt.length;
  const n = image.length;
  const seq = Int32Array.from([...prompt, ...Array.from(image)]);
  const t = p + n - 1;
  const weights = new Float32Array(t);
  for (let i = p - 1; i < t; i++) weights[i] = loss / n;
  return { inputs: seq.slice(0, t), targets: seq.slice(1), weights, mask: blockCausalMaskHost(new Array<number>(t).fill(1)) };
}
