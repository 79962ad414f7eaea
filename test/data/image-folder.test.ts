import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listImageFolder, readImageFile, readImageFolder } from "../../src/data/image-folder.ts";
import { InputError } from "../../src/io/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-images-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A w×h image whose pixel (x, y) channel c is (x·16 + y·4 + c·60) mod 256: every value known. */
const pattern = (w: number, h: number, c: number) => Buffer.from(Uint8Array.from({ length: w * h * c }, (_, i) => (((i / c) | 0) % w * 16 + Math.floor(i / c / w) * 4 + (i % c) * 60) % 256));
const rgb = (w: number, h: number) => sharp(pattern(w, h, 3), { raw: { width: w, height: h, channels: 3 } });
const gray = (w: number, h: number) => sharp(pattern(w, h, 1), { raw: { width: w, height: h, channels: 1 } }).toColourspace("b-w");

beforeAll(async () => {
  mkdirSync(join(dir, "classes", "cats"), { recursive: true });
  mkdirSync(join(dir, "classes", "dogs"), { recursive: true });
  await rgb(8, 8).png().toFile(join(dir, "classes", "cats", "a.png"));
  await rgb(8, 8).png().toFile(join(dir, "classes", "dogs", "b.png"));
  await rgb(8, 8).jpeg({ quality: 95 }).toFile(join(dir, "classes", "dogs", "c.JPG"));
  writeFileSync(join(dir, "classes", "notes.txt"), "not an image");
  await gray(16, 8).png().toFile(join(dir, "gray.png"));
  await rgb(8, 8).ensureAlpha().png().toFile(join(dir, "alpha.png"));
  const jpeg = await rgb(64, 64).jpeg().toBuffer();
  writeFileSync(join(dir, "cut.jpg"), jpeg.subarray(0, jpeg.length / 2));
});

describe("image folders", () => {
  it("lists PNG/JPEG files with subfolders as classes, in sorted order", () => {
    const l = listImageFolder(join(dir, "classes"));
    expect(l.classes).toEqual(["cats", "dogs"]);
    expect(l.files.map((f) => f.split("/").slice(-2).join("/"))).toEqual(["cats/a.png", "dogs/b.png", "dogs/c.JPG"]);
    expect(l.labels).toEqual([0, 1, 1]);
  });

  it("reads exact values channels-first, dropping alpha", async () => {
    const px = await readImageFile(join(dir, "classes", "cats", "a.png"), { height: 8, width: 8, channels: 3 });
    const raw = pattern(8, 8, 3);
    for (const [c, y, x] of [[0, 0, 0], [1, 3, 5], [2, 7, 7]] as const) expect(px[c * 64 + y * 8 + x]).toBeCloseTo(raw[(y * 8 + x) * 3 + c]! / 255, 6);
    expect(await readImageFile(join(dir, "alpha.png"), { height: 8, width: 8, channels: 3 })).toEqual(px);
  });

  it("resizes to the tokenizer's size", async () => {
    const set = await readImageFolder(join(dir, "classes"), { height: 4, width: 4, channels: 3 });
    expect(set.n).toBe(3);
    expect(set.images.length).toBe(3 * 3 * 16);
    expect(Array.from(set.labels)).toEqual([0, 1, 1]);
    const g = await readImageFile(join(dir, "gray.png"), { height: 4, width: 8, channels: 1 });
    expect(g.length).toBe(32);
    // the pattern grows left to right: so does its 2× downscale
    for (let x = 1; x < 8; x++) expect(g[x]!).toBeGreaterThan(g[x - 1]!);
  });

  it("refuses, naming the file: a channel count the tokenizer was not made for, a cut-off or fake image, an empty folder", async () => {
    await expect(readImageFile(join(dir, "gray.png"), { height: 8, width: 8, channels: 3 })).rejects.toThrow(/gray\.png is grayscale \(1 channel\); the tokenizer takes colour \(3 channels\) images/);
    await expect(readImageFile(join(dir, "alpha.png"), { height: 8, width: 8, channels: 1 })).rejects.toThrow(/alpha\.png is colour \(3 channels\) \(4 with alpha\); the tokenizer takes grayscale/);
    await expect(readImageFile(join(dir, "cut.jpg"), { height: 8, width: 8, channels: 3 })).rejects.toThrow(/cut\.jpg is not a readable PNG\/JPEG image/);
    await expect(readImageFile(join(dir, "classes", "notes.txt"), { height: 8, width: 8, channels: 3 })).rejects.toThrow(InputError);
    mkdirSync(join(dir, "empty"));
    expect(() => listImageFolder(join(dir, "empty"))).toThrow(/empty holds no \.png\/\.jpg\/\.jpeg files/);
    expect(() => listImageFolder(join(dir, "gray.png"))).toThrow(/is not a folder/);
  });
});
