import { describe, expect, it } from "vitest";
import { decodeSafetensors, encodeSafetensors, type TensorRecord } from "../../src/io/safetensors.ts";

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const u64 = (n: number) => latin1(String.fromCharCode(n) + "\0".repeat(7));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) out.set(p, (pos += p.length) - p.length);
  return out;
};
/** A file from a hand-written header (unpadded) and data bytes, to test the reader on its own. */
const file = (header: object, data: Uint8Array) => {
  const json = latin1(JSON.stringify(header));
  return concat(u64(json.length), json, data);
};
const headerOf = (bytes: Uint8Array) => {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) };
};

const sample = (): Record<string, TensorRecord> => ({
  "w.b": { dtype: "I32", shape: [2], data: Int32Array.from([7, -1]) },
  "w.a": { dtype: "F32", shape: [1, 3], data: Float32Array.from([1.5, -2, 1e-30]) },
  mask: { dtype: "U8", shape: [3], data: Uint8Array.from([0, 255, 1]) },
  half: { dtype: "F16", shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) }, // 1.0, -2.0
  scalar: { dtype: "F32", shape: [], data: Float32Array.from([3]) },
  empty: { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
});

describe("safetensors round trip", () => {
  it("decode(encode(x)) returns every tensor, dtype, shape and the metadata", () => {
    const tensors = sample();
    const back = decodeSafetensors(encodeSafetensors(tensors, { framework: "mmntp", note: "ünïcode ✓" }));
    expect(back.metadata).toEqual({ framework: "mmntp", note: "ünïcode ✓" });
    expect(Object.keys(back.tensors)).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      expect(back.tensors[name].dtype).toBe(t.dtype);
      expect(back.tensors[name].shape).toEqual(t.shape);
      expect(back.tensors[name].data).toEqual(t.data);
    }
  });

  it("reads views into a larger buffer and returns metadata {} when there is none", () => {
    const big = Float32Array.from([9, 9, 1, 2, 9]);
    const bytes = encodeSafetensors({ x: { dtype: "F32", shape: [2], data: big.subarray(2, 4) } });
    const shifted = concat(new Uint8Array(3), bytes).subarray(3); // unaligned byteOffset
    const back = decodeSafetensors(shifted);
    expect([...back.tensors.x.data]).toEqual([1, 2]);
    expect(back.metadata).toEqual({});
    expect(headerOf(bytes).json).not.toHaveProperty("__metadata__");
  });
});

describe("safetensors layout matches the spec", () => {
  it("u64 LE header length, space padding to 8 bytes, sorted names, offsets relative to the data", () => {
    const bytes = encodeSafetensors(sample(), { k: "v" });
    const { n, json } = headerOf(bytes);
    expect((8 + n) % 8).toBe(0);
    expect(new TextDecoder().decode(bytes.subarray(8, 8 + n))).toMatch(/^\{"__metadata__":\{"k":"v"\},.*\} *$/);
    expect(Object.keys(json)).toEqual(["__metadata__", "empty", "half", "mask", "scalar", "w.a", "w.b"]);
    expect(json.half).toEqual({ dtype: "F16", shape: [2], data_offsets: [0, 4] });
    expect(json.mask).toEqual({ dtype: "U8", shape: [3], data_offsets: [4, 7] });
    expect(json["w.a"]).toEqual({ dtype: "F32", shape: [1, 3], data_offsets: [11, 23] });
    expect(json["w.b"]).toEqual({ dtype: "I32", shape: [2], data_offsets: [23, 31] });
    expect(bytes.length).toBe(8 + n + 31);
    expect([...bytes.subarray(8 + n + 23, 8 + n + 27)]).toEqual([7, 0, 0, 0]); // little-endian int32 7
  });

  // Expected bytes from the reference implementation's own tests
  // (huggingface/safetensors, bindings/python/tests/test_simple.py).
  const zeros16 = "\0".repeat(16);
  it("writes the same bytes as the reference for one I32 tensor", () => {
    const data = new Int32Array(4);
    data[3] = 1;
    const ours = encodeSafetensors({ test: { dtype: "I32", shape: [2, 2], data } });
    expect(ours).toEqual(latin1(`@${"\0".repeat(7)}{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}    ${"\0".repeat(12)}\x01\0\0\0`));
  });

  it("writes the same bytes as the reference with metadata and with two dtypes", () => {
    const z = () => new Int32Array(4);
    expect(encodeSafetensors({ test1: { dtype: "I32", shape: [2, 2], data: z() } }, { framework: "pt" })).toEqual(
      latin1(`\`${"\0".repeat(7)}{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}} ${zeros16}`),
    );
    const two: Record<string, TensorRecord> = { test2: { dtype: "F16", shape: [2, 2], data: new Uint16Array(4) }, test1: { dtype: "I32", shape: [2, 2], data: z() } };
    expect(encodeSafetensors(two)).toEqual(
      latin1(`\x80${"\0".repeat(7)}{"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"test2":{"dtype":"F16","shape":[2,2],"data_offsets":[16,24]}}      ${zeros16}${"\0".repeat(8)}`),
    );
  });

  it("reads the reference's unpadded (older) file", () => {
    const legacy = latin1(`<${"\0".repeat(7)}{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}${zeros16}`);
    const { tensors } = decodeSafetensors(legacy);
    expect(tensors.test).toEqual({ dtype: "I32", shape: [2, 2], data: new Int32Array(4) });
  });

  it("pads by UTF-8 bytes, not characters, for non-ASCII names", () => {
    const bytes = encodeSafetensors({ "größe": { dtype: "U8", shape: [1], data: Uint8Array.of(5) } });
    const { n } = headerOf(bytes);
    expect(n % 8).toBe(0);
    expect([...decodeSafetensors(bytes).tensors["größe"].data]).toEqual([5]);
  });
});

