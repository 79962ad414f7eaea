import { describe, expect, it } from "vitest";
import { encodeGrayGif, tileGray } from "../../src/generate/gif.ts";

/** Walks a GIF's blocks (GIF89a spec §17–§27): screen size, loop count, and per frame its size and delay. */
function parseGif(b: Uint8Array) {
  const u16 = (i: number) => b[i]! | (b[i + 1]! << 8);
  const header = String.fromCharCode(...b.subarray(0, 6));
  const screen = { width: u16(6), height: u16(8) };
  let i = 13 + (b[10]! & 0x80 ? 3 * 2 ** ((b[10]! & 7) + 1) : 0);
  const frames: { width: number; height: number; delay: number }[] = [];
  let delay = 0;
  let loop: number | undefined;
  const skipBlocks = () => {
    while (b[i] !== 0) i += b[i]! + 1;
    i++;
  };
  for (;;) {
    if (b[i] === 0x3b) break;
    if (b[i] === 0x21) {
      const label = b[i + 1]!;
      if (label === 0xf9) delay = u16(i + 4) * 10;
      if (label === 0xff && String.fromCharCode(...b.subarray(i + 3, i + 14)) === "NETSCAPE2.0") loop = u16(i + 16);
      i += 2;
      skipBlocks();
    } else if (b[i] === 0x2c) {
      frames.push({ width: u16(i + 5), height: u16(i + 7), delay });
      const flags = b[i + 9]!;
      i += 10 + (flags & 0x80 ? 3 * 2 ** ((flags & 7) + 1) : 0) + 1; // descriptor, local table, LZW code size
      skipBlocks();
    } else throw new Error(`unexpected block 0x${b[i]!.toString(16)} at ${i}`);
  }
  return { header, screen, frames, loop, end: i + 1 };
}

describe("animated GIF of the decoding steps", () => {
  it("one frame per step, enlarged, the last one held; a well-formed GIF89a", () => {
    const frames = [0, 0.5, 1].map((v) => new Float32Array(6).fill(v));
    const bytes = encodeGrayGif(frames, 2, 3, { delay: 100, hold: 3, scale: 5 });
    const gif = parseGif(bytes);
    expect(gif.header).toBe("GIF89a");
    expect(gif.screen).toEqual({ width: 15, height: 10 });
    expect(gif.frames).toEqual([{ width: 15, height: 10, delay: 100 }, { width: 15, height: 10, delay: 100 }, { width: 15, height: 10, delay: 300 }]);
    expect(gif.loop).toBe(0);
    expect(gif.end).toBe(bytes.length);
  });

  it("tiles images into a grid, empty cells black", () => {
    const imgs = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]); // three 2×2 images
    const { pixels, height, width } = tileGray(imgs, 3, { height: 2, width: 2, cols: 2 });
    expect([height, width]).toEqual([4, 4]);
    expect(Array.from(pixels)).toEqual([1, 2, 5, 6, 3, 4, 7, 8, 9, 10, 0, 0, 11, 12, 0, 0]);
    expect(() => encodeGrayGif([new Float32Array(5)], 2, 3)).toThrow("encodeGrayGif: frame 0 has 5 pixels, expected 2×3 = 6");
  });
});
