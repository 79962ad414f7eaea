import { fromHost, jit, lax, nn, np, tree, type Array, type JsTree, type OwnedFunction } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { checkIds } from "../../nn/embedding.ts";
import { conv2d, convTranspose2d, initConv2d, initConvTranspose2d, type Conv2dParams, type ConvTranspose2dParams } from "../../nn/conv.ts";
import { fmt } from "../../nn/shapes.ts";
import type { QuantizeResult } from "../quantizers/types.ts";

/**
 * The conv auto-encoder of the VQ-VAE (van den Oord et al. 2017) with a pluggable quantizer:
 * image [N, 1, H, W] → encoder → latents [N, H/4, W/4, D] → quantizer → codes → decoder → image.
 * Any quantizer of `quantizers/*` plugs in through a `QuantizerAdapter`, which fixes the latent
 * width D and lays its token ids out as one flat row per image, so the same encoder, decoder,
 * loss and trainer serve VQ, RVQ, FSQ, LFQ, …
 */
export type ConvAEConfig = {
  readonly height: number;
  readonly width: number;
  /** Channels after the first and second stride-2 conv. */
  readonly channels: readonly [number, number];
  /** The decoder's last layer: see `OutputHead`. */
  readonly output: OutputHead;
};

/**
 * How the decoder's last conv becomes an image.
 * - "linear": the conv output is the reconstruction, trained by MSE and clipped to [0, 1] only when
 *   token ids are decoded. As in the VQ-VAE (van den Oord et al. 2017, Sonnet's example: MSE on a
 *   linear output) and VQGAN (taming-transformers: `conv_out`, no activation). MSE's gradient
 *   2(y − x) never vanishes.
 * - "sigmoid": σ(logits), trained by MSE. The gradient reaching a logit is 2(σ − x)·σ′, and σ′ → 0
 *   once logits saturate: on MNIST the early "predict black" phase can push the logits of stroke
 *   pixels to −10 and below, where no gradient brings them back, and the whole auto-encoder dies
 *   (black output). Measured in docs/experiments/quantizers.md ("Dead runs"). Kept for the demo's
 *   VQ-VAE and for runs saved with it.
 */
export type OutputHead = "linear" | "sigmoid";

const OUTPUT_HEADS: readonly OutputHead[] = ["linear", "sigmoid"];

function checkOutputHead(cfg: Pick<ConvAEConfig, "output">, what: string): void {
  if (!OUTPUT_HEADS.includes(cfg.output)) throw new Error(`${what}: output must be one of ${OUTPUT_HEADS.join(", ")}, got ${JSON.stringify(cfg.output)}`);
}

/** The latent grid: two stride-2 convs divide each side by 4 (28×28 → 7×7). */
export const latentGrid = (cfg: Pick<ConvAEConfig, "height" | "width">) => [cfg.height / 4, cfg.width / 4] as const;

export type EncoderParams = { c1: Conv2dParams; c2: Conv2dParams; c3: Conv2dParams; out: Conv2dParams };
export type DecoderParams = { inp: Conv2dParams; t1: ConvTranspose2dParams; t2: ConvTranspose2dParams };

export function initEncoder(keys: KeyStream, cfg: ConvAEConfig, latentDim: number): EncoderParams {
  const [c1, c2] = cfg.channels;
  return { c1: initConv2d(keys, 1, c1, 4), c2: initConv2d(keys, c1, c2, 4), c3: initConv2d(keys, c2, c2, 3), out: initConv2d(keys, c2, latentDim, 1) };
}

export function initDecoder(keys: KeyStream, cfg: ConvAEConfig, latentDim: number): DecoderParams {
  const [c1, c2] = cfg.channels;
  return { inp: initConv2d(keys, latentDim, c2, 3), t1: initConvTranspose2d(keys, c2, c1, 4), t2: initConvTranspose2d(keys, c1, 1, 4) };
}

/** images: [N, 1, H, W] → latents [N, H/4, W/4, D] (channels last, ready for a quantizer). */
export function encodeLatents(p: EncoderParams, images: Array): Array {
  let h = nn.relu(conv2d(p.c1, images, { stride: 2, padding: 1 }));
  h = nn.relu(conv2d(p.c2, h, { stride: 2, padding: 1 }));
  h = h.ref.add(nn.relu(conv2d(p.c3, h, { padding: 1 })));
  return conv2d(p.out, h).transpose([0, 2, 3, 1]);
}

/**
 * codes: [N, H/4, W/4, D] → the reconstruction the loss sees, [N, 1, H, W]: σ(logits) in (0, 1) for
 * the sigmoid head; the raw conv output for the linear head, not clipped, so that pixels outside
 * [0, 1] still get a gradient (`decodeIds` clips).
 */
export function decodeCodes(p: DecoderParams, codes: Array, cfg: Pick<ConvAEConfig, "output">): Array {
  checkOutputHead(cfg, "decodeCodes");
  let h = nn.relu(conv2d(p.inp, codes.transpose([0, 3, 1, 2]), { padding: 1 }));
  h = nn.relu(convTranspose2d(p.t1, h, { stride: 2, padding: 1 }));
  const y = convTranspose2d(p.t2, h, { stride: 2, padding: 1 });
  return cfg.output === "sigmoid" ? nn.sigmoid(y) : y;
}

// ---------------------------------------------------------------- quantizer adapters

/**
 * A quantizer as the auto-encoder sees it. Latent grid [N, h, w, D] in, and token ids as one
 * row of T per image out, whatever the quantizer's own index layout ([N, h, w], [N, h, w, L],
 * [N, Σs²], …). P: the quantizer's trainable params (`{}` for FSQ/LFQ/binary).
 */
