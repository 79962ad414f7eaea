/**
 * The one decoding loop of every generation order (schedule.ts): each step the schedule names the
 * image positions to fill and the model input; the model gives their logits (the conditional and
 * the unconditional prompts in one batch of 2B rows: a full forward pass for MaskGIT and next
 * scale, one KV cache for raster and random order); guidance mixes them; the layout's constraint (the image modality's ids), temperature,
 * top-k and top-p shape them; a token is drawn at every still-unknown position; the schedule keeps
 * some (MaskGIT: the most confident) and a preview callback sees the image so far.
 */
import { blockUntilReady, fromHost, np, tree, type Array, type OwnedFunction } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import { hostRng } from "../engine/rng.ts";
import { writeFresh, type FreshKV, type KVCache } from "../nn/attention.ts";
import { checkIds } from "../nn/embedding.ts";
import { forwardCachedRandomOrder } from "../backbone/orders/cached.ts";
import { orderLogits, type OrderParams } from "../backbone/orders/forward.ts";
import { MASK_TOKEN } from "../backbone/orders/masked.ts";
import { checkScales } from "../backbone/orders/next-scale.ts";
import { product } from "../backbone/sequence/checks.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import { initCaches, type TransformerConfig } from "../backbone/transformer.ts";
import { Decoder } from "./decode.ts";
import { checkGuidance, guidanceScale, mixGuidance, type Guidance } from "./guidance.ts";
import { maskgitSchedule, type MaskGitOptions } from "./maskgit.ts";
import { nextScaleSchedule } from "./next-scale.ts";
import { randomOrderSchedule, type RandomOrderOptions, type RandomOrderSchedule } from "./random-order.ts";
import { checkSampling, sampleToken, tokenProbability, type SamplingOptions } from "./sampling.ts";
import { ORDER_NAMES, rasterSchedule, type Draw, type Schedule, type StepPreview, type TrainedOrder } from "./schedule.ts";

/** How to decode: the order and its options. */
export type DecodeOrder =
  | { readonly name: "raster" }
  | ({ readonly name: "maskgit" } & MaskGitOptions)
  | ({ readonly name: "random" } & RandomOrderOptions)
  /** scales: checked against the model's own when given */
  | { readonly name: "next-scale"; readonly scales?: readonly number[] };

/** A trained model and the order it was trained for (which decides what it can decode). */
export type OrderModel = { readonly params: OrderParams; readonly config: TransformerConfig; readonly order: TrainedOrder };

export type OrderGenerateOptions = {
  readonly order: DecodeOrder;
  /** The image block: its modality in the joint vocabulary and its tokens' shape (e.g. [7, 7], or [Σ s²] for next-scale). */
  readonly image: { readonly modality: string; readonly shape: readonly number[] };
  readonly sampling: SamplingOptions;
  readonly seed?: number;
  readonly guidance?: Guidance;
  /** Called after every step with the images so far (e.g. to decode and save progressive previews). */
  readonly onStep?: (preview: StepPreview) => void | Promise<void>;
};

/** Throws, naming the field and what is allowed, unless `x` (e.g. read from a run file) is a TrainedOrder. */
export function checkTrainedOrder(x: unknown, where = "order"): asserts x is TrainedOrder {
  const o = x as { name?: unknown; scales?: unknown } | null;
  if (typeof o !== "object" || o === null || !ORDER_NAMES.includes(o.name as never)) throw new Error(`${where}: expected { name: ${ORDER_NAMES.map((n) => `"${n}"`).join(" | ")} }, got ${JSON.stringify(x)}`);
  if (o.name === "next-scale" && (!globalThis.Array.isArray(o.scales) || !o.scales.every((s) => Number.isInteger(s) && s > 0))) throw new Error(`${where}.scales: the next-scale order needs its scales, a list of positive integers, got ${JSON.stringify(o.scales)}`);
}

/**
 * The context a model needs for order `name`: P prompt tokens, N image tokens. Raster and
 * next-scale read P + N − 1 inputs; MaskGIT reads P + N; random order reads P + N − 1 but its
 * position ids reach P + N − 1 (the last cell, read whenever it is not drawn last).
 */
