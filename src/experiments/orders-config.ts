/**
 * The decoding-orders experiment's settings (issue #21), kept free of the engine so the CLI can
 * check arguments and print help without loading jax-js. The experiment is in orders.ts.
 */
import { InputError } from "../io/errors.ts";
import { DEFAULT_PAIRED, type PairedLayout } from "../backbone/sequence/presets.ts";
import type { TransformerConfig } from "../backbone/transformer.ts";
import { ORDER_NAMES, type OrderName } from "../backbone/orders/training.ts";

export type OrdersExperimentConfig = {
  readonly seed: number;
  /** Held-out digits: the first `testSize` of the demo's seeded shuffle, never trained on. */
  readonly testSize: number;
  readonly tokenizerSteps: number;
  readonly tokenizerLr: number;
  readonly judgeSteps: number;
  /** The equal budget: every order trains `steps` steps of `batchSize` text→image examples. */
  readonly steps: number;
  readonly batchSize: number;
  readonly lr: number;
  /** The backbone of every order; its context is sized to each order's sequence. */
  readonly model: Omit<TransformerConfig, "vocabSize" | "contextLength">;
  readonly layout: PairedLayout;
  /** The multi-scale tokenizer's scales (next-scale order), coarsest first, ending at the 7×7 grid. */
  readonly scales: readonly number[];
  readonly orders: readonly OrderName[];
  /** MaskGIT's passes per image, each a decoding variant of the MaskGIT model. */
  readonly maskgitSteps: readonly number[];
  /** Classifier-free guidance scales, each a variant of every order (1 = off). */
  readonly guidance: readonly number[];
  readonly samplesPerClass: number;
  readonly temperature: number;
  /** Timed single-image generations per variant (median reported). */
  readonly speedReps: number;
  /** Images generated at once for the batched speed figure. */
  readonly speedBatch: number;
};

/**
 * The demo's data, tokenizer, judge and backbone. The demo trains 3,000 steps of 32 examples, half
 * of them text→image; 1,500 steps of 32 text→image examples show each order as many as the demo's
 * model sees.
 */
export const DEFAULT_ORDERS_EXPERIMENT: OrdersExperimentConfig = {
  seed: 0,
  testSize: 1500,
  tokenizerSteps: 200,
  tokenizerLr: 4e-3,
  judgeSteps: 500,
  steps: 1500,
  batchSize: 32,
  lr: 3e-3,
  model: { dim: 96, layers: 3, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "learned" },
  layout: DEFAULT_PAIRED,
  scales: [1, 2, 3, 5, 7],
  orders: ORDER_NAMES,
  maskgitSteps: [4, 8, 12],
  guidance: [1, 3],
  samplesPerClass: 16,
  temperature: 0.6,
  speedReps: 5,
  speedBatch: 64,
};

/** "raster,maskgit" → the orders, or an error naming the unknown one. */
export function parseOrderList(s: string): OrderName[] {
  const names = s.split(",").map((x) => x.trim()).filter(Boolean);
  for (const n of names) if (!(ORDER_NAMES as readonly string[]).includes(n)) throw new InputError(`unknown order "${n}"; expected a comma-separated list of: ${ORDER_NAMES.join(", ")}`);
  if (names.length === 0) throw new InputError(`--only needs at least one order of: ${ORDER_NAMES.join(", ")}`);
  return names as OrderName[];
}

/** Throws an InputError naming the setting, the value and what is allowed. */
export function checkOrdersExperimentConfig(cfg: OrdersExperimentConfig): void {
  const int = (key: string, v: unknown, lo: number, hi: number) => {
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new InputError(`orders experiment: ${key} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  };
  int("seed", cfg.seed, 0, 2 ** 31 - 1);
  int("steps", cfg.steps, 1, 1e7);
  int("batchSize", cfg.batchSize, 1, 4096);
  int("samplesPerClass", cfg.samplesPerClass, 2, 256);
  int("speedReps", cfg.speedReps, 1, 100);
  int("speedBatch", cfg.speedBatch, 1, 1024);
  if (!(cfg.lr > 0 && cfg.lr < 1)) throw new InputError(`orders experiment: lr must be in (0, 1), got ${cfg.lr}`);
  if (!(cfg.temperature >= 0 && cfg.temperature <= 10)) throw new InputError(`orders experiment: temperature must be in [0, 10], got ${cfg.temperature}`);
  for (const k of cfg.maskgitSteps) int("maskgitSteps", k, 1, 49);
  for (const g of cfg.guidance) if (!(g >= 1 && g <= 100)) throw new InputError(`orders experiment: guidance ${g} must be in [1, 100] (1 = off)`);
  if (cfg.orders.length === 0) throw new InputError(`orders experiment: orders is empty; give some of ${ORDER_NAMES.join(", ")}`);
}
