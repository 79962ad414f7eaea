import { describe, expect, it } from "vitest";
import { CAPTION_TEMPLATES, DIGIT_WORDS, allCaptions, caption, parseDigitFromCaption, randomCaption } from "../../src/data/captions.ts";
import { mulberry32 } from "../../src/data/shuffle.ts";

const digits = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

describe("captions", () => {
  it("has at least 4 templates mixing numerals and words", () => {
    expect(CAPTION_TEMPLATES.length).toBeGreaterThanOrEqual(4);
    expect(CAPTION_TEMPLATES.some((t) => t.includes("{n}"))).toBe(true);
    expect(CAPTION_TEMPLATES.some((t) => t.includes("{w}"))).toBe(true);
    expect(DIGIT_WORDS).toHaveLength(10);
  });

  it("fills templates to golden strings, with the right article", () => {
    expect(caption(7, 0)).toBe("a handwritten 7");
    expect(caption(7, 1)).toBe("the digit seven");
    expect(caption(3, 2)).toBe("a picture of a 3");
    expect(caption(8, 2)).toBe("a picture of an 8");
    expect(caption(8, 6)).toBe("an eight, written by hand");
    expect(caption(0, 3)).toBe("an image of the number zero");
  });

  it.each(CAPTION_TEMPLATES.map((t, i) => [i, t] as const))("template %i (%s) parses back to its label for every digit", (t) => {
    for (const d of digits) {
      const text = caption(d, t);
      expect(text).not.toMatch(/[{}]/);
      expect(parseDigitFromCaption(text)).toBe(d);
    }
  });

  it("allCaptions is every template × label, all distinct", () => {
    const all = allCaptions();
    expect(all).toHaveLength(CAPTION_TEMPLATES.length * 10);
    expect(new Set(all).size).toBe(all.length);
    expect(all[10 + 4]).toBe(caption(4, 1));
  });

  it("randomCaption is reproducible, uses several templates, and keeps the label", () => {
    const draw = (seed: number) => {
      const rng = mulberry32(seed);
      return Array.from({ length: 50 }, () => randomCaption(5, rng));
    };
    const a = draw(1);
    expect(draw(1)).toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(3);
    expect(a.every((c) => parseDigitFromCaption(c) === 5)).toBe(true);
    expect(() => randomCaption(5, () => 1)).toThrow("rng must return a float in [0, 1), got 1");
  });

  it("parseDigitFromCaption: words, numerals, case; null for none, several, or look-alikes", () => {
    expect(parseDigitFromCaption("A SEVEN!")).toBe(7);
    expect(parseDigitFromCaption("digit:4.")).toBe(4);
    expect(parseDigitFromCaption("two, yes 2")).toBe(2);
    expect(parseDigitFromCaption("a picture of a cat")).toBeNull();
    expect(parseDigitFromCaption("")).toBeNull();
    expect(parseDigitFromCaption("someone drew none of them")).toBeNull();
    expect(parseDigitFromCaption("the number 17")).toBeNull();
    expect(parseDigitFromCaption("a 3 or a five")).toBeNull();
  });

  it("rejects bad labels and template indices, naming them", () => {
    expect(() => caption(10, 0)).toThrow("label must be an integer digit 0..9, got 10");
    expect(() => caption(2.5, 0)).toThrow("got 2.5");
    expect(() => caption(1, CAPTION_TEMPLATES.length)).toThrow(`templateIndex must be an integer in [0, ${CAPTION_TEMPLATES.length}), got ${CAPTION_TEMPLATES.length}`);
  });
});
