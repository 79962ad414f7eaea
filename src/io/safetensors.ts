/**
 * safetensors (https://github.com/huggingface/safetensors) on plain typed arrays:
 *
 *   [8 bytes: N, u64 little-endian][N bytes: JSON header][data]
 *
 * The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]}, with offsets
 * relative to the first byte after the header, plus an optional "__metadata__" string→string map.
 * Like the reference writer, we pad the header with spaces so the data starts 8-byte aligned.
 * The reader accepts unpadded headers too (older files have them) and checks everything the
 * reference reader checks: sizes match shapes, offsets are contiguous from 0, nothing trails.
 */
import { checkJsonDepth, InputError } from "./errors.ts";

export type TensorRecord =
  | { dtype: "F32"; shape: number[]; data: Float32Array }
  | { dtype: "I32"; shape: number[]; data: Int32Array }
  | { dtype: "U8"; shape: number[]; data: Uint8Array }
  /** IEEE half floats kept as their raw 16-bit patterns (JS has no Float16Array in Node 20). */
  | { dtype: "F16"; shape: number[]; data: Uint16Array };

export type DType = TensorRecord["dtype"];

/** Bytes per element of each dtype we read and write. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { F32: 4, I32: 4, U8: 1, F16: 2 };

const ARRAY_OF: { [D in DType]: new (buffer: ArrayBuffer) => Extract<TensorRecord, { dtype: D }>["data"] } = {
  F32: Float32Array,
  I32: Int32Array,
  U8: Uint8Array,
  F16: Uint16Array,
};

const isDType = (d: unknown): d is DType => typeof d === "string" && Object.hasOwn(DTYPE_BYTES, d);
const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const fmtShape = (shape: readonly number[]) => `[${shape.join(",")}]`;

// The format is little-endian; typed arrays use the host's byte order.
function checkHostEndianness(): void {
  if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error("safetensors: big-endian hosts are not supported");
}

/** Serialize tensors (written in sorted-name order) and optional string metadata. */
export function encodeSafetensors(tensors: Readonly<Record<string, TensorRecord>>, metadata?: Readonly<Record<string, string>>): Uint8Array {
  checkHostEndianness();
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== "string") throw new Error(`safetensors metadata "${k}" must be a string, got ${typeof v}`);
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") throw new Error(`"__metadata__" is reserved and cannot name a tensor`);
    const t = tensors[name];
    if (!isDType(t.dtype)) throw new Error(`tensor "${name}": unknown dtype ${JSON.stringify(t.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(", ")})`);
    if (!(t.data instanceof ARRAY_OF[t.dtype])) throw new Error(`tensor "${name}": dtype ${t.dtype} needs a ${ARRAY_OF[t.dtype].name}, got ${t.data.constructor.name}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`tensor "${name}": bad shape ${JSON.stringify(t.shape)}`);
    const expected = product(t.shape) * DTYPE_BYTES[t.dtype];
    const size = t.data.byteLength;
    if (size !== expected) throw new Error(`tensor "${name}": shape ${fmtShape(t.shape)} of ${t.dtype} needs ${expected} bytes, data has ${size}`);
    Object.defineProperty(header, name, { value: { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + size] }, enumerable: true }); // "__proto__" included
    offset += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8; // pad with spaces so the data is 8-byte aligned
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

type Entry = { name: string; dtype: DType; shape: number[]; begin: number; end: number };

/** Parse and validate a safetensors file; every tensor's data is copied into its own typed array. */
export function decodeSafetensors(bytes: Uint8Array): { tensors: Record<string, TensorRecord>; metadata: Record<string, string> } {
  checkHostEndianness();
  if (bytes.length < 8) throw new InputError(`not a safetensors file: ${bytes.length} bytes, need at least 8 for the header length`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(bytes.length - 8)) throw new InputError(`truncated: header says ${headerLen} bytes, file has ${bytes.length - 8} after the 8-byte length`);
  const dataStart = 8 + Number(headerLen);
  const dataLen = bytes.length - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    throw new InputError(`invalid JSON header (${headerLen} bytes): ${(e as Error).message}`);
  }
  checkJsonDepth(header, `invalid JSON header (${headerLen} bytes)`);
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new InputError(`invalid header: expected a JSON object, got ${JSON.stringify(header)?.slice(0, 40)}`);

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof info !== "object" || info === null || Array.isArray(info)) throw new InputError(`invalid header: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== "string") throw new InputError(`invalid header: __metadata__ "${k}" must be a string, got ${JSON.stringify(v)}`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    entries.push(parseEntry(name, info, dataLen));
  }

  // Offsets must tile the data exactly: first at 0, each starting where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev = "";
  for (const e of entries) {
    if (e.begin < cursor) throw new InputError(`tensors "${prev}" and "${e.name}" overlap: "${e.name}" starts at byte ${e.begin}, before "${prev}" ends at ${cursor}`);
    if (e.begin > cursor) throw new InputError(`tensor "${e.name}" starts at byte ${e.begin} but the data before it ends at ${cursor} (offsets must be contiguous)`);
    cursor = e.end;
    prev = e.name;
  }
  if (cursor !== dataLen) throw new InputError(`${dataLen - cursor} trailing bytes after the last tensor (tensors end at ${cursor}, data has ${dataLen} bytes)`);

  const tensors: Record<string, TensorRecord> = {};
  for (const { name, dtype, shape, begin, end } of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    // A copy (not a view) so each array owns an aligned buffer.
    const buffer = bytes.slice(dataStart + begin, dataStart + end).buffer;
    // defineProperty, not assignment: a tensor named "__proto__" must stay a tensor, not become the record's prototype.
    Object.defineProperty(tensors, name, { value: { dtype, shape, data: new ARRAY_OF[dtype](buffer) } as TensorRecord, enumerable: true, writable: true, configurable: true });
  }
  return { tensors, metadata };
}