export function orderLength(name: TrainedOrder["name"], promptLength: number, tokens: number): number {
  return name === "maskgit" || name === "random" ? promptLength + tokens : promptLength + tokens - 1;
}

/** The logits of one step's Q positions: cond [B·Q·V], and uncond [B·Q·V] when guided. */
type Source = { logits(step: number): Promise<{ cond: Float32Array; uncond?: Float32Array }>; commit?(ids: Int32Array): void; dispose(): void };

type Forward = (ids: Array, mask: Array, positions: Array, select: Array, target?: Array) => Array;
type RandomStep = (tokens: Array, caches: KVCache[], start: Array, positions: Array, target: Array) => { logits: Array; fresh: FreshKV[] };

export class OrderDecoder {
  #decoder: Decoder | undefined;
  #forward: OwnedFunction<Forward> | undefined;
  #randomStep: OwnedFunction<RandomStep> | undefined;

  constructor(
    readonly model: OrderModel,
    readonly vocab: JointVocab,
  ) {
    checkTrainedOrder(model.order, "OrderDecoder: model.order");
    if (vocab.size !== model.config.vocabSize) throw new Error(`OrderDecoder: the joint vocabulary has ${vocab.size} ids, the model ${model.config.vocabSize}`);
  }

  /**
   * prompts: B prompts of joint ids (equal lengths), each ending with the image's begin marker →
   * B images of local codes (shape `opts.image.shape`, flattened).
   */
  async generate(prompts: readonly (readonly number[])[], opts: OrderGenerateOptions): Promise<Int32Array[]> {
    const b = prompts.length;
    const len = prompts[0]?.length ?? 0;
    if (b === 0 || len === 0) throw new Error("generate: need at least one non-empty prompt");
    const rows = [...prompts, ...(opts.guidance?.prompts ?? [])];
    if (rows.some((p) => p.length !== len)) throw new Error(`generate: prompts${opts.guidance ? " and guidance.prompts" : ""} must have equal lengths (got ${rows.map((p) => p.length).join(", ")})`);
    checkIds(Int32Array.from(rows.flat()), this.vocab.size);
    checkSampling(opts.sampling);
    if (opts.guidance) checkGuidance(opts.guidance, b);
    const range = this.vocab.range(opts.image.modality);
    const n = product(opts.image.shape);
    const rng = hostRng(opts.seed ?? 0);
    const schedule = this.#schedule(opts.order, n, len, b, rng);
    const need = orderLength(schedule.name, len, n);
    if (need > this.model.config.contextLength) throw new Error(`generate: the ${schedule.name} order needs ${need} positions for a prompt of ${len} and ${n} image tokens, more than the model's context of ${this.model.config.contextLength}`);
    const allowed = this.vocab.allowedMask({ modalities: [opts.image.modality] });
    const v = this.model.config.vocabSize;
    const images = prompts.map(() => new Int32Array(n).fill(-1)); // joint ids, −1 = unknown
    const local = () => images.map((im) => im.map((id) => (id < 0 ? -1 : id - range.start)));
    const source =
      schedule.name === "raster" ? await this.#cachedSource(rows, b, n) : schedule.name === "random" ? await this.#randomSource(schedule as RandomOrderSchedule, rows, b) : await this.#forwardSource(schedule, rows, b, images);
    try {
      for (let step = 0; step < schedule.steps; step++) {
        const { cond, uncond } = await source.logits(step);
        if (uncond) mixGuidance(cond, uncond, guidanceScale(opts.guidance!.scale, opts.guidance!.schedule, step, schedule.steps));
        const fed = new Int32Array(b);
        for (let i = 0; i < b; i++) {
          const targets = schedule.targets(step, i);
          const draws: Draw[] = [];
          targets.forEach((position, q) => {
            if (images[i]![position]! >= 0) return;
            const row = cond.subarray((i * targets.length + q) * v, (i * targets.length + q + 1) * v);
            const id = sampleToken(row, allowed, opts.sampling, rng);
            draws.push({ position, id, confidence: schedule.needsConfidence ? tokenProbability(row, id) : 1 });
          });
          const keep = schedule.keep ? schedule.keep(step, draws, rng) : draws.map(() => true);
          draws.forEach((d, j) => keep[j] && (images[i]![d.position] = d.id));
          fed[i] = draws[0]?.id ?? 0;
        }
        source.commit?.(fed);
        await opts.onStep?.({ order: schedule.name, step, steps: schedule.steps, images: local() });
      }
    } finally {
      source.dispose();
    }
    return local();
  }

