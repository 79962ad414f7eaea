/**
 * safetensors (Hugging Face) on plain typed arrays: 8-byte little-endian header length, a JSON
 * header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}, then the raw data;
 * offsets are relative to the first byte after the header.
 */
export type TensorRecord =
  | { dtype: "F32"; shape: number[]; data: Float32Array }
  | { dtype: "I32"; shape: number[]; data: Int32Array }
  | { dtype: "U8"; shape: number[]; data: Uint8Array };

const BYTES = { F32: 4, I32: 4, U8: 1 } as const;
type DType = keyof typeof BYTES;

export function encodeSafetensors(tensors: Record<string, TensorRecord>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const size = t.data.byteLength;
    const expected = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype];
    if (size !== expected) throw new Error(`tensor "${name}": shape [${t.shape}] needs ${expected} bytes, data has ${size}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8); // align the data to 8 bytes
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array): { tensors: Record<string, TensorRecord>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`not a safetensors file: ${bytes.length} bytes, need at least 8`);
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + headerLen > bytes.length) throw new Error(`truncated: header says ${headerLen} bytes, file has ${bytes.length - 8} after the length`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new Error(`corrupt safetensors header: ${(e as Error).message}`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const { __metadata__: metadata = {}, ...entries } = header as Record<string, never>;
  const spans: [number, number, string][] = [];
  const tensors: Record<string, TensorRecord> = {};
  for (const [name, info] of Object.entries(entries) as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][]) {
    if (!(info.dtype in BYTES)) throw new Error(`tensor "${name}": unsupported dtype ${info.dtype} (expected one of ${Object.keys(BYTES).join(", ")})`);
    const dtype = info.dtype as DType;
    const [begin, end] = info.data_offsets ?? [];
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`tensor "${name}": bad shape ${JSON.stringify(info.shape)}`);
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin || end > dataLen) {
      throw new Error(`tensor "${name}": data_offsets [${begin}, ${end}] outside the ${dataLen} data bytes (truncated file?)`);
    }
    const expected = info.shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    if (end - begin !== expected) throw new Error(`tensor "${name}": shape [${info.shape}] of ${dtype} needs ${expected} bytes, offsets span ${end - begin}`);
    spans.push([begin, end, name]);
    const raw = bytes.slice(dataStart + begin, dataStart + end);
    const data = dtype === "F32" ? new Float32Array(raw.buffer) : dtype === "I32" ? new Int32Array(raw.buffer) : raw;
    tensors[name] = { dtype, shape: info.shape, data } as TensorRecord;
  }
  spans.sort((a, b) => a[0] - b[0]);
  let cursor = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== cursor) throw new Error(`tensor "${name}": data starts at ${begin}, expected ${cursor} (overlapping or gapped offsets)`);
    cursor = end;
  }
  if (cursor !== dataLen) throw new Error(`${dataLen - cursor} trailing bytes after the last tensor`);
  return { tensors, metadata };
}
