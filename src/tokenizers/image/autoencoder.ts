import { fromHost, jit, lax, nn, np, tree, type Array, type JsTree, type OwnedFunction } from "../../engine/index.ts";
import { inferenceJit } from "../../engine/lean.ts";
import { expectationsOfInit, paramsFromTensors, paramsToTensors } from "../../engine/params.ts";
import { InputError } from "../../io/errors.ts";
import { KeyStream } from "../../engine/rng.ts";
import { checkIds } from "../../nn/embedding.ts";
import { conv2d, convTranspose2d, initConv2d, initConvTranspose2d, type Conv2dParams, type ConvTranspose2dParams } from "../../nn/conv.ts";
import { fmt } from "../../nn/shapes.ts";
import type { AnyQuantizer, QuantizerAdapter } from "../quantizers/adapter.ts";
import { checkQuantizerSpec, makeQuantizer, type QuantizerSpec } from "../quantizers/registry.ts";
import { checkGrid, latentGrid, stageKernels, stagesFor, type StageConfig } from "./grid.ts";
import { idsOf, type Image, type SavedTokenizer, type TokenIds, type Tokenizer } from "../tokenizer.ts";

/**
 * The conv auto-encoder of the VQ-VAE (van den Oord et al. 2017) with a pluggable quantizer:
 * image [N, C, H, W] → encoder → latents [N, H/4, W/4, D] → quantizer → codes → decoder → image.
 * Any quantizer of the family plugs in through the registry (quantizers/registry.ts), whose
 * adapter fixes the latent width D and lays its token ids out as one flat row per image, so the
 * same encoder, decoder, loss and trainer serve VQ, RVQ, FSQ, LFQ, …
 */