  /** The schedule of `order`, after checking that this model can decode it. */
  #schedule(order: DecodeOrder, n: number, len: number, b: number, rng: () => number): Schedule {
    const trained = this.model.order;
    const name = (order as { name?: unknown } | undefined)?.name;
    if (!ORDER_NAMES.includes(name as never)) throw new Error(`generate: unknown order ${JSON.stringify(name)}: expected one of ${ORDER_NAMES.map((o) => `"${o}"`).join(", ")}`);
    if (order.name !== trained.name) throw new Error(`generate: this model was trained for the "${trained.name}" order and cannot decode in the "${order.name}" order (it decodes: "${trained.name}")`);
    if (order.name !== "raster" && this.model.config.positions === "rope2d") throw new Error(`generate: the "${order.name}" order takes 1-D positions ("learned" or "rope"), got a "rope2d" model`);
    switch (order.name) {
      case "raster":
        return rasterSchedule(n);
      case "maskgit":
        if (!this.vocab.hasSpecial(MASK_TOKEN)) throw new Error(`generate: the maskgit order needs a "${MASK_TOKEN}" special in the joint vocabulary (specials: ${this.vocab.specials.join(", ")})`);
        return maskgitSchedule(order, n, len, this.vocab.special(MASK_TOKEN));
      case "random": {
        const rows = this.model.params.target?.table.shape[0];
        if (rows !== n + 1) throw new Error(`generate: the random order needs one target position per image token (${n}), but the model has ${rows === undefined ? "no target-position table" : `${rows - 1}`}`);
        return randomOrderSchedule(order, n, b, rng);
      }
      case "next-scale": {
        const scales = (trained as { scales: readonly number[] }).scales;
        if (order.scales && order.scales.join() !== scales.join()) throw new Error(`next-scale: scales [${order.scales.join(", ")}] differ from the model's [${scales.join(", ")}]`);
        checkScales(scales, n, "next-scale");
        return nextScaleSchedule(scales, len);
      }
    }
  }

  /** Raster: the conditional and the unconditional rows in one KV cache of 2B rows (`Decoder.open`), fed the same drawn tokens. */
  async #cachedSource(rows: readonly (readonly number[])[], b: number, n: number): Promise<Source> {
    this.#decoder ??= new Decoder(this.model.params, this.model.config);
    const stream = await this.#decoder.open(rows, n);
    const half = b * this.model.config.vocabSize;
    return {
      logits: async () => {
        const all = await stream.advance(); // [R·V]
        return rows.length > b ? { cond: all.slice(0, half), uncond: all.subarray(half) } : { cond: all };
      },
      commit: (ids) => stream.feed(Int32Array.from(rows, (_, i) => ids[i % b]!)),
      dispose: () => stream.dispose(),
    };
  }

  /**
   * Random order: the conditional and unconditional rows in one KV cache of 2B rows. The prefill
   * reads the prompts, the begin marker told π_0; step k ≥ 1 reads the token drawn for π_{k−1}
   * at its raster position P + π_{k−1}, told π_k (backbone/orders/random-order.ts's layout).
   */
  async #randomSource(schedule: RandomOrderSchedule, rows: readonly (readonly number[])[], b: number): Promise<Source> {
    const { params, config } = this.model;
    await blockUntilReady(params);
    this.#randomStep ??= inferenceJit((tokens: Array, caches: KVCache[], start: Array, positions: Array, target: Array) => forwardCachedRandomOrder(tree.ref(params), tokens, caches, start, positions, target, config));
    const step = this.#randomStep;
    const r = rows.length;
    const p = rows[0]!.length;
    const orderOf = (i: number) => schedule.orders[i % b]!;
    const caches = initCaches(config, r);
    let tokens = fromHost(Int32Array.from(rows.flat()), [r, p]);
    let fed = true;
    let slot = 0;
    return {
      logits: async (k) => {
        const t = tokens.shape[1];
        const positions = new Int32Array(r * t);
        const target = new Int32Array(r * t);
        for (let i = 0; i < r; i++) {
          for (let j = 0; j < t; j++) positions[i * t + j] = k === 0 ? j : p + orderOf(i)[k - 1]!;
          target[i * t + t - 1] = 1 + orderOf(i)[k]!;
        }
        const out = step(tokens, tree.ref(caches), np.array(slot, { dtype: np.int32 }), fromHost(positions, [r, t]), fromHost(target, [r, t]));
        fed = false;
        const all = (await out.logits.data()) as Float32Array; // [R·V]; the step has run
        for (let i = 0; i < caches.length; i++) await writeFresh(caches[i]!, out.fresh[i]!, slot);
        slot += t;
        const half = b * config.vocabSize;
        return r > b ? { cond: all.slice(0, half), uncond: all.subarray(half) } : { cond: all };
      },
      commit: (ids) => {
        tokens = fromHost(Int32Array.from({ length: r }, (_, i) => ids[i % b]!), [r, 1]);
        fed = true;
      },
      dispose: () => {
        if (fed) tokens.dispose();
        tree.dispose(caches);
      },
    };
  }

  /**
   * Full-forward orders: every row's input (the B conditional rows, then the B unconditional ones
   * sharing their images) in one batch, the step's Q positions picked by a one-hot [1, Q, T]
   * matmul before the LM head, so shapes stay fixed across steps and one jit compilation serves
   * them (MaskGIT; next-scale compiles once per scale).
   */
  async #forwardSource(schedule: Schedule, rows: readonly (readonly number[])[], b: number, images: readonly Int32Array[]): Promise<Source> {
    const { params, config } = this.model;
    await blockUntilReady(params);
    this.#forward ??= inferenceJit((ids: Array, mask: Array, positions: Array, select: Array, target?: Array) => orderLogits(tree.ref(params), { ids, mask, positions, ...(target ? { target } : {}) }, config, select));
    const forward = this.#forward;
    const r = rows.length;
    // MaskGIT's mask is the same every step, next-scale's every step of a scale: kept on the
    // device while it does not change, instead of a host copy and a cast per step.
    const kept = new Map<string, { host: ArrayLike<number>; device: Array }>();
    const onDevice = (name: string, host: ArrayLike<number>, make: () => Array): Array => {
      const k = kept.get(name);
      if (k && k.host.length === host.length && sameValues(k.host, host)) return k.device.ref;
      k?.device.dispose();
      const device = make();
      kept.set(name, { host, device });
      return device.ref;
    };
    return {
      logits: async (step) => {
        const inputs = rows.map((p, i) => schedule.input!(step, i % b, p, images[i % b]!));
        const t = inputs[0]!.inputs.length;
        const { start, count } = schedule.query!(step);
        const flat = (pick: (i: number) => Int32Array) => {
          const out = new Int32Array(r * t);
          inputs.forEach((_, i) => out.set(pick(i), i * t));
          return fromHost(out, [r, t]);
        };
        const select = new Float32Array(count * t);
        for (let q = 0; q < count; q++) select[q * t + start + q] = 1;
        const mask = inputs[0]!.mask;
        const positions = Int32Array.from({ length: r * t }, (_, k) => inputs[Math.floor(k / t)]!.positions?.[k % t] ?? k % t);
        const args = [
          flat((i) => inputs[i]!.inputs),
          onDevice("mask", mask, () => fromHost(Int32Array.from(mask), [t, t]).astype(np.bool)),
          onDevice("positions", positions, () => fromHost(positions, [r, t])),
          onDevice("select", select, () => fromHost(select, [1, count, t])),
        ] as const;
        const logits = inputs[0]!.target ? forward(...args, flat((i) => inputs[i]!.target!)) : forward(...args);
        const all = (await logits.data()) as Float32Array; // [R·Q·V]
        const half = b * count * config.vocabSize;
        return r > b ? { cond: all.slice(0, half), uncond: all.subarray(half) } : { cond: all };
      },
      dispose: () => {
        for (const k of kept.values()) k.device.dispose();
      },
    };
  }

  dispose(): void {
    this.#decoder?.dispose();
    this.#forward?.dispose();
    this.#randomStep?.dispose();
  }
}

function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
