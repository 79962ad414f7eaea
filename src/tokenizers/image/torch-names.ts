/**
 * The VQ-VAE image tokenizer's decoder (autoencoder.ts) under PyTorch module names, as
 * reference/mmntp_torch.py's `ImageDecoder` loads it. Conv weights already use PyTorch's layouts
 * (Conv2d [Cout, Cin, k, k], ConvTranspose2d [Cin, Cout, k, k]), so nothing is transposed.
 *
 *   mmntp                   PyTorch
 *   quantizer.codebook      quantize.embedding.weight    [K, D]
 *   dec.inp.{w,b}           decoder.conv_in.{weight,bias} 3×3, D → C2
 *   dec.t1.{w,b}            decoder.up1.*                 4×4 stride 2, C2 → C1
 *   dec.t2.{w,b}            decoder.up2.*                 4×4 stride 2, C1 → C
 *
 * Only the plain VQ quantizer (L2 distance, no factorized lookup) is exported: its codes are the
 * codebook's rows. Browser-safe.
 */
import type { TensorRecord } from "../../io/safetensors.ts";
import type { AutoencoderTokenizerConfig } from "./autoencoder.ts";
import { latentGrid } from "./autoencoder.ts";

export const IMAGE_DECODER_NAMES: Readonly<Record<string, string>> = {
  "quantizer.codebook": "quantize.embedding.weight",
  "dec.inp.w": "decoder.conv_in.weight",
  "dec.inp.b": "decoder.conv_in.bias",
  "dec.t1.w": "decoder.up1.weight",
  "dec.t1.b": "decoder.up1.bias",
  "dec.t2.w": "decoder.up2.weight",
  "dec.t2.b": "decoder.up2.bias",
};

/** What `ImageDecoder` needs to rebuild itself (config.json's `imageDecoder`). */
export type TorchImageDecoderConfig = {
  readonly codebookSize: number;
  readonly dim: number;
  readonly channels: readonly [number, number];
  readonly imageChannels: number;
  readonly output: AutoencoderTokenizerConfig["output"];
  /** The token grid [h, w] one image's ids fill, row-major. */
  readonly grid: readonly [number, number];
};

/** Why `cfg`'s decoder cannot be exported, or undefined when it can. */
export function imageDecoderUnsupported(cfg: AutoencoderTokenizerConfig): string | undefined {
  const q = cfg.quantizer;
  const o = q.options as { distance?: string; lookupDim?: number };
  if (q.name !== "vq") return `the ${q.name} quantizer's codes are not rows of one codebook (only plain VQ is exported)`;
  if ((o.distance ?? "l2") !== "l2" || o.lookupDim !== undefined) return "a VQ with cosine distance or a factorized lookup (only plain L2 VQ is exported)";
  if (cfg.grid !== undefined && cfg.grid !== cfg.height / 4) return `a ${cfg.grid}-row token grid (ImageDecoder has the two stride-2 stages of an H/4 grid)`;
  return undefined;
}

/** The decoder's config for PyTorch (call `imageDecoderUnsupported` first). */
export function torchImageDecoderConfig(cfg: AutoencoderTokenizerConfig): TorchImageDecoderConfig {
  const o = cfg.quantizer.options as { codebookSize: number; dim: number };
  const [h, w] = latentGrid(cfg);
  return { codebookSize: o.codebookSize, dim: o.dim, channels: cfg.channels, imageChannels: cfg.imageChannels ?? 1, output: cfg.output, grid: [h, w] };
}

/** The tokenizer's tensors (as `AutoencoderTokenizer.save` names them) → the decoder's, under PyTorch names. */
export function imageDecoderToTorch(tensors: Readonly<Record<string, TensorRecord>>): Record<string, TensorRecord> {
  const out: Record<string, TensorRecord> = {};
  for (const [mmntp, torch] of Object.entries(IMAGE_DECODER_NAMES)) {
    const t = tensors[mmntp];
    if (!t) throw new Error(`imageDecoderToTorch: the tokenizer has no tensor "${mmntp}"`);
    out[torch] = t;
  }
  return out;
}
