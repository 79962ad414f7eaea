/**
 * Grayscale PNG in and out (pngjs, sync API): sample grids for humans, and single images
 * read back as model input. Pixel values are floats in [0, 1], row-major [H, W].
 */
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { inflateSync } from "node:zlib";
import { PNG } from "pngjs";
import { writeAtomic } from "./checkpoint.ts";
import { InputError } from "./errors.ts";

const toByte = (v: number) => Math.round(255 * Math.min(1, Math.max(0, Number.isNaN(v) ? 0 : v)));

/** img: [H*W] in [0, 1] (clamped; NaN → 0) → an 8-bit grayscale PNG. */
export function encodeGrayPng(img: Float32Array, height: number, width: number): Buffer {
  checkSize(height, width, "encodeGrayPng");
  if (img.length !== height * width) throw new Error(`encodeGrayPng: image has ${img.length} values, expected ${height}×${width} = ${height * width}`);
  const png = new PNG({ width, height });
  png.data = Buffer.from(Uint8Array.from(img, toByte));
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8 });
}

export type GridOptions = {
  height: number;
  width: number;
  /** Images to draw; default all of `images`. */
  count?: number;
  /** Images per row; default ⌈√count⌉. */
  cols?: number;
  /** Gap around and between cells, in output pixels. */
  pad?: number;
  /** Nearest-neighbour upscale factor per image pixel. */
  scale?: number;
  /** Gap colour in [0, 1]; mid-gray keeps cells apart on black MNIST backgrounds. */
  padValue?: number;
  /** 1 (grayscale, images [N, H·W]) or 3 (RGB, channels-first [N, 3, H, W]); default 1. */
  channels?: 1 | 3;
};

/**
 * Write `count` images (images: [≥count, H*W] in [0, 1], or [≥count, 3, H, W] with `channels: 3`) as one PNG grid of
 * `cols` columns, each image upscaled `scale`× and framed by `pad` pixels. Written to a temp
 * file then renamed, so readers never see half a file. Returns the PNG's size in pixels.
 */
