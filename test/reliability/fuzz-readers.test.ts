import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, gzipSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { loadMnist } from "../../src/data/mnist.ts";
import { readIdx, writeIdx } from "../../src/data/idx.ts";
import { InputError } from "../../src/io/errors.ts";
import { encodeGrayPng, readGrayImage } from "../../src/io/png.ts";
import { decodeSafetensors, encodeSafetensors } from "../../src/io/safetensors.ts";
import { applyByteOps, applyJsonOps, byteOps, fieldRewrite, jsonOps, Tally, type ByteOp } from "./mutate.ts";

/**
 * Property-based fuzzing of the byte-level readers (docs/reliability.md): random mutations of a
 * valid PNG, IDX file (raw and gzip) and safetensors file must each be read, or refused with the
 * project's InputError, within 2 s of CPU: no crash, hang or other error. Seeded, so a failure
 * reproduces (fast-check prints the seed and the shrunk mutation).
 */
/** Per input, in CPU time: a hang or a runaway loop trips it, descheduling on a busy machine does not. */
const BOUND_MS = 2000;
const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};
const dir = mkdtempSync(join(tmpdir(), "mmntp-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `read`; the outcome is "read" or the refusal's kind. Any other error fails the property. */
function outcome(tally: Tally, read: () => void, kind: (message: string) => string): void {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let result = "read";
  try {
    read();
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    result = `refused (${kind(e.message)})`;
  }
  const [ms, cpu] = [performance.now() - t0, cpuMs(cpu0)];
  tally.add(result, ms);
  expect(cpu, `one input took ${cpu.toFixed(0)} ms of CPU`).toBeLessThan(BOUND_MS);
}

/** Recomputes every complete chunk's CRC (PNG spec §5.3), so a mutation reaches the decoder past pngjs's CRC check. */
function fixCrcs(png: Uint8Array): Uint8Array {
  const b = Uint8Array.from(png);
  const view = new DataView(b.buffer);
  for (let o = 8; o + 12 <= b.length; ) {
    const len = view.getUint32(o);
    if (o + 12 + len > b.length) break;
    view.setUint32(o + 8 + len, crc32(b.subarray(o + 4, o + 8 + len)));
    o += 12 + len;
  }
  return b;
}

const pngKind = (m: string) =>
  /signature/.test(m) ? "signature" : /IHDR/.test(m) ? "IHDR" : /expected 28×28/.test(m) ? "size" : /bytes, more than/.test(m) ? "file size" : "decoder";

describe("fuzz: readGrayImage (PNG)", () => {
  const png = encodeGrayPng(loadMnist().images.slice(0, 784), 28, 28);
  const tally = new Tally();
  const file = join(dir, "fuzz.png");
  const check = (bytes: Uint8Array) => {
    writeFileSync(file, bytes);
    outcome(
      tally,
      () => {
        const img = readGrayImage(file);
        expect(img.length).toBe(784);
        expect(img.every((v) => v >= 0 && v <= 1)).toBe(true);
        // The same pixels again after the heap has moved on: none come from uninitialized memory.
        Buffer.allocUnsafe(1 << 16).fill(0xa5);
        expect(readGrayImage(file)).toEqual(img);
      },
      pngKind,
    );
  };
  // IHDR's length, width, height, depth/colour/compression/filter/interlace bytes, IDAT's length.
  const fields = fieldRewrite([8, 16, 20, 24, 25, 33], false);

  it("1,100 mutations: bytes, bytes with valid CRCs, IHDR/IDAT fields", () => {
    fc.assert(fc.property(byteOps, (ops) => check(applyByteOps(png, ops))), { seed: 2701, numRuns: 500 });
    fc.assert(fc.property(byteOps, (ops) => check(fixCrcs(applyByteOps(png, ops)))), { seed: 2702, numRuns: 300 });
    fc.assert(fc.property(fc.array(fields, { minLength: 1, maxLength: 3 }), fc.boolean(), (ops: ByteOp[], crc) => check((crc ? fixCrcs : (b: Uint8Array) => b)(applyByteOps(png, ops)))), { seed: 2703, numRuns: 300 });
    tally.report("readGrayImage");
    expect(tally.total).toBeGreaterThanOrEqual(1100);
    expect(tally.counts.get("read")).toBeGreaterThan(0); // the mutations also leave readable files
  });
});

const idxKind = (m: string) => (/gzip/.test(m) ? "gzip" : /magic/.test(m) ? "magic" : /dtype/.test(m) ? "dtype" : /truncated/.test(m) ? "truncated" : /trailing/.test(m) ? "trailing" : "size");

describe("fuzz: readIdx (raw and gzip)", () => {
  const pixels = Uint8Array.from({ length: 3 * 4 * 4 }, (_, i) => (i * 37) % 256);
  const raw = writeIdx([3, 4, 4], pixels);
  // An int16 file too, so the multi-byte decoders run: dtype 0x0b, one dim of 5.
  const i16 = Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 5, ...Array.from({ length: 10 }, (_, i) => i * 25)]);
  const tally = new Tally();
  const check = (bytes: Uint8Array) =>
    outcome(
      tally,
      () => {
        const a = readIdx(bytes);
        expect(a.data.length).toBe(a.shape.reduce((x, y) => x * y, 1));
      },
      idxKind,
    );
  // The magic's dtype and dim-count bytes (as one word at 0) and the first three dims.
  const fields = fieldRewrite([0, 4, 8, 12], false);
  const base = fc.constantFrom(raw, i16);

  it("1,200 mutations: bytes, header fields, gzip of a mutated file, a mutated gzip", () => {
    fc.assert(fc.property(base, byteOps, (b, ops) => check(applyByteOps(b, ops))), { seed: 2711, numRuns: 400 });
    fc.assert(fc.property(base, fc.array(fields, { minLength: 1, maxLength: 3 }), (b, ops: ByteOp[]) => check(applyByteOps(b, ops))), { seed: 2712, numRuns: 300 });
    fc.assert(fc.property(base, byteOps, (b, ops) => check(gzipSync(applyByteOps(b, ops)))), { seed: 2713, numRuns: 250 });
    fc.assert(fc.property(base, byteOps, (b, ops) => check(applyByteOps(gzipSync(b), ops))), { seed: 2714, numRuns: 250 });
    tally.report("readIdx");
    expect(tally.total).toBeGreaterThanOrEqual(1200);
    expect(tally.counts.get("read")).toBeGreaterThan(0);
  });
});