export type ConvAEConfig = {
  readonly height: number;
  readonly width: number;
  /** Image channels C (1 = grayscale, 3 = RGB); absent = 1. */
  readonly imageChannels?: number;
  /** Channels after the first and second stride-2 conv. */
  readonly channels: readonly [number, number];
  /** The decoder's last layer: see `OutputHead`. */
  readonly output: OutputHead;
  /**
   * Side of the token grid (rows; columns follow from the width). Each stride-2 stage takes a
   * side n to ⌈n/2⌉, so a 28×28 image has grids 14, 7 or 4 (1, 2 or 3 stages). Absent: two
   * stages, and height and width must be multiples of 4 (the VQ-VAE's H/4 × W/4).
   */
  readonly grid?: number;
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


/**
 * Encoder: stride-2 convs c1 (image → channels[0]) and c2 (→ channels[1]; with one stage a
 * stride-1 3×3 conv), `more` stride-2 convs past two stages, a residual 3×3 conv c3, and a 1×1
 * conv to the quantizer's width. The decoder mirrors it with transposed convs.
 */
export type EncoderParams = { c1: Conv2dParams; c2: Conv2dParams; more?: Conv2dParams[]; c3: Conv2dParams; out: Conv2dParams };
export type DecoderParams = { inp: Conv2dParams; more?: ConvTranspose2dParams[]; t1: ConvTranspose2dParams; t2: ConvTranspose2dParams };

const imageChannels = (cfg: Pick<ConvAEConfig, "imageChannels">) => cfg.imageChannels ?? 1;


export function initEncoder(keys: KeyStream, cfg: ConvAEConfig, latentDim: number): EncoderParams {
  const [c1, c2] = cfg.channels;
  const k = stageKernels(cfg);
  const first = { c1: initConv2d(keys, imageChannels(cfg), c1, k[0]!), c2: initConv2d(keys, c1, c2, k[1] ?? 3) };
  const more = k.slice(2).map((ki: number) => initConv2d(keys, c2, c2, ki));
  return { ...first, ...(more.length > 0 && { more }), c3: initConv2d(keys, c2, c2, 3), out: initConv2d(keys, c2, latentDim, 1) };
}

export function initDecoder(keys: KeyStream, cfg: ConvAEConfig, latentDim: number): DecoderParams {
  const [c1, c2] = cfg.channels;
  const k = stageKernels(cfg);
  const inp = initConv2d(keys, latentDim, c2, 3);
  // From the smallest side up: stage d − 1 first.
  const more = k.slice(2).reverse().map((ki: number) => initConvTranspose2d(keys, c2, c2, ki));
  return { inp, ...(more.length > 0 && { more }), t1: initConvTranspose2d(keys, c2, c1, k[1] ?? 3), t2: initConvTranspose2d(keys, c1, imageChannels(cfg), k[0]!) };
}


/**
 * images: [N, C, H, W] → latents [N, h, w, D] (channels last, ready for a quantizer; see
 * `latentGrid`). `cfg` tells one stage from two (their params have the same form).
 */
export function encodeLatents(p: EncoderParams, images: Array, cfg: StageConfig = {}): Array {
  const down = { stride: 2, padding: 1 };
  let h = nn.relu(conv2d(p.c1, images, down));
  h = nn.relu(conv2d(p.c2, h, stagesFor(cfg) === 1 ? { padding: 1 } : down));
  for (const m of p.more ?? []) h = nn.relu(conv2d(m, h, down));
  h = h.ref.add(nn.relu(conv2d(p.c3, h, { padding: 1 })));
  return conv2d(p.out, h).transpose([0, 2, 3, 1]);
}

/**
 * codes: [N, H/4, W/4, D] → the reconstruction the loss sees, [N, C, H, W]: σ(logits) in (0, 1) for
 * the sigmoid head; the raw conv output for the linear head, not clipped, so that pixels outside
 * [0, 1] still get a gradient (`decodeIds` clips).
 */
export function decodeCodes(p: DecoderParams, codes: Array, cfg: Pick<ConvAEConfig, "output"> & StageConfig): Array {
  checkOutputHead(cfg, "decodeCodes");
  const up = { stride: 2, padding: 1 };
  let h = nn.relu(conv2d(p.inp, codes.transpose([0, 3, 1, 2]), { padding: 1 }));
  for (const m of p.more ?? []) h = nn.relu(convTranspose2d(m, h, up));
  h = nn.relu(convTranspose2d(p.t1, h, stagesFor(cfg) === 1 ? { padding: 1 } : up));
  const y = convTranspose2d(p.t2, h, up);
  return cfg.output === "sigmoid" ? nn.sigmoid(y) : y;
}

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
 * loss the quantizer returns (codebook, commitment, entropy, …). images: [N, C, H, W]. Returns
 * [loss, aux]: recon, the quantizer's losses and stats, and `indices` [N, T]; `extra(quantizer, z)`
 * may add outputs computed from the latents z [N, h, w, D] (it consumes what it is given).
 * Consumes params and images.
 */
export function autoencoderLoss<P extends JsTree<Array>>(
  p: AutoencoderParams<P>,
  images: Array,
  q: QuantizerAdapter<P>,
  cfg: Pick<ConvAEConfig, "output"> & StageConfig,
  extra?: (quantizer: P, z: Array) => Record<string, Array>,
  objective: AutoencoderObjective = {},
): [Array, Record<string, Array>] {
  const z = encodeLatents(p.enc, images.ref, cfg);
  const more = extra ? extra(tree.ref(p.quantizer), lax.stopGradient(z.ref)) : {};
  const r = q.quantize(p.quantizer, z);
  const [term, termMetrics] = objective.term ? objective.term(r.codes.ref) : [undefined, {}];
  const target = objective.target ?? images;
  if (objective.target) images.dispose();
  const y = decodeCodes(p.dec, r.codes, cfg);
  const [imageTerm, imageMetrics] = objective.imageTerm ? objective.imageTerm(y.ref, target.ref) : [undefined, {}];
  const fake: Record<string, Array> = objective.imageTerm ? { fake: lax.stopGradient(y.ref) } : {};
  const recon = np.square(y.sub(target)).mean();
  let loss = recon.ref;
  for (const l of Object.values(r.losses)) loss = loss.add(l.ref);
  if (term) loss = loss.add(term);
  if (imageTerm) loss = loss.add(imageTerm);
  return [loss, { recon, ...r.losses, ...r.stats, ...more, ...termMetrics, ...imageMetrics, ...fake, indices: lax.stopGradient(r.indices) }];
}

/**
 * What a training objective adds to `autoencoderLoss` (train/objectives.ts, train/vqgan.ts):
 * `target`, the image to reconstruct when the input differs from it (masked modelling); `term`, a
 * loss on the codes [N, h, w, D]; `imageTerm`, a loss on the reconstruction and the target
 * [N, C, H, W] (perceptual, adversarial; the reconstruction then also comes back as `fake`).
 * Each consumes its arguments and returns [term, metrics].
 */
export type AutoencoderObjective = {
  readonly target?: Array;
  readonly term?: (codes: Array) => [Array, Record<string, Array>];
  readonly imageTerm?: (recon: Array, target: Array) => [Array, Record<string, Array>];
};

/** images: [N, C, H, W] → ids [N, T]. Consumes params and images. */
export function encodeIds<P extends JsTree<Array>>(p: AutoencoderParams<P>, images: Array, q: QuantizerAdapter<P>, cfg: StageConfig = {}): Array {
  tree.dispose(p.dec);
  const r = q.quantize(p.quantizer, encodeLatents(p.enc, images, cfg));
  tree.dispose([r.codes, r.losses, r.stats]);
  return r.indices;
}

/** ids: [N, T] → images [N, C, H, W] in [0, 1] (the linear head's output clipped). Consumes params and ids. */
export function decodeIds<P extends JsTree<Array>>(p: AutoencoderParams<P>, ids: Array, q: QuantizerAdapter<P>, cfg: Pick<ConvAEConfig, "output"> & StageConfig): Array {
  tree.dispose(p.enc);
  const y = decodeCodes(p.dec, q.indicesToCodes(p.quantizer, ids), cfg);
  return cfg.output === "linear" ? np.clip(y, 0, 1) : y;
}

/** An auto-encoder tokenizer's whole configuration: the conv auto-encoder and its quantizer. */
export type AutoencoderTokenizerConfig = ConvAEConfig & { readonly quantizer: QuantizerSpec };

/** Throws, naming the field, when `cfg` (e.g. read from a JSON file) is not a valid configuration. */
export function checkAutoencoderConfig(cfg: unknown, where = "image tokenizer config"): asserts cfg is AutoencoderTokenizerConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null) throw new InputError(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  if (c.grid === undefined) {
    for (const key of ["height", "width"] as const) {
      const v = c[key];
      if (!Number.isInteger(v) || (v as number) < 4 || (v as number) > 4096 || (v as number) % 4 !== 0) throw new InputError(`${where}.${key}: expected a multiple of 4 in [4, 4096] (two stride-2 convs; or set grid), got ${JSON.stringify(v)}`);
    }
  } else {
    for (const key of ["height", "width"] as const) {
      const v = c[key];
      if (!Number.isInteger(v) || (v as number) < 2 || (v as number) > 4096) throw new InputError(`${where}.${key}: expected an integer in [2, 4096], got ${JSON.stringify(v)}`);
    }
    checkGrid(c.height as number, c.width as number, c.grid, where);
  }
  if (c.imageChannels !== undefined && (!Number.isInteger(c.imageChannels) || (c.imageChannels as number) < 1 || (c.imageChannels as number) > 4)) {
    throw new InputError(`${where}.imageChannels: expected an integer in [1, 4], got ${JSON.stringify(c.imageChannels)}`);
  }
  const ch = c.channels;
  if (!globalThis.Array.isArray(ch) || ch.length !== 2 || !ch.every((v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 4096)) throw new InputError(`${where}.channels: expected two integers in [1, 4096], got ${JSON.stringify(ch)}`);
  if (!OUTPUT_HEADS.includes(c.output as OutputHead)) throw new InputError(`${where}.output: expected one of ${OUTPUT_HEADS.join(", ")}, got ${JSON.stringify(c.output)}`);
  checkQuantizerSpec(c.quantizer, `${where}.quantizer`);
}

/**
 * What the saved tensors of `cfg` must be (name, shape, dtype), by tracing the initialization
 * (engine/params.ts: nothing is allocated, however large the config). The quantizer checks the
 * values of its options there; its refusal becomes an InputError naming `where`.
 */
export function autoencoderExpectations(cfg: AutoencoderTokenizerConfig, where = "image tokenizer config"): ReturnType<typeof expectationsOfInit> {
  checkAutoencoderConfig(cfg, where);
  try {
    return expectationsOfInit(() => initAutoencoder(new KeyStream(0), cfg, makeQuantizer(cfg.quantizer, latentGrid(cfg))));
  } catch (e) {
    // The quantizers' option checks throw plain Errors; anything else is a bug, not bad input.
    if (e instanceof Error && e.constructor === Error) throw new InputError(`${where}.quantizer: ${e.message}`, { field: "quantizer", cause: e });
    throw e;
  }
}

/**
 * A trained (or freshly initialized) auto-encoder tokenizer: images → ids with jitted `encode`,
 * ids → images with jitted `decode`; any quantizer of the family (`config.quantizer`).
 */
export class AutoencoderTokenizer implements Tokenizer<Image> {
  readonly modality = "image";
  readonly quantizer: AnyQuantizer;
  readonly #encode: OwnedFunction<(p: AutoencoderParams<JsTree<Array>>, x: Array) => Array>;
  readonly #decode: OwnedFunction<(p: AutoencoderParams<JsTree<Array>>, ids: Array) => Array>;
  #codes: OwnedFunction<(p: JsTree<Array>, ids: Array) => Array> | undefined;

  /** Takes ownership of `params`, which must be laid out for `config` (see `init`, `fromSaved`). */
  constructor(
    public params: AutoencoderParams<JsTree<Array>>,
    readonly config: AutoencoderTokenizerConfig,
  ) {
    checkAutoencoderConfig(config);
    const quantizer = makeQuantizer(config.quantizer, latentGrid(config));
    this.quantizer = quantizer;
    this.#encode = inferenceJit((p: AutoencoderParams<JsTree<Array>>, x: Array) => encodeIds(p, x, quantizer, config));
    this.#decode = inferenceJit((p: AutoencoderParams<JsTree<Array>>, ids: Array) => decodeIds(p, ids, quantizer, config));
  }

  /** Random weights drawn from `seed` (encoder, quantizer, decoder, in the VQ-VAE's order). */
  static init(config: AutoencoderTokenizerConfig, seed: number): AutoencoderTokenizer {
    checkAutoencoderConfig(config);
    const keys = new KeyStream(seed);
    const params = initAutoencoder(keys, config, makeQuantizer(config.quantizer, latentGrid(config)));
    keys.dispose();
    return new AutoencoderTokenizer(params, config);
  }

  /** Rebuild from `save()`'s output; checks the config, every tensor's name and shape, and that weights are finite. */
  static fromSaved(saved: SavedTokenizer, what = "image tokenizer"): AutoencoderTokenizer {
    if (saved.kind !== "autoencoder") throw new InputError(`${what}: kind is ${JSON.stringify(saved.kind)}, expected "autoencoder"`);
    const config = saved.config as unknown;
    checkAutoencoderConfig(config, `${what} config`);
    const expect = autoencoderExpectations(config, `${what} config`);
    return new AutoencoderTokenizer(paramsFromTensors(saved.tensors, expect, what), config);
  }

  get codebookSize(): number {
    return this.quantizer.codebookSize;
  }
  get vocabSize(): number {
    return this.quantizer.codebookSize;
  }
  get tokenShape(): readonly number[] {
    return this.quantizer.tokenShape;
  }
  get tokensPerItem(): number {
    return this.quantizer.tokensPerImage;
  }
  get tokensPerImage(): number {
    return this.quantizer.tokensPerImage;
  }
  /** Values per image: C·H·W. */
  get imageSize(): number {
    return imageChannels(this.config) * this.config.height * this.config.width;
  }

  /** images: [N·C·H·W] in [0, 1] → ids [N·T], in chunks of `chunk` images. */
  async encodeImages(images: Float32Array, n: number, chunk = 500): Promise<Int32Array> {
    const { height: h, width: w } = this.config;
    const c = imageChannels(this.config);
    if (!Number.isInteger(n) || n < 0 || images.length !== n * this.imageSize) {
      throw new Error(`AutoencoderTokenizer.encode: expected ${n} images of ${c}×${h}×${w} (${n * this.imageSize} values), got ${images.length} values`);
    }
    const t = this.tokensPerImage;
    const out = new Int32Array(n * t);
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const x = fromHost(images.subarray(i * this.imageSize, (i + m) * this.imageSize), [m, c, h, w]);
      out.set((await this.#encode(tree.ref(this.params), x).data()) as Int32Array, i * t);
    }
    return out;
  }

  /** ids: [N·T] → images [N·C·H·W] in [0, 1]. */
  async decodeImages(ids: Int32Array, n: number): Promise<Float32Array> {
    const t = this.tokensPerImage;
    if (!Number.isInteger(n) || n < 0 || ids.length !== n * t) throw new Error(`AutoencoderTokenizer.decode: expected ${n}×${t} ids ${fmt([n, t])}, got ${ids.length}`);
    checkIds(ids, this.quantizer.codebookSize, `${this.quantizer.name} token id`);
    return (await this.#decode(tree.ref(this.params), fromHost(ids, [n, t])).data()) as Float32Array;
  }

  /** ids: [N·T] → the codes they stand for, [N·T·D] (what the decoder reads; e.g. features for a linear probe). */
  async codesOf(ids: Int32Array, n: number): Promise<Float32Array> {
    const t = this.tokensPerImage;
    if (!Number.isInteger(n) || n < 0 || ids.length !== n * t) throw new Error(`AutoencoderTokenizer.codesOf: expected ${n}×${t} ids, got ${ids.length}`);
    checkIds(ids, this.quantizer.codebookSize, `${this.quantizer.name} token id`);
    const q = this.quantizer;
    this.#codes ??= jit((p: JsTree<Array>, x: Array) => q.indicesToCodes(p as never, x));
    return (await this.#codes(tree.ref(this.params.quantizer), fromHost(ids, [n, t])).data()) as Float32Array;
  }

  async encode(items: readonly Image[]): Promise<TokenIds[]> {
    const c = imageChannels(this.config);
    const { height: h, width: w } = this.config;
    items.forEach((im, i) => {
      if (im.channels !== c || im.height !== h || im.width !== w || im.data.length !== c * h * w) {
        throw new Error(`AutoencoderTokenizer.encode: image ${i} is ${im.channels}×${im.height}×${im.width} (${im.data.length} values), expected ${c}×${h}×${w}`);
      }
    });
    const flat = new Float32Array(items.length * this.imageSize);
    items.forEach((im, i) => flat.set(im.data, i * this.imageSize));
    const ids = await this.encodeImages(flat, items.length);
    const t = this.tokensPerImage;
    return items.map((_, i) => ({ ids: ids.slice(i * t, (i + 1) * t), shape: this.tokenShape }));
  }

  async decode(ids: readonly (TokenIds | Int32Array)[]): Promise<Image[]> {
    const t = this.tokensPerImage;
    const flat = new Int32Array(ids.length * t);
    ids.forEach((x, i) => {
      const row = idsOf(x);
      if (row.length !== t) throw new Error(`AutoencoderTokenizer.decode: item ${i} has ${row.length} ids, expected ${t} (${fmt(this.tokenShape as number[])})`);
      flat.set(row, i * t);
    });
    const images = await this.decodeImages(flat, ids.length);
    const c = imageChannels(this.config);
    const { height, width } = this.config;
    return ids.map((_, i) => ({ data: images.slice(i * this.imageSize, (i + 1) * this.imageSize), channels: c, height, width }));
  }

  async save(): Promise<SavedTokenizer> {
    return { kind: "autoencoder", config: { ...this.config }, tensors: await paramsToTensors(this.params as JsTree<Array>) };
  }

  dispose(): void {
    this.#encode.dispose();
    this.#decode.dispose();
    this.#codes?.dispose();
    tree.dispose(this.params);
  }
}

export type { QuantizerAdapter };
export { latentGrid, MAX_STAGES, stagesOf, type StageConfig } from "./grid.ts";
