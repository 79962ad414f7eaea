/**
 * IDX, the format of the original MNIST / Fashion-MNIST files (LeCun et al.,
 * http://yann.lecun.com/exdb/mnist/): bytes 0–1 are 0x00 0x00, byte 2 the dtype code,
 * byte 3 the number of dims, then one big-endian uint32 per dim, then the data,
 * big-endian, row-major. `.gz` files are gunzipped transparently.
 */
import { readFileSync, statSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { InputError } from "../io/errors.ts";
import type { ImageSet } from "./types.ts";

export type IdxDtype = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
/** data: [prod(shape)] row-major, in host byte order. */
export type IdxArray = { dtype: IdxDtype; shape: number[]; data: IdxData };

const DTYPES: Readonly<Record<number, { dtype: IdxDtype; size: number }>> = {
  0x08: { dtype: "uint8", size: 1 },
  0x09: { dtype: "int8", size: 1 },
  0x0b: { dtype: "int16", size: 2 },
  0x0c: { dtype: "int32", size: 4 },
  0x0d: { dtype: "float32", size: 4 },
  0x0e: { dtype: "float64", size: 8 },
};
const hex = (b: number) => `0x${b.toString(16).padStart(2, "0")}`;

/** The most an IDX file may hold once decompressed by default: 256 MiB (MNIST's training images are 47 MB). */
export const MAX_IDX_BYTES = 256 * 2 ** 20;

/**
 * Parse IDX bytes (gzip-compressed or not). Throws an InputError on bad magic, unknown dtype, or
 * a size that disagrees with the header; gzip data that declares more than `maxBytes` is refused
 * before it is inflated (a small .gz can expand to gigabytes before any size check could run).
 */
export function readIdx(bytes: Uint8Array, { maxBytes = MAX_IDX_BYTES }: { maxBytes?: number } = {}): IdxArray {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipBounded(bytes, maxBytes);
  if (bytes.length > maxBytes) throw new InputError(`IDX: ${bytes.length} bytes, more than maxBytes (${maxBytes})`);
  if (bytes.length < 4) throw new InputError(`IDX: ${bytes.length} bytes is too short for the 4-byte magic number`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new InputError(`IDX: bad magic number, expected it to start with 0x00 0x00 (or gzip's 0x1f 0x8b), got ${hex(bytes[0]!)} ${hex(bytes[1]!)}`);
  }
  const code = bytes[2]!;
  const kind = DTYPES[code];
  if (!kind) {
    const known = Object.entries(DTYPES).map(([c, k]) => `${hex(Number(c))} ${k.dtype}`).join(", ");
    throw new InputError(`IDX: unknown dtype code ${hex(code)}, expected one of ${known}`);
  }
  const ndim = bytes[3]!;
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) throw new InputError(`IDX: truncated header, expected ${headerBytes} bytes for ${ndim} dims, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count * kind.size;
  if (bytes.length < expected) {
    throw new InputError(`IDX: truncated data for shape [${shape.join(", ")}] ${kind.dtype}, expected ${expected} bytes (${headerBytes} header + ${count}×${kind.size}), got ${bytes.length}`);
  }
  if (bytes.length > expected) {
    throw new InputError(`IDX: ${bytes.length - expected} trailing bytes after the data for shape [${shape.join(", ")}] ${kind.dtype}, expected ${expected} bytes in all, got ${bytes.length}`);
  }
  return { dtype: kind.dtype, shape, data: decode(view, headerBytes, count, kind.dtype) };
}

/**
 * Gunzip, allocating no more than the data says it holds. A gzip member ends with ISIZE, its
 * uncompressed size mod 2³² (RFC 1952 §2.3.1): more than `maxBytes` is refused before inflating
 * anything (a 1 MB bomb declares its 1 GB), and inflation stops at ISIZE bytes, so a file that
 * lies about its size costs at most what it declares.
 */
function gunzipBounded(gz: Uint8Array, maxBytes: number): Uint8Array {
  if (gz.length < 18) throw new InputError(`IDX: corrupt gzip data (${gz.length} bytes, shorter than a gzip header and trailer)`);
  const isize = new DataView(gz.buffer, gz.byteOffset, gz.byteLength).getUint32(gz.length - 4, true);
  if (isize > maxBytes) throw new InputError(`IDX: the gzip data expands past ${maxBytes} bytes (maxBytes); not an IDX file of this size`);
  try {
    return gunzipSync(gz, { maxOutputLength: Math.max(1, isize) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ERR_BUFFER_TOO_LARGE" || e instanceof RangeError) throw new InputError(`IDX: corrupt gzip data (it expands past the ${isize} bytes its trailer declares)`);
    throw new InputError(`IDX: corrupt gzip data (${(e as Error).message})`, { cause: e });
  }
}

function decode(view: DataView, at: number, count: number, dtype: IdxDtype): IdxData {
  switch (dtype) {
    case "uint8":
      return new Uint8Array(view.buffer.slice(view.byteOffset + at, view.byteOffset + at + count));
    case "int8":
      return new Int8Array(view.buffer.slice(view.byteOffset + at, view.byteOffset + at + count));
    case "int16": {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(at + 2 * i, false);
      return out;
    }
    case "int32": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(at + 4 * i, false);
      return out;
    }
    case "float32": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(at + 4 * i, false);
      return out;
    }
    case "float64": {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(at + 8 * i, false);
      return out;
    }
  }
}

/** Encode a ubyte (0x08) IDX file. data: [prod(shape)] row-major. */
export function writeIdx(shape: readonly number[], data: Uint8Array): Uint8Array {
  if (shape.length === 0 || shape.length > 255) throw new Error(`writeIdx: shape must have 1 to 255 dims, got [${shape.join(", ")}]`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) throw new Error(`writeIdx: dim ${d} in shape [${shape.join(", ")}] is not a uint32`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new Error(`writeIdx: shape [${shape.join(", ")}] needs ${count} values, got ${data.length}`);
  const headerBytes = 4 + 4 * shape.length;
  const out = new Uint8Array(headerBytes + count);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, headerBytes);
  return out;
}

/**
 * An image set from an IDX image file (ubyte [N, H, W], scaled by 1/255 to [0, 1]) and an
 * IDX label file (ubyte [N]), e.g. `train-images-idx3-ubyte.gz` + `train-labels-idx1-ubyte.gz`.
 */
export function loadIdxImageSet(imagesPath: string, labelsPath: string): ImageSet {
  return loadIdxImages(imagesPath, labelsPath);
}

/** `loadIdxImageSet` with the label file optional: without one, every label is 0. */
export function loadIdxImages(imagesPath: string, labelsPath?: string): ImageSet {
  const img = readIdxFile(imagesPath);
  if (img.dtype !== "uint8" || img.shape.length !== 3) {
    throw new InputError(`${imagesPath}: expected uint8 images of shape [N, H, W], got ${img.dtype} [${img.shape.join(", ")}]`, { file: imagesPath });
  }
  const [n, height, width] = img.shape as [number, number, number];
  const images = new Float32Array(img.data.length);
  for (let i = 0; i < images.length; i++) images[i] = img.data[i]! / 255;
  if (labelsPath === undefined) return { images, labels: new Int32Array(n), n, height, width };
  const lab = readIdxFile(labelsPath);
  if (lab.dtype !== "uint8" || lab.shape.length !== 1) {
    throw new InputError(`${labelsPath}: expected uint8 labels of shape [N], got ${lab.dtype} [${lab.shape.join(", ")}]`);
  }
  if (lab.shape[0] !== n) throw new InputError(`IDX image/label count mismatch: ${imagesPath} has ${n} images but ${labelsPath} has ${lab.shape[0]} labels`);
  return { images, labels: Int32Array.from(lab.data), n, height, width };
}

/**
 * `readIdx` of a file, its errors prefixed by the file's name. The file must be a regular file of
 * at most MAX_IDX_BYTES: reading a device such as /dev/zero would never end.
 */
function readIdxFile(path: string): IdxArray {
  let bytes: Buffer;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new InputError(`${path} is not a regular file; expected an IDX file`, { file: path, expected: "an IDX file" });
    if (st.size > MAX_IDX_BYTES) throw new InputError(`${path} is ${st.size} bytes, more than the ${MAX_IDX_BYTES} an IDX file may take`, { file: path, value: st.size });
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${path} could not be read: ${(e as Error).message}`, { file: path, cause: e });
  }
  try {
    return readIdx(bytes);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`${path}: ${e.message}`, { file: path, cause: e });
    throw e;
  }
}