const stKind = (m: string) => (/JSON|header/.test(m) ? "header" : /dtype/.test(m) ? "dtype" : /shape/.test(m) ? "shape" : /offsets|overlap|contiguous|trailing|truncated|bytes/.test(m) ? "offsets" : "other");

describe("fuzz: decodeSafetensors", () => {
  const f32 = { dtype: "F32" as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  const good = encodeSafetensors(
    { a: f32, b: { dtype: "I32", shape: [4], data: Int32Array.from([1, -2, 3, -4]) }, c: { dtype: "U8", shape: [5], data: Uint8Array.from([1, 2, 3, 4, 5]) }, d: { dtype: "F16", shape: [2, 2], data: Uint16Array.from([1, 2, 3, 4]) }, ["__proto__"]: { ...f32, shape: [6] } },
    { format: "mmntp" },
  );
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));
  const header = new TextDecoder().decode(good.subarray(8, 8 + n));
  const data = good.subarray(8 + n);
  /** A file with `text` as its header (its length fixed up) before the original data. */
  const withHeader = (text: string) => {
    const json = new TextEncoder().encode(text);
    const out = new Uint8Array(8 + json.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(data, 8 + json.length);
    return out;
  };
  const tally = new Tally();
  const check = (bytes: Uint8Array) =>
    outcome(
      tally,
      () => {
        for (const t of Object.values(decodeSafetensors(bytes).tensors)) expect(t.data.length).toBe(t.shape.reduce((x, y) => x * y, 1));
      },
      stKind,
    );

  it("1,100 mutations: bytes, the header length, the header's JSON fields", () => {
    fc.assert(fc.property(byteOps, (ops) => check(applyByteOps(good, ops))), { seed: 2721, numRuns: 500 });
    fc.assert(fc.property(fc.array(fieldRewrite([0, 4], true), { minLength: 1, maxLength: 2 }), (ops: ByteOp[]) => check(applyByteOps(good, ops))), { seed: 2722, numRuns: 200 });
    fc.assert(fc.property(jsonOps, (ops) => check(withHeader(applyJsonOps(header, ops)))), { seed: 2723, numRuns: 400 });
    tally.report("decodeSafetensors");
    expect(tally.total).toBeGreaterThanOrEqual(1100);
    expect(tally.counts.get("read")).toBeGreaterThan(0);
  });
});
