import { blockUntilReady, fromHost, np, tree, type Array, type OwnedFunction } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import { hostRng } from "../engine/rng.ts";
import { writeFresh, type FreshKV, type KVCache } from "../nn/attention.ts";
import { checkIds } from "../nn/embedding.ts";
import { forwardCached, initCaches, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { sampleToken, type SamplingOptions } from "./sampling.ts";

/** Which tokens may come next, given the tokens generated so far in this sequence (0 / −∞ per id). */
export type Constraint = (generated: readonly number[]) => Float32Array | undefined;

export type GenerateOptions = {
  /** Allowed next tokens given the tokens generated so far (e.g. only image ids inside <boi>…<eoi>). */
  constraint?: Constraint;
  /** Ends a sequence once true for its generated tokens. */
  stop?: (generated: readonly number[]) => boolean;
  sampling: SamplingOptions;
  seed?: number;
  /** Classifier-free guidance: one unconditional prompt per prompt (equal lengths), scale s (1 = off). */
  guidance?: { prompts: readonly (readonly number[])[]; scale: number; grids?: readonly Int32Array[] };
  /**
   * rope2d models: each prompt's (row, column) ids for every position it will fill, [(len + maxNew)·2]
   * (a compiled layout's `grid`); absent = (t, t).
   */
  grids?: readonly Int32Array[];
};

/**
 * One batch of B prompts decoding in its own KV cache (`Decoder.open`): `advance` runs the next
 * pass (the prefill, then one token) and returns the logits of the last position [B·V]; `feed`
 * sets the B tokens the next pass reads; `dispose` frees the cache.
 */
export type DecodeStream = { advance: () => Promise<Float32Array>; feed: (next: Int32Array) => void; dispose: () => void };
type Stream = DecodeStream;

type Step = (tokens: Array, caches: KVCache[], start: Array, grid?: Array) => { logits: Array; fresh: FreshKV[] };

/**
 * KV-cached autoregressive decoding: one prefill of the (equal-length) prompts, then one jitted
 * step per token. The cache is preallocated once; each step attends to it and to its own new
 * keys and values, which are then copied into the cache in place (`writeFresh`).
 */
export class Decoder {
  readonly #step: OwnedFunction<Step>;

  constructor(
    readonly params: TransformerParams,
    readonly config: TransformerConfig,
  ) {
    // params are closed over, so jit holds them as constants: passed as arguments, the ~50 leaves
    // were flattened and their shapes stringified into a cache key on every token (8% of a step).
    this.#step = inferenceJit((tokens: Array, caches: KVCache[], start: Array, grid?: Array) => forwardCached(tree.ref(params), tokens, caches, start, config, grid));
  }

  /**
   * prompts: B prompts of equal length; generates up to `maxNew` tokens each, stopping a sequence
   * once `stop(generated)` is true. Returns the generated ids per sequence (without the prompt).
   *
   * Classifier-free guidance (Ho & Salimans 2022; for AR image tokens as in LlamaGen, Sun et al.
   * 2024): with `guidance`, a second, unconditional prompt per sequence is decoded in lockstep
   * in its own KV cache, and tokens are drawn from ℓ_u + s·(ℓ_c − ℓ_u). Both streams are fed
   * the drawn token, so they always describe the same continuation.
   */
  async generate(prompts: readonly (readonly number[])[], maxNew: number, options: GenerateOptions): Promise<number[][]> {
    await blockUntilReady(this.params); // no queued work left on them: steps read synchronously (`readLogits`)
    return generateFrom((rows, what, grids) => this.#stream(rows, maxNew, what, grids), this.config.vocabSize, prompts, maxNew, options);
  }

  /**
   * A stream of its own over `prompts` (equal lengths) for up to `maxNew` tokens, for decoding
   * loops that choose the tokens themselves (generate/order-decoder.ts). grids: as in
   * `GenerateOptions`. The caller disposes it.
   */
  async open(prompts: readonly (readonly number[])[], maxNew: number, grids?: readonly Int32Array[], what = "prompts"): Promise<DecodeStream> {
    await blockUntilReady(this.params);
    return this.#stream(prompts, maxNew, what, grids);
  }

  /** One batch of prompts with its own KV cache: `advance` runs a step, `feed` sets the next tokens. */
  #stream(prompts: readonly (readonly number[])[], maxNew: number, what: string, grids?: readonly Int32Array[]): Stream {
    const { b, len, flat } = checkStreamPrompts(prompts, maxNew, this.config, what, grids);
    // The (row, column) ids [B, T, 2] of the T positions from `pos` (rope2d only).
    const gridAt = (pos: number, t: number): Array | undefined => {
      if (this.config.positions !== "rope2d") return undefined;
      const g = new Int32Array(b * t * 2);
      for (let i = 0; i < b; i++) for (let j = 0; j < t; j++) {
        g[(i * t + j) * 2] = grids ? grids[i]![2 * (pos + j)]! : pos + j;
        g[(i * t + j) * 2 + 1] = grids ? grids[i]![2 * (pos + j) + 1]! : pos + j;
      }
      return fromHost(g, [b, t, 2]);
    };
    const caches = initCaches(this.config, b);
    let tokens = fromHost(flat, [b, len]);
    let pos = 0;
    let fed = true;
    return {
      advance: async (): Promise<Float32Array> => {
        const grid = gridAt(pos, tokens.shape[1]);
        const start = np.array(pos, { dtype: np.int32 });
        const r = grid ? this.#step(tokens, tree.ref(caches), start, grid) : this.#step(tokens, tree.ref(caches), start);
        fed = false;
        const logits = await readLogits(r.logits); // [B, V]; the step has run
        for (let i = 0; i < caches.length; i++) await writeFresh(caches[i], r.fresh[i], pos);
        pos += tokens.shape[1];
        return logits;
      },
      feed: (next: Int32Array) => {
        tokens = fromHost(next, [b, 1]);
        fed = true;
      },
      dispose: () => {
        if (fed) tokens.dispose();
        tree.dispose(caches);
      },
    };
  }

  dispose(): void {
    this.#step.dispose();
  }
}

/**
 * Checks a stream's B prompts (non-empty, equal lengths, ids in the vocabulary, room in the
 * context for `maxNew` tokens) and their rope2d grids; returns B, the length and the flat ids.
 */
export function checkStreamPrompts(
  prompts: readonly (readonly number[])[],
  maxNew: number,
  config: TransformerConfig,
  what: string,
  grids?: readonly Int32Array[],
): { b: number; len: number; flat: Int32Array } {
  const b = prompts.length;
  const len = prompts[0]?.length ?? 0;
  if (b === 0 || len === 0) throw new Error(`generate: need at least one non-empty prompt in ${what}`);
  if (prompts.some((p) => p.length !== len)) throw new Error(`generate: ${what} must have equal length (got ${prompts.map((p) => p.length).join(", ")})`);
  // the last new token is never fed back, so the model sees len + maxNew − 1 positions
  if (len + maxNew - 1 > config.contextLength) throw new Error(`generate: prompt ${len} + ${maxNew} new tokens exceeds the context of ${config.contextLength}`);
  const flat = Int32Array.from(prompts.flat());
  checkIds(flat, config.vocabSize);
  if (grids && (grids.length !== b || grids.some((g) => g.length < 2 * (len + maxNew - 1)))) {
    throw new Error(`generate: ${what} need one grid of ≥ ${2 * (len + maxNew - 1)} ids per prompt (rows and columns of ${len + maxNew - 1} positions), got ${grids.map((g) => g.length).join(", ")}`);
  }
  return { b, len, flat };
}

/**
 * A step's logits on the host. On the wasm and cpu backends the read is synchronous: the step's
 * kernels then run directly instead of through the worker pool's promise queue, which at decode
 * sizes (every kernel below the pool's threshold, so run inline anyway) only adds overhead:
 * 2 threads, 1,410 → 1,740 tokens/s for the benchmark GPT (the native GEMM keeps its own threads).
 * Needs the step's inputs free of queued work: `generate` waits for the params, the caches are
 * written synchronously, the tokens come from the host. Consumes logits.
 */
async function readLogits(logits: Array): Promise<Float32Array> {
  const sync = logits.device === "wasm" || logits.device === "cpu";
  return (sync ? logits.dataSync() : await logits.data()) as Float32Array;
}

/** Opens a decoding stream over `prompts` (what: their name in errors; grids as in `GenerateOptions`). */
export type OpenStream = (prompts: readonly (readonly number[])[], what: string, grids?: readonly Int32Array[]) => DecodeStream;

/**
 * The sampling loop of `Decoder.generate` over any decoding streams (jax-js's, or the native
 * decoder's): B prompts, up to `maxNew` tokens each, with constraints, stop rules and
 * classifier-free guidance as `GenerateOptions` describes. Returns the generated ids per sequence.
 */
export async function generateFrom(
  open: OpenStream,
  vocabSize: number,
  prompts: readonly (readonly number[])[],
  maxNew: number,
  { constraint, stop, sampling, seed = 0, guidance, grids }: GenerateOptions,
): Promise<number[][]> {
  const b = prompts.length;
  if (guidance && guidance.prompts.length !== b) throw new Error(`generate: guidance.prompts has ${guidance.prompts.length} prompts, expected one per prompt (${b})`);
  const rng = hostRng(seed);
  const v = vocabSize;
  const out: number[][] = prompts.map(() => []);
  const done = prompts.map(() => false);
  let cond: DecodeStream | undefined;
  let uncond: DecodeStream | undefined;
  try {
    // inside the try: if the second stream's prompts are bad, the first one's cache is freed
    cond = open(prompts, "prompts", grids);
    uncond = guidance ? open(guidance.prompts, "guidance.prompts", guidance.grids) : undefined;
    for (let step = 0; step < maxNew && !done.every(Boolean); step++) {
      const logits = await cond.advance();
      if (uncond) {
        const free = await uncond.advance();
        const s = guidance!.scale;
        for (let i = 0; i < logits.length; i++) logits[i] = free[i] + s * (logits[i] - free[i]);
      }
      const next = new Int32Array(b);
      for (let i = 0; i < b; i++) {
        if (done[i]) continue;
        next[i] = sampleToken(logits.slice(i * v, (i + 1) * v), constraint?.(out[i]), sampling, rng);
        out[i].push(next[i]);
        if (stop?.(out[i])) done[i] = true;
      }
      cond.feed(next);
      uncond?.feed(next);
    }
  } finally {
    cond?.dispose();
    uncond?.dispose();
  }
  return out;
}
