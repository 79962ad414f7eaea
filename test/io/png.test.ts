import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { afterAll, describe, expect, it } from "vitest";
import { encodeGrayPng, readGrayGrid, readGrayImage, writeGrayGrid } from "../../src/io/png.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-png-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 28×28 image with a different value at every pixel, covering [0, 1]. */
const ramp = (offset = 0) => Float32Array.from({ length: 784 }, (_, i) => ((i * 7 + offset) % 256) / 255 + 0.001 * Math.sin(i));
const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

describe("png", () => {
  it("encode → read round-trips a single image to within 1/255, clamping out-of-range values", () => {
    const img = ramp();
    img[0] = -0.3;
    img[1] = 1.7;
    const path = join(dir, "one.png");
    writeFileSync(path, encodeGrayPng(img, 28, 28));
    const back = readGrayImage(path);
    expect(back.length).toBe(784);
    let worst = 0;
    for (let i = 0; i < 784; i++) worst = Math.max(worst, Math.abs(back[i]! - clamp01(img[i]!)));
    expect(worst).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
    expect([back[0], back[1]]).toEqual([0, 1]);
    const meta = PNG.sync.read(readFileSync(path));
    expect([meta.colorType, meta.depth, meta.width, meta.height]).toEqual([0, 8, 28, 28]);
  });

  it("writes a grid of the right size with each image upscaled in its cell", () => {
    const count = 5;
    const images = new Float32Array(count * 784);
    for (let k = 0; k < count; k++) images.set(ramp(40 * k), k * 784);
    const path = join(dir, "sub", "grid.png");
    const size = writeGrayGrid(path, images, { height: 28, width: 28, cols: 3, pad: 2, scale: 2 });
    // 3 cols × 56 px + 4 gaps × 2 px; 2 rows × 56 px + 3 gaps × 2 px.
    expect(size).toEqual({ width: 176, height: 118 });
    const grid = readGrayImage(path, { height: 118, width: 176 });
    const at = (x: number, y: number) => grid[y * 176 + x]!;
    // Image 4 sits in row 1, col 1: its top-left corner is at (2 + 58, 2 + 58).
    const [x0, y0] = [60, 60];
    for (const [py, px] of [[0, 0], [5, 9], [27, 27], [13, 20]] as const) {
      const want = clamp01(images[4 * 784 + py * 28 + px]!);
      for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) expect(Math.abs(at(x0 + 2 * px + dx!, y0 + 2 * py + dy!) - want)).toBeLessThan(1 / 255);
    }
    expect(at(0, 0)).toBeCloseTo(128 / 255, 6); // pad
    expect(at(59, 70)).toBeCloseTo(128 / 255, 6); // gap between cols 0 and 1
    expect(at(x0 + 58 + 10, y0 + 10)).toBeCloseTo(128 / 255, 6); // empty 6th cell
    expect(readdirSync(join(dir, "sub"))).toEqual(["grid.png"]); // temp file renamed away
  });

  it("readGrayGrid gives back every image of a grid to within 1/255, and refuses the wrong layout", () => {
    const count = 7;
    const images = new Float32Array(count * 784);
    for (let k = 0; k < count; k++) images.set(ramp(31 * k), k * 784);
    const path = join(dir, "back.png");
    writeGrayGrid(path, images, { height: 28, width: 28, cols: 3 });
    const back = readGrayGrid(path, { height: 28, width: 28, cols: 3, count });
    expect(back.length).toBe(count * 784);
    back.forEach((v, i) => expect(Math.abs(v - clamp01(images[i]!))).toBeLessThan(1 / 255));
    expect(() => readGrayGrid(path, { height: 28, width: 28, cols: 4, count })).toThrow(/is 176×176 \(width×height\), expected 234×118/);
  });

  it("reads colour PNGs as luminance composited over black", () => {
    const png = new PNG({ width: 2, height: 1 });
    png.data = Buffer.from([255, 0, 0, 255, /* */ 255, 255, 255, 128]);
    const path = join(dir, "rgba.png");
    writeFileSync(path, PNG.sync.write(png));
    const px = readGrayImage(path, { height: 1, width: 2 });
    expect(px[0]).toBeCloseTo(0.299, 5);
    expect(px[1]).toBeCloseTo(128 / 255, 5);
  });

  it("names the file and both sizes when the image is the wrong size", () => {
    const path = join(dir, "image.png");
    writeFileSync(path, encodeGrayPng(new Float32Array(30 * 32), 30, 32));
    expect(() => readGrayImage(path)).toThrow(`${path} is 32×30 (width×height), expected 28×28`);
  });

  it("rejects non-PNG files and mismatched buffers", () => {
    const path = join(dir, "not.png");
    writeFileSync(path, "hello");
    expect(() => readGrayImage(path)).toThrow(`${path} is not a PNG file (no PNG signature)`);
    expect(() => encodeGrayPng(new Float32Array(10), 28, 28)).toThrow("image has 10 values, expected 28×28 = 784");
    expect(() => writeGrayGrid(join(dir, "g.png"), new Float32Array(784), { height: 28, width: 28, count: 2 })).toThrow("count must be an integer in [1, 1] for 784 values of 28×28 images, got 2");
    expect(() => writeGrayGrid(join(dir, "g.png"), new Float32Array(784), { height: 28, width: 28, scale: 0 })).toThrow("scale must be an integer ≥ 1, got 0");
  });
});

