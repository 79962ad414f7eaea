import { fromHost, jit, np, tree, type Array, type OwnedFunction } from "../engine/index.ts";
import { hostRng } from "../engine/rng.ts";
import type { KVCache } from "../nn/attention.ts";
import { checkIds } from "../nn/embedding.ts";
import { forwardCached, initCaches, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { sampleToken, type SamplingOptions } from "./sampling.ts";

/** Which tokens may come next, given the tokens generated so far in this sequence (0 / −∞ per id). */
export type Constraint = (generated: readonly number[]) => Float32Array | undefined;

type Step = (p: TransformerParams, tokens: Array, caches: KVCache[], start: Array) => { logits: Array; caches: KVCache[] };

/**
 * KV-cached autoregressive decoding: one prefill of the (equal-length) prompts, then one jitted
 * step per token; the cache is preallocated once and updated in place of shape.
 */
export class Decoder {
  readonly #step: OwnedFunction<Step>;

  constructor(
    readonly params: TransformerParams,
    readonly config: TransformerConfig,
  ) {
    this.#step = jit((p: TransformerParams, tokens: Array, caches: KVCache[], start: Array) => forwardCached(p, tokens, caches, start, config));
  }

  /**
   * prompts: B prompts of equal length; generates up to `maxNew` tokens each, stopping a sequence
   * once `stop(generated)` is true. Returns the generated ids per sequence (without the prompt).
   */
  async generate(
    prompts: readonly (readonly number[])[],
    maxNew: number,
    { constraint, stop, sampling, seed = 0 }: { constraint?: Constraint; stop?: (generated: readonly number[]) => boolean; sampling: SamplingOptions; seed?: number },
  ): Promise<number[][]> {
    const b = prompts.length;
    const len = prompts[0]?.length ?? 0;
    if (b === 0 || len === 0) throw new Error("generate: need at least one non-empty prompt");
    if (prompts.some((p) => p.length !== len)) throw new Error(`generate: prompts must have equal length (got ${prompts.map((p) => p.length).join(", ")})`);
    if (len + maxNew > this.config.contextLength) throw new Error(`generate: prompt ${len} + ${maxNew} new tokens exceeds the context of ${this.config.contextLength}`);
    const flat = Int32Array.from(prompts.flat());
    checkIds(flat, this.config.vocabSize);

    const rng = hostRng(seed);
    const out: number[][] = prompts.map(() => []);
    const done = prompts.map(() => false);
    let caches = initCaches(this.config, b);
    let tokens = fromHost(flat, [b, len]);
    let pos = 0;
    for (let step = 0; step < maxNew && !done.every(Boolean); step++) {
      const r = this.#step(tree.ref(this.params), tokens, caches, np.array(pos, { dtype: np.int32 }));
      caches = r.caches;
      pos += step === 0 ? len : 1;
      const logits = (await r.logits.data()) as Float32Array;
      const v = this.config.vocabSize;
      const next = new Int32Array(b);
      for (let i = 0; i < b; i++) {
        if (done[i]) continue;
        const row = logits.slice(i * v, (i + 1) * v);
        next[i] = sampleToken(row, constraint?.(out[i]), sampling, rng);
        out[i].push(next[i]);
        if (stop?.(out[i])) done[i] = true;
      }
      tokens = fromHost(next, [b, 1]);
    }
    tokens.dispose();
    tree.dispose(caches);
    return out;
  }

  dispose(): void {
    this.#step.dispose();
  }
}
