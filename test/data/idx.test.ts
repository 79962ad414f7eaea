import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { loadIdxImageSet, readIdx, writeIdx } from "../../src/data/idx.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-idx-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Hand-built IDX bytes: magic 00 00, dtype code, ndim, big-endian dims, then `body`. */
const idx = (code: number, dims: number[], body: number[]) => {
  const head = [0, 0, code, dims.length, ...dims.flatMap((d) => [(d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255])];
  return Uint8Array.from([...head, ...body]);
};

describe("readIdx / writeIdx", () => {
  it("writes the documented ubyte layout", () => {
    expect(Array.from(writeIdx([2, 3], Uint8Array.from([1, 2, 3, 4, 5, 6])))).toEqual([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]);
  });

  it("round-trips ubyte data, plain and gzipped", () => {
    const data = Uint8Array.from({ length: 2 * 3 * 5 }, (_, i) => (i * 37) % 256);
    const bytes = writeIdx([2, 3, 5], data);
    for (const b of [bytes, gzipSync(bytes)]) {
      const a = readIdx(b);
      expect(a.dtype).toBe("uint8");
      expect(a.shape).toEqual([2, 3, 5]);
      expect(Array.from(a.data)).toEqual(Array.from(data));
    }
  });

  it("decodes every big-endian dtype to golden values", () => {
    expect(Array.from(readIdx(idx(0x09, [2], [0xff, 0x05])).data)).toEqual([-1, 5]);
    expect(Array.from(readIdx(idx(0x0b, [2], [0xff, 0xfe, 0x01, 0x02])).data)).toEqual([-2, 258]);
    expect(Array.from(readIdx(idx(0x0c, [1], [0x80, 0, 0, 1])).data)).toEqual([-2147483647]);
    expect(Array.from(readIdx(idx(0x0d, [1], [0x3f, 0xc0, 0, 0])).data)).toEqual([1.5]);
    expect(Array.from(readIdx(idx(0x0e, [1], [0xc0, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18])).data)).toEqual([-Math.PI]);
    const a = readIdx(idx(0x0b, [1, 2], [0, 7, 0, 9]));
    expect([a.dtype, a.shape, a.data instanceof Int16Array]).toEqual(["int16", [1, 2], true]);
  });

  it("names the problem: bad magic, unknown dtype, truncated, trailing bytes", () => {
    expect(() => readIdx(Uint8Array.from([0x50, 0x4b, 8, 1, 0, 0, 0, 0]))).toThrow("bad magic number, expected it to start with 0x00 0x00 (or gzip's 0x1f 0x8b), got 0x50 0x4b");
    expect(() => readIdx(idx(0x0a, [1], [0]))).toThrow("unknown dtype code 0x0a, expected one of 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32, 0x0e float64");
    expect(() => readIdx(idx(0x0c, [2, 3], new Array(10).fill(0)))).toThrow("truncated data for shape [2, 3] int32, expected 36 bytes (12 header + 6×4), got 22");
    expect(() => readIdx(Uint8Array.from([0, 0, 8, 3, 0, 0]))).toThrow("truncated header, expected 16 bytes for 3 dims, got 6");
    expect(() => readIdx(idx(0x08, [2], [1, 2, 3]))).toThrow("1 trailing bytes after the data for shape [2] uint8, expected 10 bytes in all, got 11");
    expect(() => writeIdx([2, 2], new Uint8Array(3))).toThrow("shape [2, 2] needs 4 values, got 3");
  });
});

describe("loadIdxImageSet on a small IDX file made by the test", () => {
  // 3 images of 2×4; image i has pixel j = 10·i + j, scaled by 1/255.
  const pixels = Uint8Array.from({ length: 3 * 8 }, (_, k) => 10 * Math.floor(k / 8) + (k % 8));
  pixels[23] = 255;
  const imagesPath = join(dir, "images-idx3-ubyte.gz");
  const labelsPath = join(dir, "labels-idx1-ubyte");
  writeFileSync(imagesPath, gzipSync(writeIdx([3, 2, 4], pixels)));
  writeFileSync(labelsPath, writeIdx([3], Uint8Array.from([7, 0, 9])));

  it("reads images scaled to [0, 1] and labels", () => {
    const set = loadIdxImageSet(imagesPath, labelsPath);
    expect([set.n, set.height, set.width]).toEqual([3, 2, 4]);
    expect(Array.from(set.labels)).toEqual([7, 0, 9]);
    expect(set.images).toBeInstanceOf(Float32Array);
    expect(set.images[8 + 3]).toBeCloseTo(13 / 255, 7);
    expect(set.images[23]).toBe(1);
    expect(set.images[0]).toBe(0);
  });

  it("rejects a label count that differs from the image count", () => {
    const fewer = join(dir, "labels-2");
    writeFileSync(fewer, writeIdx([2], Uint8Array.from([1, 2])));
    expect(() => loadIdxImageSet(imagesPath, fewer)).toThrow(`IDX image/label count mismatch: ${imagesPath} has 3 images but ${fewer} has 2 labels`);
  });

  it("rejects images that are not [N, H, W] ubyte", () => {
    expect(() => loadIdxImageSet(labelsPath, labelsPath)).toThrow(`${labelsPath}: expected uint8 images of shape [N, H, W], got uint8 [3]`);
  });
});

describe("readIdx bounds", () => {
  it("stops a gzip bomb at maxBytes instead of expanding it, and names corrupt gzip data", async () => {
    const { gzipSync } = await import("node:zlib");
    const { readIdx } = await import("../../src/data/idx.ts");
    const bomb = gzipSync(Buffer.alloc(64 * 2 ** 20)); // 64 MiB of zeros in ~65 KB
    const t0 = performance.now();
    expect(() => readIdx(bomb, { maxBytes: 2 ** 20 })).toThrow("IDX: the gzip data expands past 1048576 bytes (maxBytes)");
    expect(performance.now() - t0).toBeLessThan(2000); // a bound: it stops after 1 MiB
    expect(() => readIdx(Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(20, 7)]))).toThrow("IDX: corrupt gzip data");
  });
});
