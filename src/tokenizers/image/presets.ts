import type { AutoencoderTokenizerConfig } from "./autoencoder.ts";

/**
 * Image tokenizer presets (override any field with the CLI's `--set`).
 *
 * MNIST_VQVAE: the demo's VQ-VAE (van den Oord et al. 2017): 28×28 grayscale → a 7×7 grid of ids
 * from a 256-code codebook (D = 16), read in raster order.
 */
export const MNIST_VQVAE: AutoencoderTokenizerConfig = {
  height: 28,
  width: 28,
  imageChannels: 1,
  channels: [32, 64],
  // Under this head VQ with k-means + restart never died. The whole demo with the linear head
  // (docs/experiments/quantizers.md): a sharper tokenizer (21.5 dB, 98.8% of codes against 20.7 dB
  // and 96%), but its generated digits carried faint speckle (clipped stray positive pixels) that σ
  // keeps at 0; so the demo keeps σ.
  output: "sigmoid",
  quantizer: { name: "vq", options: { codebookSize: 256, dim: 16 } },
};