describe("safetensors rejects corrupt files with clear messages", () => {
  const good = encodeSafetensors({
    a: { dtype: "F32", shape: [2, 3], data: new Float32Array(6) },
    b: { dtype: "I32", shape: [4], data: new Int32Array(4) },
  });
  const { n } = headerOf(good);
  const text = new TextDecoder().decode(good.subarray(8, 8 + n));
  const withHeader = (h: string) => {
    expect(h.length).toBe(text.length); // same length, so the data stays put
    return concat(good.subarray(0, 8), latin1(h), good.subarray(8 + n));
  };

  it("too short for the length prefix", () => {
    expect(() => decodeSafetensors(good.subarray(0, 5))).toThrow("not a safetensors file: 5 bytes, need at least 8 for the header length");
  });

  it("header length beyond the file", () => {
    expect(() => decodeSafetensors(good.subarray(0, 8 + n - 10))).toThrow(`truncated: header says ${n} bytes, file has ${n - 10} after the 8-byte length`);
    const huge = concat(latin1("\xff".repeat(8)), good.subarray(8));
    expect(() => decodeSafetensors(huge)).toThrow(`truncated: header says 18446744073709551615 bytes`);
  });

  it("data truncated by a few bytes", () => {
    expect(() => decodeSafetensors(good.subarray(0, good.length - 3))).toThrow('tensor "b": data_offsets [24, 40] run past the 37 data bytes (truncated file?)');
  });

  it("flipped bits in the header JSON", () => {
    const flip = (at: number) => {
      const bad = good.slice();
      bad[8 + at] ^= 0x01;
      return bad;
    };
    expect(() => decodeSafetensors(flip(0))).toThrow(/^invalid JSON header \(\d+ bytes\): /); // "{" → "z"
    expect(() => decodeSafetensors(flip(text.indexOf('"I32"') + 2))).toThrow('tensor "b": unknown dtype "I22" (supported: F32, I32, U8, F16)');
    expect(() => decodeSafetensors(flip(text.indexOf("[0,24]") + 1))).toThrow(/tensor "a": shape \[2,3\] of F32 needs 24 bytes, but data_offsets \[1, 24\] span 23/);
  });

  it("a shape that disagrees with the offsets", () => {
    expect(() => decodeSafetensors(withHeader(text.replace('"shape":[2,3]', '"shape":[2,4]')))).toThrow(
      'tensor "a": shape [2,4] of F32 needs 32 bytes, but data_offsets [0, 24] span 24',
    );
  });

  it("overlapping, gapped or out-of-range offsets and trailing bytes", () => {
    const data = new Uint8Array(8);
    const u8 = (begin: number, end: number) => ({ dtype: "U8", shape: [end - begin], data_offsets: [begin, end] });
    expect(() => decodeSafetensors(file({ x: u8(0, 6), y: u8(4, 8) }, data))).toThrow('tensors "x" and "y" overlap: "y" starts at byte 4, before "x" ends at 6');
    expect(() => decodeSafetensors(file({ x: u8(0, 2), y: u8(4, 8) }, data))).toThrow('tensor "y" starts at byte 4 but the data before it ends at 2 (offsets must be contiguous)');
    expect(() => decodeSafetensors(file({ x: u8(0, 4) }, data))).toThrow("4 trailing bytes after the last tensor (tensors end at 4, data has 8 bytes)");
    expect(() => decodeSafetensors(file({ x: u8(0, 9) }, data))).toThrow('tensor "x": data_offsets [0, 9] run past the 8 data bytes');
    expect(() => decodeSafetensors(file({ x: { dtype: "U8", shape: [2], data_offsets: [6, 4] } }, data))).toThrow('tensor "x": bad data_offsets [6,4]');
    expect(() => decodeSafetensors(file({ x: { dtype: "U8", shape: [-8], data_offsets: [0, 8] } }, data))).toThrow('tensor "x": bad shape [-8]');
  });

  it("a header that is not an object, or metadata that is not strings", () => {
    expect(() => decodeSafetensors(file([1, 2], new Uint8Array(0)))).toThrow("invalid header: expected a JSON object");
    expect(() => decodeSafetensors(file({ __metadata__: { step: 3 } }, new Uint8Array(0)))).toThrow('__metadata__ "step" must be a string, got 3');
    expect(() => decodeSafetensors(concat(u64(2), latin1("\xff}")))).toThrow(/invalid JSON header \(2 bytes\)/);
  });
});

describe("safetensors rejects bad input when writing", () => {
  it("data that does not fit the shape or dtype", () => {
    expect(() => encodeSafetensors({ w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } })).toThrow('tensor "w": shape [2,2] of F32 needs 16 bytes, data has 12');
    const wrong = { dtype: "F32", shape: [1], data: new Int32Array(1) } as unknown as TensorRecord;
    expect(() => encodeSafetensors({ w: wrong })).toThrow('tensor "w": dtype F32 needs a Float32Array, got Int32Array');
    expect(() => encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } })).toThrow('"__metadata__" is reserved');
  });
});

describe("safetensors names", () => {
  it("a tensor named __proto__ stays a tensor of the record", async () => {
    const { decodeSafetensors, encodeSafetensors } = await import("../../src/io/safetensors.ts");
    const t = { dtype: "F32" as const, shape: [2], data: Float32Array.of(1, 2) };
    const bytes = encodeSafetensors(Object.defineProperty({ w: t }, "__proto__", { value: t, enumerable: true }));
    const back = decodeSafetensors(bytes).tensors;
    expect(Object.keys(back).sort()).toEqual(["__proto__", "w"]);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Array.from(back["__proto__"]!.data)).toEqual([1, 2]);
  });
});