export type QuantizerAdapter<P extends JsTree<Array>> = {
  /** Short id, e.g. "vq", "fsq". */
  readonly name: string;
  /** D, the channels the encoder must produce. */
  readonly latentDim: number;
  /** K, the ids one token can take (its vocabulary); bits per token = log₂ K. */
  readonly codebookSize: number;
  /** T, tokens per image. */
  readonly tokensPerImage: number;
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

// ---------------------------------------------------------------- model

export type AutoencoderParams<P extends JsTree<Array>> = { enc: EncoderParams; quantizer: P; dec: DecoderParams };

/** Encoder, quantizer, decoder, drawn from `keys` in that order (the VQ-VAE's order). */
export function initAutoencoder<P extends JsTree<Array>>(keys: KeyStream, cfg: ConvAEConfig, q: QuantizerAdapter<P>): AutoencoderParams<P> {
  const enc = initEncoder(keys, cfg, q.latentDim);
  const quantizer = q.init(keys);
  return { enc, quantizer, dec: initDecoder(keys, cfg, q.latentDim) };
}

/**
 * Training loss: MSE reconstruction (of `decodeCodes`' output, cfg.output's head) + every auxiliary
 * loss the quantizer returns (codebook, commitment, entropy, …). images: [N, 1, H, W]. Returns
 * [loss, aux]: recon, the quantizer's losses and stats, and `indices` [N, T]; `extra(quantizer, z)`
 * may add outputs computed from the latents z [N, h, w, D] (it consumes what it is given).
 * Consumes params and images.
 */
export function autoencoderLoss<P extends JsTree<Array>>(
  p: AutoencoderParams<P>,
  images: Array,
  q: QuantizerAdapter<P>,
  cfg: Pick<ConvAEConfig, "output">,
  extra?: (quantizer: P, z: Array) => Record<string, Array>,
): [Array, Record<string, Array>] {
  const z = encodeLatents(p.enc, images.ref);
  const more = extra ? extra(tree.ref(p.quantizer), lax.stopGradient(z.ref)) : {};
  const r = q.quantize(p.quantizer, z);
  const recon = np.square(decodeCodes(p.dec, r.codes, cfg).sub(images)).mean();
  let loss = recon.ref;
  for (const l of Object.values(r.losses)) loss = loss.add(l.ref);
  return [loss, { recon, ...r.losses, ...r.stats, ...more, indices: lax.stopGradient(r.indices) }];
}

/** images: [N, 1, H, W] → ids [N, T]. Consumes params and images. */
export function encodeIds<P extends JsTree<Array>>(p: AutoencoderParams<P>, images: Array, q: QuantizerAdapter<P>): Array {
  tree.dispose(p.dec);
  const r = q.quantize(p.quantizer, encodeLatents(p.enc, images));
  tree.dispose([r.codes, r.losses, r.stats]);
  return r.indices;
}

/** ids: [N, T] → images [N, 1, H, W] in [0, 1] (the linear head's output clipped). Consumes params and ids. */
export function decodeIds<P extends JsTree<Array>>(p: AutoencoderParams<P>, ids: Array, q: QuantizerAdapter<P>, cfg: Pick<ConvAEConfig, "output">): Array {
  tree.dispose(p.enc);
  const y = decodeCodes(p.dec, q.indicesToCodes(p.quantizer, ids), cfg);
  return cfg.output === "linear" ? np.clip(y, 0, 1) : y;
}

/** A trained auto-encoder with jitted `encode` (images → ids) and `decode` (ids → images), on host arrays. */
export class AutoencoderTokenizer<P extends JsTree<Array>> {
  readonly #encode: OwnedFunction<(p: AutoencoderParams<P>, x: Array) => Array>;
  readonly #decode: OwnedFunction<(p: AutoencoderParams<P>, ids: Array) => Array>;

  constructor(
    public params: AutoencoderParams<P>,
    readonly config: ConvAEConfig,
    readonly quantizer: QuantizerAdapter<P>,
  ) {
    // jit's argument types do not follow a generic P; the casts only restore them.
    this.#encode = jit(((p: AutoencoderParams<P>, x: Array) => encodeIds(p, x, quantizer)) as never) as never;
    this.#decode = jit(((p: AutoencoderParams<P>, ids: Array) => decodeIds(p, ids, quantizer, config)) as never) as never;
  }

  get tokensPerImage(): number {
    return this.quantizer.tokensPerImage;
  }

  /** images: [N·H·W] in [0, 1] → ids [N·T]. */
  async encode(images: Float32Array, n: number): Promise<Int32Array> {
    const { height: h, width: w } = this.config;
    if (images.length !== n * h * w) throw new Error(`AutoencoderTokenizer.encode: expected ${n} images of ${h}×${w} (${n * h * w} values), got ${images.length} values`);
    return (await this.#encode(tree.ref(this.params), fromHost(images, [n, 1, h, w])).data()) as Int32Array;
  }

  /** ids: [N·T] → images [N·H·W] in [0, 1]. */
  async decode(ids: Int32Array, n: number): Promise<Float32Array> {
    const t = this.tokensPerImage;
    if (ids.length !== n * t) throw new Error(`AutoencoderTokenizer.decode: expected ${n}×${t} ids ${fmt([n, t])}, got ${ids.length}`);
    checkIds(ids, this.quantizer.codebookSize, `${this.quantizer.name} token id`);
    return (await this.#decode(tree.ref(this.params), fromHost(ids, [n, t])).data()) as Float32Array;
  }

  dispose(): void {
    this.#encode.dispose();
    this.#decode.dispose();
    tree.dispose(this.params);
  }
}
