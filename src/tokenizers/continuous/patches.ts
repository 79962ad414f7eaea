import type { Array } from "../../engine/index.ts";
import { fmt } from "../../nn/shapes.ts";

/**
 * Images ↔ sequences of flattened patches, the input of a ViT (Dosovitskiy et al. 2021, §3.1:
 * "we reshape the image x ∈ R^{H×W×C} into a sequence of flattened 2D patches x_p ∈ R^{N×(P²·C)}")
 * and, linearly projected into the backbone's width, the whole image encoder of Fuyu (Adept 2023),
 * which has none. Patches are in row-major order over the (H/p)×(W/p) grid, and each patch is
 * flattened channel-major, (c, i, j) → c·p² + i·p + j: the layout of a PyTorch Conv2d weight
 * [D, C, p, p], so a linear layer on `patchify` is a stride-p convolution with that weight
 * reshaped to [C·p², D].
 */
export type PatchGrid = {
  /** patch rows H/p and columns W/p */
  readonly rows: number;
  readonly cols: number;
  /** N = rows · cols */
  readonly count: number;
  /** C · p · p, the width of one flattened patch */
  readonly patchDim: number;
};

/**
 * The patch grid of a C×H×W image cut into p×p patches; throws, naming the patch size and the
 * image size, unless p is a positive integer that divides both H and W.
 */
export function patchGrid(channels: number, height: number, width: number, patch: number, what = "patchify"): PatchGrid {
  if (!Number.isInteger(patch) || patch < 1) throw new Error(`${what}: patch size must be a positive integer, got ${patch}`);
  for (const [name, v] of [["channels", channels], ["height", height], ["width", width]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: image ${name} must be a positive integer, got ${v}`);
  }
  if (height % patch !== 0 || width % patch !== 0) {
    throw new Error(`${what}: patch size ${patch} does not divide the image size ${height}×${width} (height and width must be multiples of ${patch})`);
  }
  const rows = height / patch;
  const cols = width / patch;
  return { rows, cols, count: rows * cols, patchDim: channels * patch * patch };
}

/**
 * images: [B, C, H, W] → patches [B, N = (H/p)(W/p), C·p·p], row-major over the grid, each patch
 * flattened as (c, i, j). Consumes `images`.
 */
export function patchify(images: Array, p: number): Array {
  if (images.ndim !== 4) {
    images.dispose();
    throw new Error(`patchify: expected images [B, C, H, W], got ${fmt(images.shape)}`);
  }
  const [b, c, h, w] = images.shape;
  let g: PatchGrid;
  try {
    g = patchGrid(c, h, w, p);
  } catch (e) {
    images.dispose();
    throw e;
  }
  return images
    .reshape([b, c, g.rows, p, g.cols, p])
    .transpose([0, 2, 4, 1, 3, 5]) // [B, H/p, W/p, C, p, p]
    .reshape([b, g.count, g.patchDim]);
}

/**
 * The inverse of `patchify`: patches [B, N, C·p·p] → images [B, C, H, W] of the given size.
 * Throws, naming the shapes, unless N = (H/p)(W/p) and the patch width is C·p·p. Consumes `patches`.
 */
export function unpatchify(patches: Array, p: number, image: { readonly channels: number; readonly height: number; readonly width: number }): Array {
  const { channels: c, height: h, width: w } = image;
  let g: PatchGrid;
  try {
    g = patchGrid(c, h, w, p, "unpatchify");
  } catch (e) {
    patches.dispose();
    throw e;
  }
  const [b, n, d] = patches.shape;
  if (patches.ndim !== 3 || n !== g.count || d !== g.patchDim) {
    patches.dispose();
    throw new Error(`unpatchify: ${c}×${h}×${w} images in ${p}×${p} patches need patches [B, ${g.count}, ${g.patchDim}], got ${fmt(patches.shape)}`);
  }
  return patches
    .reshape([b, g.rows, g.cols, c, p, p])
    .transpose([0, 3, 1, 4, 2, 5]) // [B, C, H/p, p, W/p, p]
    .reshape([b, c, h, w]);
}