describe("readGrayImage refuses hostile files before decoding them", () => {
  /** A valid 28×28 PNG with its IHDR width and height rewritten (the CRC is left stale: the header check comes first). */
  const declaring = (w: number, h: number) => {
    const png = Buffer.from(encodeGrayPng(ramp(), 28, 28));
    png.writeUInt32BE(w, 16);
    png.writeUInt32BE(h, 20);
    return png;
  };

  it.each([
    ["2^31−1 × 2^31−1 (a 68-byte crash for zlib)", 2 ** 31 - 1, 2 ** 31 - 1, "is 2147483647×2147483647 (width×height), expected 28×28"],
    ["20000 × 20000", 20000, 20000, "is 20000×20000 (width×height), expected 28×28"],
    ["29 × 28", 29, 28, "is 29×28 (width×height), expected 28×28"],
  ])("a PNG declaring %s", (_, w, h, message) => {
    const path = join(dir, `declares-${w}x${h}.png`);
    writeFileSync(path, declaring(w, h).subarray(0, 68));
    const t0 = performance.now();
    expect(() => readGrayImage(path)).toThrow(`${path} ${message}`);
    expect(performance.now() - t0).toBeLessThan(2000); // a bound, not a benchmark: decoding first took 45 s
  });

  it("devices, folders, oversized, non-PNG and truncated files", () => {
    expect(() => readGrayImage("/dev/zero")).toThrow("/dev/zero is not a regular file (a device or special file); expected a PNG file");
    expect(() => readGrayImage(dir)).toThrow(`${dir} is not a regular file (a folder)`);
    const big = join(dir, "big.png");
    writeFileSync(big, Buffer.concat([declaring(28, 28), Buffer.alloc(200_000)]));
    expect(() => readGrayImage(big)).toThrow(`${big} is 200`);
    const text = join(dir, "text.png");
    writeFileSync(text, "not a png at all, just some text that is long enough");
    expect(() => readGrayImage(text)).toThrow(`${text} is not a PNG file (no PNG signature)`);
    const truncated = join(dir, "truncated.png");
    const whole = Buffer.from(encodeGrayPng(ramp(), 28, 28));
    writeFileSync(truncated, whole.subarray(0, whole.length - 20));
    expect(() => readGrayImage(truncated)).toThrow(`${truncated} could not be read as a PNG`);
    expect(() => readGrayImage(join(dir, "missing.png"))).toThrow("missing.png could not be read: no such file");
  });
});
