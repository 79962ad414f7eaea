import { describe, expect, it } from "vitest";
import { checkPlaceholders, compileSequence, toTrainingExample } from "../../../src/backbone/sequence/compile.ts";
import { canonicalDocument } from "../../../src/backbone/sequence/document.ts";
import { parseSequence } from "../../../src/backbone/sequence/parse.ts";
import {
  chameleonDocument,
  DEFAULT_PAIRED,
  emu3Document,
  imageToTextDocument,
  janusDocument,
  llavaDocument,
  maxCaptionTokens,
  textToImageDocument,
} from "../../../src/backbone/sequence/presets.ts";
import { JointVocab } from "../../../src/backbone/sequence/vocab.ts";
import { FROZEN_I2T_CAPTION, FROZEN_IMAGE, FROZEN_T2I_CAPTION, LEGACY_VOCAB } from "./fixtures.ts";

const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));
const ids = (v: JointVocab, doc: Parameters<typeof compileSequence>[1]) => Array.from(compileSequence(v, doc).ids);

describe("presets", () => {
  it("Chameleon: image blocks between <racm3:break> … <eoss> inside the text stream", () => {
    // text 0..7 | <bos> 8 <racm3:break> 9 <eoss> 10 <eos> 11 | image 12..27
    const v = JointVocab.build({ text: { size: 8, pad: 0 }, specials: ["<bos>", "<racm3:break>", "<eoss>", "<eos>"], modalities: [{ name: "image", size: 16, begin: "<racm3:break>", end: "<eoss>" }] });
    const doc = chameleonDocument([[3, 4], { image: [0, 1, 2, 3] }, [5], { image: [15, 14, 13, 12] }], { shape: [2, 2], eos: "<eos>", loss: { text: 1, image: 1 } });
    expect(ids(v, doc)).toEqual([8, 3, 4, 9, 12, 13, 14, 15, 10, 5, 9, 27, 26, 25, 24, 10, 11]);
    // each part shares its own total: text 3 4 → 1/2 each; an image's 4 codes + <eoss> → 1/5 each
    const f = 1 / 5;
    expect(Array.from(compileSequence(v, doc).weights)).toEqual(f32([0, 0.5, 0.5, 0, f, f, f, f, f, 1, 0, f, f, f, f, f, 0]));
    expect(parseSequence(v, compileSequence(v, doc).ids, { blockShapes: { image: [2, 2] } })).toEqual(canonicalDocument(doc, { blockShapes: { image: [2, 2] } }));
    // an image part without codes is the generation prompt
    const prompt = compileSequence(v, chameleonDocument([[3, 4], {}], { shape: [2, 2] }));
    expect(Array.from(prompt.ids)).toEqual([8, 3, 4, 9, -1, -1, -1, -1, 10]);
    expect(prompt.promptLength).toBe(4);
    expect(compileSequence(v, chameleonDocument([{}])).length).toBe(1 + 1 + 1024 + 1); // the paper's 32×32 grid
  });

  it("Emu3: [BOS] caption [SOV] meta [SOT] rows each ended by [EOL] [EOV] [EOS]", () => {
    // text 0..7 | <bos> 8 <eos> 9 [SOV] 10 [SOT] 11 [EOV] 12 [EOL] 13 | image 14..29
    const v = JointVocab.build({
      text: { size: 8, pad: 0 },
      specials: ["<bos>", "<eos>", "[SOV]", "[SOT]", "[EOV]", "[EOL]"],
      modalities: [{ name: "image", size: 16, begin: "[SOT]", end: "[EOV]", lineBreak: "[EOL]" }],
    });
    const doc = emu3Document([3, 4], [6, 7], { shape: [2, 3], ids: [0, 1, 2, 3, 4, 5] });
    const c = compileSequence(v, doc);
    expect(Array.from(c.ids)).toEqual([8, 3, 4, 10, 6, 7, 11, 14, 15, 16, 13, 17, 18, 19, 13, 12, 9]);
    expect(c.segments[4]!.contentEnd - c.segments[4]!.contentStart).toBe(2 * (3 + 1)); // H·(W+1) between [SOT] and [EOV]
    expect(parseSequence(v, c.ids)).toEqual(canonicalDocument(doc));
    expect(() => emu3Document([], [], { shape: [6] })).toThrow("emu3Document: an image is a 2-D grid [H, W], got shape [6]");
    expect(Array.from(compileSequence(v, emu3Document([3], [6], { shape: [1, 2] })).ids)).toEqual([8, 3, 10, 6, 11, -1, -1, 13, 12, 9]);
  });

  it("LLaVA: one <image> expanded to N continuous slots, loss on the answer only", () => {
    // text 0..7 | <bos> 8 <eos> 9 <image> 10
    const v = JointVocab.build({ text: { size: 8, pad: 0 }, specials: ["<bos>", "<eos>", "<image>"], modalities: [], placeholders: ["<image>"] });
    const c = compileSequence(v, llavaDocument([2, 3], [4], [5, 6], { slots: 4 }));
    expect(Array.from(c.ids)).toEqual([8, 2, 3, 10, 10, 10, 10, 4, 5, 6, 9]);
    expect(c.placeholders).toEqual([{ name: "image", segment: 2, start: 3, slots: 4 }]);
    const third = 1 / 3;
    expect(Array.from(c.weights)).toEqual(f32([0, 0, 0, 0, 0, 0, 0, 0, third, third, third]));
    expect(() => checkPlaceholders(c, { image: 4 })).not.toThrow();
    expect(() => checkPlaceholders(compileSequence(v, llavaDocument([2], [], [5])), { image: 256 })).toThrow('placeholder "image" at segment 2 has 576 slots, but 256 embeddings were given');
    const gen = compileSequence(v, llavaDocument([2], [], { maxLength: 3 }, { slots: 2 }));
    expect(Array.from(gen.ids)).toEqual([8, 2, 10, 10, -1, -1, -1]);
    expect(gen.promptLength).toBe(4);
    expect(parseSequence(v, c.ids)).toEqual(canonicalDocument(llavaDocument([2, 3], [4], [5, 6], { slots: 4 })));
  });

  it("Janus: fixed-length image blocks between <begin_of_image> … <end_of_image>", () => {
    // text 0..7 | <bos> 8 <begin_of_image> 9 <end_of_image> 10 | image 11..26
    const v = JointVocab.build({ text: { size: 8, pad: 0 }, specials: ["<bos>", "<begin_of_image>", "<end_of_image>"], modalities: [{ name: "image", size: 16, begin: "<begin_of_image>", end: "<end_of_image>" }] });
    expect(ids(v, janusDocument([3, 4, 5], [0, 1, 2, 3], { shape: [2, 2] }))).toEqual([8, 3, 4, 5, 9, 11, 12, 13, 14, 10]);
    expect(ids(v, janusDocument([3], undefined, { shape: [2, 2] }))).toEqual([8, 3, 9, -1, -1, -1, -1, 10]);
    expect(() => janusDocument([3], [0, 1, 2], { shape: [2, 2] })).toThrow("janusDocument: Janus images have a fixed length of 4 codes (shape [2, 2]), got 3");
    expect(() => janusDocument([3], new Array<number>(500).fill(0))).toThrow("fixed length of 576 codes (shape [24, 24]), got 500");
  });

  it("paired layout: prompts for generation are the training sequences' prefixes", () => {
    // text 0..39 (pad 0) | <bos> 40 <boi> 41 <eoi> 42 <eos> 43 | image 44..299
    const v = JointVocab.build({ text: { size: 40, pad: 0 }, specials: ["<bos>", "<boi>", "<eoi>", "<eos>"], modalities: [{ name: "image", size: 256, begin: "<boi>", end: "<eoi>" }] });
    const forImage = compileSequence(v, textToImageDocument([5, 9], undefined, [2, 2]));
    expect(Array.from(forImage.ids.subarray(0, forImage.promptLength))).toEqual([40, 5, 9, 0, 0, 0, 0, 41]);
    const anyImage = compileSequence(v, textToImageDocument([], undefined, [2, 2]));
    expect(Array.from(anyImage.ids.subarray(0, anyImage.promptLength))).toEqual([40, 0, 0, 0, 0, 0, 0, 41]);
    const forCaption = compileSequence(v, imageToTextDocument([1, 2, 3, 4], undefined, [2, 2]));
    expect(Array.from(forCaption.ids)).toEqual([40, 0, 0, 0, 0, 0, 0, 41, 45, 46, 47, 48, 42, -1, -1, -1, -1, -1, -1, -1]);
    expect(forCaption.length - forCaption.promptLength).toBe(maxCaptionTokens(DEFAULT_PAIRED)); // 6 + <eos>
    expect(() => textToImageDocument([1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0], [2, 2])).not.toThrow(); // the builder only builds:
    expect(() => compileSequence(v, textToImageDocument([1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0], [2, 2]))).toThrow("segment 1 (text): text of 7 tokens is longer than its padTo 6");
    expect(ids(v, textToImageDocument([5], [0, 1, 2, 3], [2, 2], { layout: { ...DEFAULT_PAIRED, captionSlot: 0 } }))).toEqual([40, 5, 41, 44, 45, 46, 47, 42]);
  });
});

