/**
 * Progressive previews as an animated GIF (GIF89a, through gifenc): one frame per decoding step,
 * grayscale images in [0, 1] tiled into a grid and enlarged by an integer factor (nearest), on a
 * fixed palette of 256 grays, so no colour quantization is needed. Returns the file's bytes
 * (writing them is the caller's: this module imports no `node:` module and runs in a browser).
 */
import * as gifenc from "gifenc";

// gifenc is CommonJS with an ES build: Node's import of the former gives its exports as
// `default`, a bundler's of the latter gives them by name.
const lib: typeof gifenc = (gifenc as { GIFEncoder?: unknown }).GIFEncoder ? gifenc : (gifenc as unknown as { default: typeof gifenc }).default;

const GRAYS = Array.from({ length: 256 }, (_, v) => [v, v, v]);

export type GrayGrid = {
  /** image height and width in pixels */
  readonly height: number;
  readonly width: number;
  /** images per row of the grid (default: all in one row) */
  readonly cols?: number;
};

/** count images [count·H·W] in [0, 1] → one grid image [rows·H, cols·W], rows = ⌈count / cols⌉ (empty cells black). */
export function tileGray(images: Float32Array, count: number, { height, width, cols = count }: GrayGrid): { pixels: Float32Array; height: number; width: number } {
  if (images.length !== count * height * width) throw new Error(`tileGray: ${images.length} values for ${count} images of ${height}×${width} (expected ${count * height * width})`);
  const rows = Math.ceil(count / cols);
  const W = cols * width;
  const pixels = new Float32Array(rows * height * W);
  for (let i = 0; i < count; i++) {
    const [r, c] = [Math.floor(i / cols), i % cols];
    for (let y = 0; y < height; y++) pixels.set(images.subarray((i * height + y) * width, (i * height + y + 1) * width), (r * height + y) * W + c * width);
  }
  return { pixels, height: rows * height, width: W };
}

export type GifOptions = {
  /** milliseconds per frame (default 250); the last frame is held `hold` times as long (default 4) */
  readonly delay?: number;
  readonly hold?: number;
  /** integer enlargement (default 4) */
  readonly scale?: number;
  /** 0 = loop forever (default), −1 = play once */
  readonly repeat?: number;
};

/** frames: each [height·width] in [0, 1] (e.g. `tileGray`'s) → the bytes of an animated GIF. */
export function encodeGrayGif(frames: readonly Float32Array[], height: number, width: number, opts: GifOptions = {}): Uint8Array {
  const { delay = 250, hold = 4, scale = 4, repeat = 0 } = opts;
  if (frames.length === 0) throw new Error("encodeGrayGif: no frames");
  if (!Number.isInteger(scale) || scale < 1 || scale > 64) throw new Error(`encodeGrayGif: scale ${scale} must be an integer in [1, 64]`);
  const [H, W] = [height * scale, width * scale];
  const gif = lib.GIFEncoder();
  frames.forEach((f, k) => {
    if (f.length !== height * width) throw new Error(`encodeGrayGif: frame ${k} has ${f.length} pixels, expected ${height}×${width} = ${height * width}`);
    const index = new Uint8Array(H * W);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const v = f[Math.floor(y / scale) * width + Math.floor(x / scale)]!;
        index[y * W + x] = Math.round(Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * 255);
      }
    gif.writeFrame(index, W, H, { ...(k === 0 ? { palette: GRAYS } : {}), delay: k === frames.length - 1 ? delay * hold : delay, repeat });
  });
  gif.finish();
  return gif.bytes();
}
