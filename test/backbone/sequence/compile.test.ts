import { describe, expect, it } from "vitest";
import { checkPlaceholders, compileSequence, toTrainingExample } from "../../../src/backbone/sequence/compile.ts";
import type { Segment, SequenceDocument } from "../../../src/backbone/sequence/document.ts";
import { mulberry32 } from "../../../src/data/shuffle.ts";
import { allowedIds, maskRows, multi, randomDocument } from "./fixtures.ts";

const v = multi();
const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));

/** <bos> | text 2 3 pad pad | <boi> 2×2 image with row breaks <eoi> | <image>×2 | code ×3 (no markers) | text 5 <eos> */
const MIXED: SequenceDocument = {
  segments: [
    { kind: "special", name: "<bos>" },
    { kind: "text", ids: [2, 3], padTo: 4 },
    { kind: "block", modality: "image", shape: [2, 2], ids: [0, 1, 2, 3], rowBreaks: true, loss: 1 },
    { kind: "placeholder", name: "image", slots: 2, token: "<image>" },
    { kind: "block", modality: "code", shape: [3], ids: [2, 0, 1], markers: false, loss: 0.5 },
    { kind: "text", ids: [5], end: "<eos>", loss: 1 },
  ],
};

describe("compileSequence", () => {
  it("lays out ids, positions, 2-D grid ids, loss weights and placements", () => {
    const c = compileSequence(v, MIXED);
    expect(Array.from(c.ids)).toEqual([10, 2, 3, 1, 1, 11, 18, 19, 13, 20, 21, 13, 12, 16, 16, 32, 30, 31, 5, 17]);
    expect(c.length).toBe(20);
    expect(Array.from(c.positions)).toEqual([...Array(20).keys()]);
    // the image's content starts at s = 6, W = 2: (r, c) → (6 + r, 6 + c), its row breaks → (6 + r, 8)
    const rows = [0, 1, 2, 3, 4, 5, 6, 6, 6, 7, 7, 7, 12, 13, 14, 15, 16, 17, 18, 19];
    const cols = [0, 1, 2, 3, 4, 5, 6, 7, 8, 6, 7, 8, 12, 13, 14, 15, 16, 17, 18, 19];
    expect(Array.from(c.grid)).toEqual(rows.flatMap((r, t) => [r, cols[t]!]));
    // image: 4 codes + 2 breaks + <eoi> share 1 (not <boi>); code block: 3 share 0.5; text: 5 and <eos> share 1; pads nothing
    const w = [0, 0, 0, 0, 0, 0, 1 / 7, 1 / 7, 1 / 7, 1 / 7, 1 / 7, 1 / 7, 1 / 7, 0, 0, 0.5 / 3, 0.5 / 3, 0.5 / 3, 0.5, 0.5];
    expect(Array.from(c.weights)).toEqual(f32(w));
    expect(c.segments).toEqual([
      { kind: "special", start: 0, end: 1, contentStart: 0, contentEnd: 1 },
      { kind: "text", start: 1, end: 5, contentStart: 1, contentEnd: 3 },
      { kind: "block", start: 5, end: 13, contentStart: 6, contentEnd: 12 },
      { kind: "placeholder", start: 13, end: 15, contentStart: 13, contentEnd: 15 },
      { kind: "block", start: 15, end: 18, contentStart: 15, contentEnd: 18 },
      { kind: "text", start: 18, end: 20, contentStart: 18, contentEnd: 19 },
    ]);
    expect(c.placeholders).toEqual([{ name: "image", segment: 3, start: 13, slots: 2 }]);
    expect(c.promptLength).toBe(20);
    expect(c.maskKind).toBe("causal");
  });

  it("holes: −1 ids, forced markers and row breaks, constraints per position, promptLength", () => {
    const c = compileSequence(v, {
      segments: [
        { kind: "special", name: "<bos>" },
        { kind: "text", ids: [2] },
        { kind: "block", modality: "image", shape: [2, 2], rowBreaks: true },
        { kind: "text", maxLength: 3, end: "<eos>" },
      ],
    });
    expect(Array.from(c.ids)).toEqual([10, 2, 11, -1, -1, 13, -1, -1, 13, 12, -1, -1, -1]);
    expect(c.promptLength).toBe(3);
    expect(allowedIds(c.allowedAt(0))).toEqual([10]);
    expect(allowedIds(c.allowedAt(3))).toEqual([18, 19, 20, 21, 22, 23, 24, 25]);
    expect(allowedIds(c.allowedAt(5))).toEqual([13]);
    expect(allowedIds(c.allowedAt(9))).toEqual([12]);
    expect(allowedIds(c.allowedAt(12))).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9, 17]); // text except pad 1, and <eos>
    expect(c.allowedAt(3)).toBe(c.allowedAt(7)); // one cached mask per constraint
    expect(() => c.allowedAt(13)).toThrow("allowedAt: token index 13 out of range [0, 12]");
    // a grid for the hole block too: content from 3, W = 2
    expect(Array.from(c.grid.subarray(6, 18))).toEqual([3, 3, 3, 4, 3, 5, 4, 3, 4, 4, 4, 5]);
  });

  it("causal mask: the lower triangle", () => {
    const c = compileSequence(v, { segments: [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [2, 3] }] });
    expect(c.maskKind).toBe("causal");
    expect(maskRows(c.mask(), 3)).toEqual(["100", "110", "111"]);
    expect(c.mask()).toBe(c.mask()); // built once
  });

  it("prefix mask: the first segments' positions see each other", () => {
    const segments: Segment[] = [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [2, 3] }, { kind: "text", ids: [4] }];
    const c = compileSequence(v, { segments, attention: { prefix: 2 } });
    expect(c.maskKind).toBe("custom");
    expect(c.bidirectional).toEqual([{ start: 0, end: 3 }]);
    expect(maskRows(c.mask(), 4)).toEqual(["1110", "1110", "1110", "1111"]);
    // a one-token prefix is causal
    expect(compileSequence(v, { segments, attention: { prefix: 1 } }).maskKind).toBe("causal");
    expect(maskRows(compileSequence(v, { segments, attention: { prefix: 0 } }).mask(), 4)).toEqual(["1000", "1100", "1110", "1111"]);
  });

  it("block-bidirectional mask: the block's content sees all of itself, causal elsewhere", () => {
    // <bos> <boa> a0 a1 <eoa> 3
    const c = compileSequence(v, {
      segments: [{ kind: "special", name: "<bos>" }, { kind: "block", modality: "audio", shape: [2], ids: [0, 1], attention: "bidirectional" }, { kind: "text", ids: [3] }],
    });
    expect(Array.from(c.ids)).toEqual([10, 14, 26, 27, 15, 3]);
    expect(c.maskKind).toBe("custom");
    expect(maskRows(c.mask(), 6)).toEqual(["100000", "110000", "111100", "111100", "111110", "111111"]);
    // with row breaks, the breaks are content too; together with a prefix
    const d = compileSequence(v, {
      segments: [{ kind: "text", ids: [2] }, { kind: "block", modality: "image", shape: [1, 2], ids: [0, 1], rowBreaks: true, attention: "bidirectional" }],
      attention: { prefix: 1 },
    });
    expect(Array.from(d.ids)).toEqual([2, 11, 18, 19, 13, 12]);
    expect(maskRows(d.mask(), 6)).toEqual(["100000", "110000", "111110", "111110", "111110", "111111"]);
  });

  it("property: each segment's weights sum to its loss, the mask is causal plus the bidirectional spans, grid ids never pass t", () => {
    const rng = mulberry32(99);
    for (let n = 0; n < 300; n++) {
      const doc = randomDocument(rng);
      const c = compileSequence(v, doc);
      const T = c.length;
      doc.segments.forEach((s, i) => {
        const covers = s.kind === "text" ? (s.ids?.length ?? 0) + (s.end ? 1 : 0) : s.kind === "block" ? s.shape.reduce((a, b) => a * b) + (s.rowBreaks ? s.shape[0]! : 0) + (s.markers === false ? 0 : 1) : s.kind === "special" ? 1 : 0;
        const loss = s.kind === "placeholder" ? 0 : (s.loss ?? 0);
        const { start, end } = c.segments[i]!;
        expect(c.weights.subarray(start, end).reduce((a, b) => a + b, 0)).toBeCloseTo(covers > 0 ? loss : 0, 5);
      });
      const spans: [number, number][] = [];
      if (typeof doc.attention === "object" && doc.attention.prefix > 0) spans.push([0, c.segments[doc.attention.prefix - 1]!.end]);
      doc.segments.forEach((s, i) => s.kind === "block" && s.attention === "bidirectional" && spans.push([c.segments[i]!.contentStart, c.segments[i]!.contentEnd]));
      const m = c.mask();
      let wrong = 0;
      for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) wrong += m[i * T + j] !== (j <= i || spans.some(([a, b]) => a <= i && i < b && a <= j && j < b) ? 1 : 0) ? 1 : 0;
      expect(wrong).toBe(0);
      expect(c.maskKind).toBe(spans.some(([a, b]) => b - a > 1) ? "custom" : "causal");
      for (let t = 0; t < T; t++) expect(Math.max(c.grid[2 * t]!, c.grid[2 * t + 1]!)).toBeLessThanOrEqual(t);
    }
  });

  it("errors name the segment and the value", () => {
    const bos: Segment = { kind: "special", name: "<bos>" };
    const img = (s: Partial<Extract<Segment, { kind: "block" }>>): Segment => ({ kind: "block", modality: "image", shape: [2, 2], ids: [0, 1, 2, 3], ...s });
    const cases: [SequenceDocument, string][] = [
      [{ segments: [bos, img({ modality: "video" })] }, 'segment 1 (block "video"): unknown modality "video": expected one of "image", "audio", "code"'],
      [{ segments: [bos, img({ ids: [0, 1, 2] })] }, 'segment 1 (block "image"): 3 ids for shape [2, 2], expected 4'],
      [{ segments: [bos, img({ ids: [0, 1, 8, 3] })] }, 'segment 1 (block "image"): ids[2] = 8 is out of the "image" code range [0, 7]'],
      [{ segments: [img({ shape: [2, 0] })] }, 'segment 0 (block "image"): shape [2,0] must be a non-empty list of positive integers'],
      [{ segments: [img({ shape: [4], rowBreaks: true })] }, 'segment 0 (block "image"): rowBreaks need a 2-D block, got shape [4]'],
      [{ segments: [{ kind: "block", modality: "audio", shape: [1, 2], ids: [0, 1], rowBreaks: true }] }, 'segment 0 (block "audio"): rowBreaks, but modality "audio" has no lineBreak token'],
      [{ segments: [img({ rowBreaks: true, markers: false })] }, 'segment 0 (block "image"): rowBreaks need the block\'s markers'],
      [{ segments: [{ kind: "block", modality: "code", shape: [1], ids: [0] }] }, 'segment 0 (block "code"): modality "code" has no begin/end markers: set markers: false'],
      [{ segments: [bos, { kind: "text", ids: [2, 3, 4], padTo: 2 }] }, "segment 1 (text): text of 3 tokens is longer than its padTo 2"],
      [{ segments: [{ kind: "text", ids: [2, 1] }] }, "segment 0 (text): ids[1] is the pad id 1: use padTo to pad a text"],
      [{ segments: [{ kind: "text", ids: [12] }] }, "segment 0 (text): ids[0] = 12 is not a text id (0..9)"],
      [{ segments: [{ kind: "text", maxLength: 3 }, bos] }, "segment 0 (text): a generated text (ids absent) must be the last segment"],
      [{ segments: [{ kind: "text" }] }, "segment 0 (text): a generated text needs maxLength, a positive integer, got undefined"],
      [{ segments: [{ kind: "text", maxLength: 2, padTo: 4 }] }, "segment 0 (text): padTo 4 applies to given text"],
      [{ segments: [{ kind: "text", ids: [2], maxLength: 2 }] }, "segment 0 (text): maxLength 2 applies to a generated text"],
      [{ segments: [{ kind: "text", ids: [2], end: "<end>" }] }, 'segment 0 (text): unknown special "<end>"'],
      [{ segments: [bos, { kind: "special", name: "<boi>" }] }, 'segment 1 (special "<boi>"): "<boi>" is the begin marker of "image": write a block segment'],
      [{ segments: [{ kind: "special", name: "<image>" }] }, 'segment 0 (special "<image>"): "<image>" is a placeholder token: write a placeholder segment'],
      [{ segments: [bos, { kind: "placeholder", name: "image", slots: 4, token: "<eos>" }] }, 'segment 1 (placeholder "image"): token "<eos>" is not a placeholder token of the vocabulary ("<image>")'],
      [{ segments: [{ kind: "placeholder", name: "image", slots: 0, token: "<image>" }] }, 'segment 0 (placeholder "image"): slots 0 must be a positive integer'],
      [{ segments: [{ kind: "placeholder", name: "image", slots: 2, token: "<image>", loss: 1 } as Segment] }, 'segment 0 (placeholder "image"): placeholders take no cross-entropy loss (their slots hold continuous embeddings), got loss 1'],
      [{ segments: [{ kind: "special", name: "<bos>", loss: -1 }] }, 'segment 0 (special "<bos>"): loss -1 must be a finite number ≥ 0'],
      [{ segments: [bos, bos], attention: { prefix: 3 } }, "attention prefix 3 is larger than the number of segments (2)"],
      [{ segments: [bos], attention: { prefix: -1 } }, 'document attention {"prefix":-1} must be "causal"'],
      [{ segments: [img({ attention: "full" as "causal" })] }, 'segment 0 (block "image"): attention "full" must be "causal" or "bidirectional"'],
      [{ segments: [{ kind: "video" } as unknown as Segment] }, 'segment 0: unknown kind "video"'],
    ];
    for (const [doc, message] of cases) expect(() => compileSequence(v, doc), message).toThrow(message);
  });

  it("contextLength: names the segment that crosses it", () => {
    const doc: SequenceDocument = { segments: [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [2, 3] }, { kind: "block", modality: "audio", shape: [3], ids: [0, 1, 2] }] };
    expect(compileSequence(v, doc, { contextLength: 8 }).length).toBe(8);
    expect(() => compileSequence(v, doc, { contextLength: 7 })).toThrow('segment 2 (block "audio") covers tokens 3..7, past the context length of 7');
    expect(() => compileSequence(v, doc, { contextLength: 0 })).toThrow("contextLength 0 must be a positive integer");
  });
});

