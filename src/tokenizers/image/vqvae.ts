import { fromHost, jit, lax, nn, np, tree, type Array, type OwnedFunction } from "../../engine/index.ts";
import { KeyStream } from "../../engine/rng.ts";
import { checkIds } from "../../nn/embedding.ts";
import { conv2d, convTranspose2d, initConv2d, initConvTranspose2d, type Conv2dParams, type ConvTranspose2dParams } from "../../nn/conv.ts";
import { DEFAULT_VQ, indicesToCodes, initVQ, quantize, type VQOptions, type VQParams } from "../quantizers/vq.ts";

/**
 * VQ-VAE image tokenizer (van den Oord et al. 2017): conv encoder → vector quantizer →
 * conv decoder. A 28×28 image becomes a 7×7 grid of code ids read in raster order.
 */
export type VQVAEConfig = {
  readonly height: number;
  readonly width: number;
  readonly channels: readonly [number, number];
  readonly vq: VQOptions;
};

export const DEFAULT_VQVAE: VQVAEConfig = {
  height: 28,
  width: 28,
  channels: [32, 64],
  vq: { ...DEFAULT_VQ, codebookSize: 256, dim: 16 },
};

export type VQVAEParams = {
  enc: { c1: Conv2dParams; c2: Conv2dParams; c3: Conv2dParams; out: Conv2dParams };
  vq: VQParams;
  dec: { inp: Conv2dParams; t1: ConvTranspose2dParams; t2: ConvTranspose2dParams };
};

/** Tokens per image: two stride-2 convs divide each side by 4. */
export const gridOf = (cfg: VQVAEConfig) => [cfg.height / 4, cfg.width / 4] as const;

export function initVQVAE(keys: KeyStream, cfg: VQVAEConfig = DEFAULT_VQVAE): VQVAEParams {
  const [c1, c2] = cfg.channels;
  const d = cfg.vq.dim;
  return {
    enc: {
      c1: initConv2d(keys, 1, c1, 4),
      c2: initConv2d(keys, c1, c2, 4),
      c3: initConv2d(keys, c2, c2, 3),
      out: initConv2d(keys, c2, d, 1),
    },
    vq: initVQ(keys, cfg.vq),
    dec: {
      inp: initConv2d(keys, d, c2, 3),
      t1: initConvTranspose2d(keys, c2, c1, 4),
      t2: initConvTranspose2d(keys, c1, 1, 4),
    },
  };
}

/** images: [N, 1, H, W] → latents [N, H/4, W/4, D] (channels last, ready for the quantizer). */
export function encodeLatents(p: VQVAEParams["enc"], images: Array): Array {
  let h = nn.relu(conv2d(p.c1, images, { stride: 2, padding: 1 }));
  h = nn.relu(conv2d(p.c2, h, { stride: 2, padding: 1 }));
  h = h.ref.add(nn.relu(conv2d(p.c3, h, { padding: 1 })));
  return conv2d(p.out, h).transpose([0, 2, 3, 1]);
}

/** codes: [N, H/4, W/4, D] → images [N, 1, H, W] in (0, 1). */
export function decodeCodes(p: VQVAEParams["dec"], codes: Array): Array {
  let h = nn.relu(conv2d(p.inp, codes.transpose([0, 3, 1, 2]), { padding: 1 }));
  h = nn.relu(convTranspose2d(p.t1, h, { stride: 2, padding: 1 }));
  return nn.sigmoid(convTranspose2d(p.t2, h, { stride: 2, padding: 1 }));
}

/**
 * Training loss: MSE reconstruction + codebook + β·commitment. images: [N, 1, H, W].
 * Returns [loss, metrics and the batch's code ids]; consumes params and images.
 */
export function vqvaeLoss(p: VQVAEParams, images: Array, cfg: VQVAEConfig): [Array, Record<string, Array>] {
  const z = encodeLatents(p.enc, images.ref);
  const q = quantize(p.vq, z, cfg.vq);
  const recon = np.square(decodeCodes(p.dec, q.codes).sub(images)).mean();
  const { codebook, commitment } = q.losses;
  const loss = recon.ref.add(codebook.ref).add(commitment.ref);
  return [loss, { recon, codebook, commitment, indices: lax.stopGradient(q.indices) }];
}

/** A trained VQ-VAE with jitted `encode` (images → ids) and `decode` (ids → images). */
export class VQVAETokenizer {
  readonly #encode: OwnedFunction<(p: VQVAEParams, x: Array) => Array>;
  readonly #decode: OwnedFunction<(p: VQVAEParams, ids: Array) => Array>;

  constructor(
    public params: VQVAEParams,
    readonly config: VQVAEConfig,
  ) {
    this.#encode = jit((p: VQVAEParams, x: Array) => {
      tree.dispose(p.dec);
      const q = quantize(p.vq, encodeLatents(p.enc, x), config.vq);
      tree.dispose([q.codes, q.losses, q.stats]);
      return q.indices;
    });
    this.#decode = jit((p: VQVAEParams, ids: Array) => {
      tree.dispose(p.enc);
      return decodeCodes(p.dec, indicesToCodes(p.vq, ids, config.vq));
    });
  }

  get codebookSize(): number {
    return this.config.vq.codebookSize;
  }

  get tokensPerImage(): number {
    const [h, w] = gridOf(this.config);
    return h * w;
  }

  /** images: [N·H·W] in [0, 1] → ids [N·(H/4)·(W/4)], raster order. */
  async encode(images: Float32Array, n: number): Promise<Int32Array> {
    const { height: h, width: w } = this.config;
    if (images.length !== n * h * w) {
      throw new Error(`VQVAETokenizer.encode: expected ${n} images of ${h}×${w} (${n * h * w} values), got ${images.length} values`);
    }
    const x = fromHost(images, [n, 1, h, w]);
    return (await this.#encode(tree.ref(this.params), x).data()) as Int32Array;
  }

  /** ids: [N·(H/4)·(W/4)] → images [N·H·W] in (0, 1). */
  async decode(ids: Int32Array, n: number): Promise<Float32Array> {
    const [gh, gw] = gridOf(this.config);
    if (ids.length !== n * gh * gw) throw new Error(`VQVAETokenizer.decode: expected ${n}×${gh * gw} ids, got ${ids.length}`);
    checkIds(ids, this.codebookSize, "image token id");
    const x = fromHost(ids, [n, gh, gw]);
    return (await this.#decode(tree.ref(this.params), x).data()) as Float32Array;
  }

  dispose(): void {
    this.#encode.dispose();
    this.#decode.dispose();
    tree.dispose(this.params);
  }
}
