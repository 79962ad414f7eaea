/**
 * Grayscale PNG in and out (pngjs, sync API): sample grids for humans, and single images
 * read back as model input. Pixel values are floats in [0, 1], row-major [H, W].
 */
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { PNG } from "pngjs";
import { writeAtomic } from "./checkpoint.ts";

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
};

/**
 * Write `count` images (images: [≥count, H*W] in [0, 1]) as one grayscale PNG grid of
 * `cols` columns, each image upscaled `scale`× and framed by `pad` pixels. Written to a temp
 * file then renamed, so readers never see half a file. Returns the PNG's size in pixels.
 */
export function writeGrayGrid(path: string, images: Float32Array, opts: GridOptions): { width: number; height: number } {
  const { height: h, width: w, pad = 2, scale = 2, padValue = 0.5 } = opts;
  checkSize(h, w, "writeGrayGrid");
  const px = h * w;
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
  const out = new Uint8Array(outW * outH).fill(toByte(padValue));
  for (let k = 0; k < count; k++) {
    const y0 = pad + Math.floor(k / cols) * (cellH + pad);
    const x0 = pad + (k % cols) * (cellW + pad);
    for (let y = 0; y < cellH; y++) {
      for (let x = 0; x < cellW; x++) {
        out[(y0 + y) * outW + x0 + x] = toByte(images[k * px + Math.floor(y / scale) * w + Math.floor(x / scale)]!);
      }
    }
  }
  const png = new PNG({ width: outW, height: outH });
  png.data = Buffer.from(out.buffer);
  mkdirSync(dirname(path), { recursive: true });
  writeAtomic(path, PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8 }));
  return { width: outW, height: outH };
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
    throw new Error(`${path} could not be read: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  if (!st.isFile()) throw new Error(`${path} is not a regular file (${st.isDirectory() ? "a folder" : "a device or special file"}); expected a PNG file`);
  if (st.size > maxBytes) throw new Error(`${path} is ${st.size} bytes, more than the ${maxBytes} a ${width}×${height} PNG may take`);
  const bytes = readFileSync(path);
  if (bytes.length < 33 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error(`${path} is not a PNG file (no PNG signature)`);
  if (bytes.readUInt32BE(8) !== 13 || bytes.toString("latin1", 12, 16) !== "IHDR") throw new Error(`${path} is not a valid PNG: its first chunk is not a 13-byte IHDR`);
  const [w, h] = [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  if (w !== width || h !== height) throw new Error(`${path} is ${w}×${h} (width×height), expected ${width}×${height}`);
  return bytes;
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
    throw new Error(`${path} could not be read as a PNG: ${/read requests|unexpected end|finished stream/i.test(msg) ? "the file is truncated or corrupt" : msg}`);
  }
  if (png.width !== width || png.height !== height) {
    throw new Error(`${path} is ${png.width}×${png.height} (width×height), expected ${width}×${height}`);
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