describe("toTrainingExample", () => {
  it("shifts ids into inputs/targets, weights of the targets, padded to length", () => {
    // <bos> 2 <boa> a1 a2 <eoa>, loss 1 on a1 a2 <eoa>
    const c = compileSequence(v, { segments: [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [2] }, { kind: "block", modality: "audio", shape: [2], ids: [1, 2], loss: 1 }] });
    const e = toTrainingExample(c, 7, v.padId);
    expect(Array.from(e.inputs)).toEqual([10, 2, 14, 27, 28, 1, 1]);
    expect(Array.from(e.targets)).toEqual([2, 14, 27, 28, 15, 1, 1]);
    expect(Array.from(e.weights)).toEqual(f32([0, 0, 1 / 3, 1 / 3, 1 / 3, 0, 0]));
    expect(Array.from(toTrainingExample(c, 5, 0).targets)).toEqual([2, 14, 27, 28, 15]);
    expect(() => toTrainingExample(c, 4, 0)).toThrow("toTrainingExample: sequence of 6 tokens has 5 targets, more than the length 4");
  });

  it("refuses holes", () => {
    const c = compileSequence(v, { segments: [{ kind: "special", name: "<bos>" }, { kind: "block", modality: "audio", shape: [2] }] });
    expect(() => toTrainingExample(c, 8, 0)).toThrow("toTrainingExample: token 2 is a hole (to be generated)");
  });
});

