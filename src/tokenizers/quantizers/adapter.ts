import type { Array, JsTree } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import type { QuantizeResult } from "./types.ts";

/**
 * A quantizer as a tokenizer sees it: a latent grid [N, h, w, D] in, token ids out as one row of
 * T per item, whatever the quantizer's own index layout ([N, h, w], [N, h, w, L], [N, Σs²], …).
 * `registry.ts` makes one for every quantizer of the family from a serializable spec.
 * P: the quantizer's trainable params (`{}` for FSQ, LFQ and binary).
 */
export type QuantizerAdapter<P extends JsTree<Array>> = {
  /** The registry name, e.g. "vq", "fsq". */
  readonly name: string;
  /** D, the channels the encoder must produce. */
  readonly latentDim: number;
  /** K, the ids one token can take (its vocabulary); bits per token = log₂ K. */
  readonly codebookSize: number;
  /** T, tokens per item (the product of `tokenShape`). */
  readonly tokensPerImage: number;
  /**
   * One item's ids as the quantizer lays them out, row-major: [h, w] (VQ, FSQ, LFQ), [h, w, L]
   * (RVQ levels, groups, binary sub-tokens), [Σ s²] (multi-scale, coarsest scale first).
   */
  readonly tokenShape: readonly number[];
  /** Tokens per latent position (RVQ levels, groups), when the ids are laid out position-major; absent otherwise (multi-scale). */
  readonly tokensPerPosition?: number;
  /**
   * The stored codes whose health is measured, when they are not simply the token ids: RVQ and
   * group VQ keep one codebook per level / group, so code = id + K·(level), count = L·K.
   */
  readonly codes?: { readonly count: number; fromIds(ids: Int32Array): Int32Array };
  /** A learned codebook [K, C] that the trainer may re-seed (k-means, dead-code restart) or update by EMA. */
  readonly codebook?: CodebookAccess<P>;
  init(keys: KeyStream): P;
  /** z: [N, h, w, D] → codes [N, h, w, D], indices [N, T] int32, losses, stats. Consumes params and z. */
  quantize(params: P, z: Array): QuantizeResult;
  /** ids: [N, T] int32 → codes [N, h, w, D]. Consumes params and ids. */
  indicesToCodes(params: P, ids: Array): Array;
};

/** Any adapter: quantize/indicesToCodes are methods, so a QuantizerAdapter<P> is one. */
export type AnyQuantizer = QuantizerAdapter<JsTree<Array>>;

/** How a trainer reaches a quantizer's codebook without knowing its params' layout (vq.ts). */
export type CodebookAccess<P> = {
  /** The codebook [K, C] inside p (not a new reference). */
  get(params: P): Array;
  /** p with the codebook swapped for `codebook` (nothing disposed). */
  with(params: P, codebook: Array): P;
  /** p without its codebook: what an optimizer trains when the codebook follows EMA updates. */
  without(params: P): JsTree<Array>;
  /** Latents [..., D] → the vectors the codebook is matched against, [..., C]. Consumes params and z. */
  toLookupSpace(params: P, z: Array): Array;
  /** Present: the codebook learns by EMA (vq.ts's emaUpdate), not by gradient. */
  readonly ema?: { readonly decay: number; readonly eps: number };
};

/** Bits one token carries: log₂ K. */
export const bitsPerToken = (q: Pick<QuantizerAdapter<never>, "codebookSize">) => Math.log2(q.codebookSize);