export function writeGrayGrid(path: string, images: Float32Array, opts: GridOptions): { width: number; height: number } {
  const { height: h, width: w, pad = 2, scale = 2, padValue = 0.5, channels: c = 1 } = opts;
  checkSize(h, w, "writeGrayGrid");
  if (c !== 1 && c !== 3) throw new Error(`writeGrayGrid: channels must be 1 or 3, got ${c}`);
  const plane = h * w;
  const px = c * plane;
  const count = opts.count ?? images.length / px;
  if (!Number.isInteger(count) || count < 1 || count * px > images.length) {
    throw new Error(`writeGrayGrid: count must be an integer in [1, ${Math.floor(images.length / px)}] for ${images.length} values of ${h}×${w} images, got ${count}`);
  }
  const cols = opts.cols ?? Math.ceil(Math.sqrt(count));
  for (const [name, v, min] of [["cols", cols, 1], ["pad", pad, 0], ["scale", scale, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`writeGrayGrid: ${name} must be an integer ≥ ${min}, got ${v}`);
  }
  const rows = Math.ceil(count / cols);
  const cellH = h * scale;
  const cellW = w * scale;
  const outW = cols * cellW + (cols + 1) * pad;
  const outH = rows * cellH + (rows + 1) * pad;
  const out = new Uint8Array(c * outW * outH).fill(toByte(padValue));
  for (let k = 0; k < count; k++) {
    const y0 = pad + Math.floor(k / cols) * (cellH + pad);
    const x0 = pad + (k % cols) * (cellW + pad);
    for (let y = 0; y < cellH; y++) {
      for (let x = 0; x < cellW; x++) {
        const src = k * px + Math.floor(y / scale) * w + Math.floor(x / scale);
        // PNG rows interleave the channels (RGBRGB…); the images are channels-first.
        for (let ch = 0; ch < c; ch++) out[c * ((y0 + y) * outW + x0 + x) + ch] = toByte(images[src + ch * plane]!);
      }
    }
  }
  const png = new PNG({ width: outW, height: outH });
  png.data = Buffer.from(out.buffer);
  mkdirSync(dirname(path), { recursive: true });
  const type = c === 1 ? 0 : 2;
  writeAtomic(path, PNG.sync.write(png, { colorType: type, inputColorType: type, bitDepth: 8 }));
  return { width: outW, height: outH };
}

/**
 * The images of a grid written by `writeGrayGrid` with the same options, back as [count, H*W]
 * in [0, 1] (8-bit: within 1/510 of what was written). Lets a sample grid be scored again later,
 * e.g. by another evaluator, without keeping the raw samples. Throws (InputError) if the PNG's
 * size is not the grid's.
 */
export function readGrayGrid(path: string, opts: GridOptions & { count: number; cols: number }): Float32Array {
  const { height: h, width: w, count, cols, pad = 2, scale = 2 } = opts;
  const rows = Math.ceil(count / cols);
  const outW = cols * w * scale + (cols + 1) * pad;
  const outH = rows * h * scale + (rows + 1) * pad;
  const pixels = readGrayImage(path, { height: outH, width: outW });
  const out = new Float32Array(count * h * w);
  for (let k = 0; k < count; k++) {
    const y0 = pad + Math.floor(k / cols) * (h * scale + pad);
    const x0 = pad + (k % cols) * (w * scale + pad);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[k * h * w + y * w + x] = pixels[(y0 + y * scale) * outW + x0 + x * scale]!;
  }
  return out;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * The checks made before any byte is decompressed: a regular file of at most `maxBytes`, the PNG
 * signature, and an IHDR chunk first (PNG spec §5.2, §11.2.2) declaring `width` × `height`.
 * A decoder handed a tiny file that declares 2³¹ × 2³¹ pixels would allocate (or crash) first
 * and compare sizes after. Returns the file's bytes.
 */
function readCheckedPng(path: string, width: number, height: number, maxBytes: number): Buffer {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (err) {
    throw new InputError(`${path} could not be read: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`, { file: path, cause: err });
  }
  if (!st.isFile()) throw new InputError(`${path} is not a regular file (${st.isDirectory() ? "a folder" : "a device or special file"}); expected a PNG file`, { file: path, expected: "a PNG file" });
  if (st.size > maxBytes) throw new InputError(`${path} is ${st.size} bytes, more than the ${maxBytes} a ${width}×${height} PNG may take`, { file: path, field: "size", value: st.size, expected: `at most ${maxBytes} bytes` });
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new InputError(`${path} could not be read: ${(err as Error).message}`, { file: path, cause: err });
  }
  if (bytes.length < 33 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) throw new InputError(`${path} is not a PNG file (no PNG signature)`, { file: path, field: "signature", expected: "a PNG file" });
  if (bytes.readUInt32BE(8) !== 13 || bytes.toString("latin1", 12, 16) !== "IHDR") throw new InputError(`${path} is not a valid PNG: its first chunk is not a 13-byte IHDR`, { file: path, field: "IHDR", expected: "a 13-byte IHDR chunk first" });
  const [w, h] = [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  if (w !== width || h !== height) throw new InputError(`${path} is ${w}×${h} (width×height), expected ${width}×${height}`, { file: path, field: "IHDR width×height", value: `${w}×${h}`, expected: `${width}×${height}` });
  checkPixelData(bytes, path, width, height);
  return bytes;
}

/** Channels per pixel of each PNG colour type (spec §11.2.2): gray, RGB, palette, gray + alpha, RGBA. */
const CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7's passes (spec §8.2): [x0, y0, dx, dy]. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

/**
 * The IDAT chunks must inflate to at least the bytes the header's image takes (each row: a filter
 * byte, then its pixels). pngjs does not check: it decodes rows past the end of short data from
 * an uninitialized buffer, so a truncated file would give whatever was in memory — different
 * pixels from one run to the next. Inflation stops one byte past that size.
 */
function checkPixelData(bytes: Buffer, path: string, width: number, height: number): void {
  const [depth, colour, interlace] = [bytes[24]!, bytes[25]!, bytes[28]!];
  const channels = CHANNELS[colour];
  if (channels === undefined || ![1, 2, 4, 8, 16].includes(depth) || interlace > 1) throw new InputError(`${path} is not a valid PNG: colour type ${colour}, bit depth ${depth}, interlace ${interlace}`, { file: path, field: "IHDR" });
  const rowBytes = (w: number) => 1 + Math.ceil((w * channels * depth) / 8);
  const passes = interlace === 1 ? ADAM7.map(([x0, y0, dx, dy]) => [Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)]) : [[width, height]];
  const expected = passes.reduce((n, [w, h]) => n + (w! > 0 && h! > 0 ? h! * rowBytes(w!) : 0), 0);
  const idat: Buffer[] = [];
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString("latin1", at + 4, at + 8);
    if (at + 12 + length > bytes.length) break; // a truncated chunk: pngjs names it
    if (type === "IDAT") idat.push(bytes.subarray(at + 8, at + 8 + length));
    if (type === "IEND") break;
    at += 12 + length;
  }
  let pixels: Buffer;
  try {
    pixels = inflateSync(Buffer.concat(idat), { maxOutputLength: expected + 1, finishFlush: 2 /* Z_SYNC_FLUSH: keep what a cut stream holds */ });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") return; // more than enough; pngjs reads what it needs
    throw new InputError(`${path} could not be read as a PNG: its pixel data is corrupt (${(err as Error).message})`, { file: path, cause: err });
  }
  if (pixels.length < expected) throw new InputError(`${path} could not be read as a PNG: the file is truncated or corrupt (its pixel data holds ${pixels.length} of the ${expected} bytes a ${width}×${height} image needs)`, { file: path, value: pixels.length, expected: `${expected} bytes` });
}