describe("checkPlaceholders", () => {
  const doc = (slots: number[]): SequenceDocument => ({
    segments: [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [2] }, ...slots.map((n): Segment => ({ kind: "placeholder", name: "image", slots: n, token: "<image>" }))],
  });

  it("accepts matching rows, rejects others naming the slots and the rows", () => {
    const one = compileSequence(v, doc([576]));
    expect(() => checkPlaceholders(one, { image: 576 })).not.toThrow();
    expect(() => checkPlaceholders(one, { image: 256 })).toThrow('placeholder "image" at segment 2 has 576 slots, but 256 embeddings were given');
    expect(() => checkPlaceholders(one, {})).toThrow('placeholder "image" at segment 2 has 576 slots, but no embeddings were given');
    expect(() => checkPlaceholders(one, { image: 576, audio: 10 })).toThrow('embeddings were given for "audio", but the sequence has no placeholder named "audio" (placeholders: "image")');
    const two = compileSequence(v, { segments: [...doc([4]).segments, { kind: "text", ids: [3] }, ...doc([6]).segments.slice(2)] });
    expect(() => checkPlaceholders(two, { image: 10 })).not.toThrow();
    expect(() => checkPlaceholders(two, { image: 4 })).toThrow('placeholders "image" at segments 2, 4 have 4 + 6 = 10 slots, but 4 embeddings were given');
    expect(() => checkPlaceholders(compileSequence(v, doc([])), { image: 1 })).toThrow("(placeholders: none)");
  });
});