function parseEntry(name: string, info: unknown, dataLen: number): Entry {
  if (typeof info !== "object" || info === null) throw new InputError(`tensor "${name}": header entry must be an object, got ${JSON.stringify(info)}`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (!isDType(dtype)) throw new InputError(`tensor "${name}": unknown dtype ${dtype === undefined ? "(missing)" : JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(", ")})`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new InputError(`tensor "${name}": bad shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
    throw new InputError(`tensor "${name}": bad data_offsets ${JSON.stringify(offsets)} (need [begin, end] with 0 ≤ begin ≤ end)`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataLen) throw new InputError(`tensor "${name}": data_offsets [${begin}, ${end}] run past the ${dataLen} data bytes (truncated file?)`);
  const expected = product(shape) * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    throw new InputError(`tensor "${name}": shape ${fmtShape(shape)} of ${dtype} needs ${expected} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return { name, dtype, shape, begin, end };
}

/** What a reader expects of each tensor; `dtype` is checked only when given. */
export type TensorExpectation = { readonly shape: readonly number[]; readonly dtype?: DType };

/**
 * What keeps `tensors` from fitting `expect`: each missing tensor, wrong shape or dtype, and
 * unexpected tensor, named (empty when they fit).
 */
export function fitProblems(tensors: Readonly<Record<string, TensorRecord>>, expect: Readonly<Record<string, TensorExpectation>> | ReadonlyMap<string, TensorExpectation>): string[] {
  const entries = expect instanceof Map ? [...expect.entries()] : Object.entries(expect);
  const known = new Set(entries.map(([k]) => k));
  const problems: string[] = [];
  for (const [key, want] of entries) {
    const t = Object.hasOwn(tensors, key) ? tensors[key] : undefined;
    if (!t) problems.push(`missing tensor "${key}"`);
    else if (t.shape.join(",") !== want.shape.join(",")) problems.push(`tensor "${key}" has shape [${t.shape}], expected [${want.shape}]`);
    else if (want.dtype && t.dtype !== want.dtype) problems.push(`tensor "${key}" has dtype ${t.dtype}, expected ${want.dtype}`);
  }
  for (const key of Object.keys(tensors)) if (!known.has(key)) problems.push(`unexpected tensor "${key}"`);
  return problems;
}

/** Throws an InputError "`what` does not fit the model: …" listing (up to 8 of) `problems`, if any. */
export function refuseMisfit(what: string, problems: readonly string[], file?: string): void {
  if (problems.length === 0) return;
  const shown = problems.length > 8 ? [...problems.slice(0, 8), `… and ${problems.length - 8} more`] : problems;
  throw new InputError(`${what} does not fit the model: ${shown.join("; ")}`, file === undefined ? {} : { file });
}