/**
 * Read a PNG of any colour type and bit depth as luminance (Rec. 601: 0.299 R + 0.587 G +
 * 0.114 B) in [0, 1], composited over black (MNIST's background). → [H*W].
 * Throws, before decompressing anything, when the file is not a PNG of width × height, or is
 * larger than such a PNG can reasonably be (`maxBytes`, default: 4 × the 16-bit RGBA pixels + 64 KiB).
 */
export function readGrayImage(path: string, { height = 28, width = 28, maxBytes }: { height?: number; width?: number; maxBytes?: number } = {}): Float32Array {
  checkSize(height, width, "readGrayImage");
  const bytes = readCheckedPng(path, width, height, maxBytes ?? 4 * 8 * width * height + 65536);
  let png: PNG;
  try {
    png = PNG.sync.read(bytes);
  } catch (err) {
    const msg = (err as Error).message;
    throw new InputError(`${path} could not be read as a PNG: ${/read requests|unexpected end|finished stream/i.test(msg) ? "the file is truncated or corrupt" : msg}`, { file: path, cause: err });
  }
  if (png.width !== width || png.height !== height) {
    throw new InputError(`${path} is ${png.width}×${png.height} (width×height), expected ${width}×${height}`, { file: path, value: `${png.width}×${png.height}`, expected: `${width}×${height}` });
  }
  const rgba = png.data; // [H*W*4] 8-bit RGBA; pngjs expands gray/palette and rescales 16-bit
  const out = new Float32Array(width * height);
  for (let i = 0; i < out.length; i++) {
    const lum = 0.299 * rgba[4 * i]! + 0.587 * rgba[4 * i + 1]! + 0.114 * rgba[4 * i + 2]!;
    out[i] = (lum * rgba[4 * i + 3]!) / (255 * 255);
  }
  return out;
}

function checkSize(height: number, width: number, where: string): void {
  if (!Number.isInteger(height) || height < 1 || !Number.isInteger(width) || width < 1) {
    throw new Error(`${where}: height and width must be positive integers, got ${height}×${width} (height×width)`);
  }
}
