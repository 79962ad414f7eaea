import { nn, tree, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { conv2d, initConv2d, type Conv2dParams } from "../../nn/conv.ts";
import { fmt } from "../../nn/shapes.ts";

/**
 * A convolutional image encoder for continuous features: a stack of stride-2 convolutions, each
 * halving the image, with an activation between them (none after the last, so the features are
 * not clipped at zero), then the final h×w grid read out as a sequence:
 *
 *   images [B, C, H, W] → conv_1 … conv_L (stride 2) → [B, D, h, w] → [B, N = h·w, D]
 *
 * with h = H / 2^L, w = W / 2^L, D = the last stage's channels, tokens in row-major order (the
 * order of `patchify`). The grid features of a ResNet stage, as in the first LLaVA-like and
 * Flamingo (NFNet) encoders, at toy scale; kernels 4 (padding 1) or 3 (padding 1) both halve an
 * even side exactly.
 */
export type CNNEncoderConfig = {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /** output channels of each stride-2 stage; the last one is the feature width D */
  readonly widths: readonly number[];
  readonly kernel: 3 | 4;
  readonly activation: "gelu" | "relu";
};

export type CNNEncoderParams = { convs: Conv2dParams[] };

export const CNN_ACTIVATIONS: readonly CNNEncoderConfig["activation"][] = ["gelu", "relu"];

/**
 * Throws, naming the field, the value and what is allowed, unless `cfg` is a valid CNN encoder
 * config: positive sizes, 1–8 stages, and an image whose sides 2^L divides.
 */
export function checkCNNEncoderConfig(cfg: unknown, where = "cnn encoder config"): asserts cfg is CNNEncoderConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null || globalThis.Array.isArray(c)) throw new Error(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  for (const [key, max] of [["height", 1 << 14], ["width", 1 << 14], ["channels", 64]] as const) {
    const v = c[key];
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) throw new Error(`${where}.${key}: expected an integer in [1, ${max}], got ${JSON.stringify(v)}`);
  }
  const widths = c.widths;
  if (!globalThis.Array.isArray(widths) || widths.length < 1 || widths.length > 8 || widths.some((w) => !Number.isInteger(w) || w < 1 || w > 1 << 14)) {
    throw new Error(`${where}.widths: expected 1 to 8 integers in [1, ${1 << 14}] (channels per stride-2 stage), got ${JSON.stringify(widths)}`);
  }
  if (c.kernel !== 3 && c.kernel !== 4) throw new Error(`${where}.kernel: expected 3 or 4, got ${JSON.stringify(c.kernel)}`);
  if (!CNN_ACTIVATIONS.includes(c.activation as never)) throw new Error(`${where}.activation: expected one of ${CNN_ACTIVATIONS.join(", ")}, got ${JSON.stringify(c.activation)}`);
  const f = 2 ** widths.length;
  const [h, w] = [c.height as number, c.width as number];
  if (h % f !== 0 || w % f !== 0) throw new Error(`${where}: image size ${h}×${w} is not divisible by 2^${widths.length} = ${f} (${widths.length} stride-2 stages)`);
}

/** The feature grid h×w, N = h·w and D of `cfg`. */
export function cnnGrid(cfg: CNNEncoderConfig): { rows: number; cols: number; count: number; dim: number } {
  checkCNNEncoderConfig(cfg);
  const f = 2 ** cfg.widths.length;
  const [rows, cols] = [cfg.height / f, cfg.width / f];
  return { rows, cols, count: rows * cols, dim: cfg.widths[cfg.widths.length - 1]! };
}

export function initCNNEncoder(keys: KeyStream, cfg: CNNEncoderConfig): CNNEncoderParams {
  checkCNNEncoderConfig(cfg);
  const ins = [cfg.channels, ...cfg.widths.slice(0, -1)];
  return { convs: cfg.widths.map((out, i) => initConv2d(keys, ins[i]!, out, cfg.kernel)) };
}

/** images: [B, C, H, W] → features [B, N = h·w, D] (see the file header). Consumes p and images. */
export function cnnEncode(p: CNNEncoderParams, images: Array, cfg: CNNEncoderConfig): Array {
  const [, c, h, w] = images.shape;
  if (images.ndim !== 4 || c !== cfg.channels || h !== cfg.height || w !== cfg.width) {
    tree.dispose([p, images]);
    throw new Error(`cnnEncode: expected images [B, ${cfg.channels}, ${cfg.height}, ${cfg.width}], got ${fmt(images.shape)}`);
  }
  const act = cfg.activation === "gelu" ? nn.gelu : nn.relu;
  let x = images;
  p.convs.forEach((conv, i) => {
    x = conv2d(conv, x, { stride: 2, padding: 1 });
    if (i + 1 < p.convs.length) x = act(x);
  });
  const [b, d, rows, cols] = x.shape;
  return x.transpose([0, 2, 3, 1]).reshape([b, rows * cols, d]);
}