// One example of each direction, frozen from the legacy `textToImage` / `imageToText`: see fixtures.ts.
describe("paired layout, frozen", () => {
  const v = JointVocab.build(LEGACY_VOCAB);

  it("text→image: <bos> caption <pad>… <boi> image <eoi>, the image + <eoi> share weight 1", () => {
    const e = toTrainingExample(compileSequence(v, textToImageDocument(FROZEN_T2I_CAPTION, FROZEN_IMAGE, [7, 7])), 64, v.padId);
    expect(Array.from(e.inputs)).toEqual([
      40, 5, 9, 17, 0, 0, 0, 41, 55, 92, 129, 166, 203, 240, 277, 58, 95, 132, 169, 206, 243, 280, 61, 98, 135, 172, 209, 246, 283, 64, 101, 138,
      175, 212, 249, 286, 67, 104, 141, 178, 215, 252, 289, 70, 107, 144, 181, 218, 255, 292, 73, 110, 147, 184, 221, 258, 295, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(Array.from(e.targets)).toEqual([
      5, 9, 17, 0, 0, 0, 41, 55, 92, 129, 166, 203, 240, 277, 58, 95, 132, 169, 206, 243, 280, 61, 98, 135, 172, 209, 246, 283, 64, 101, 138, 175,
      212, 249, 286, 67, 104, 141, 178, 215, 252, 289, 70, 107, 144, 181, 218, 255, 292, 73, 110, 147, 184, 221, 258, 295, 42, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(Array.from(e.weights)).toEqual(f32([
      0, 0, 0, 0, 0, 0, 0, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02,
      0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02,
      0.02, 0.02, 0.02, 0.02, 0.02, 0, 0, 0, 0, 0, 0, 0,
    ]));
  });

  it("image→text: <bos> <pad>… <boi> image <eoi> caption <eos>, 0.25 on image + <eoi>, 1 on caption + <eos>", () => {
    const e = toTrainingExample(compileSequence(v, imageToTextDocument(FROZEN_IMAGE, FROZEN_I2T_CAPTION, [7, 7])), 64, v.padId);
    expect(Array.from(e.inputs)).toEqual([
      40, 0, 0, 0, 0, 0, 0, 41, 55, 92, 129, 166, 203, 240, 277, 58, 95, 132, 169, 206, 243, 280, 61, 98, 135, 172, 209, 246, 283, 64, 101, 138,
      175, 212, 249, 286, 67, 104, 141, 178, 215, 252, 289, 70, 107, 144, 181, 218, 255, 292, 73, 110, 147, 184, 221, 258, 295, 42, 7, 3, 22, 0, 0, 0,
    ]);
    expect(Array.from(e.targets)).toEqual([
      0, 0, 0, 0, 0, 0, 41, 55, 92, 129, 166, 203, 240, 277, 58, 95, 132, 169, 206, 243, 280, 61, 98, 135, 172, 209, 246, 283, 64, 101, 138, 175,
      212, 249, 286, 67, 104, 141, 178, 215, 252, 289, 70, 107, 144, 181, 218, 255, 292, 73, 110, 147, 184, 221, 258, 295, 42, 7, 3, 22, 43, 0, 0, 0,
    ]);
    expect(Array.from(e.weights)).toEqual(f32([
      0, 0, 0, 0, 0, 0, 0, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005,
      0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005,
      0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.25, 0.25, 0.25, 0.25, 0, 0, 0,
    ]));
  });
});
