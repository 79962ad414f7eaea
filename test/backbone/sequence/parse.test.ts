import { describe, expect, it } from "vitest";
import { compileSequence } from "../../../src/backbone/sequence/compile.ts";
import { canonicalDocument, type Segment, type SequenceDocument } from "../../../src/backbone/sequence/document.ts";
import { parseSequence } from "../../../src/backbone/sequence/parse.ts";
import { mulberry32 } from "../../../src/data/shuffle.ts";
import { multi, randomDocument, SHAPES } from "./fixtures.ts";

const v = multi();
const roundTrip = (doc: SequenceDocument) => parseSequence(v, compileSequence(v, doc).ids, { blockShapes: SHAPES });

describe("parseSequence", () => {
  it("reads each kind of segment back", () => {
    // <bos> 2 3 pad pad 4 <boi> i0 i1 <eol> i2 i3 <eol> <eoi> <image>×3 c2 c0 <boa> a3 <eoa> 5 <eos>
    const ids = [10, 2, 3, 1, 1, 4, 11, 18, 19, 13, 20, 21, 13, 12, 16, 16, 16, 32, 30, 14, 29, 15, 5, 17];
    expect(parseSequence(v, ids)).toEqual({
      segments: [
        { kind: "special", name: "<bos>" },
        { kind: "text", ids: [2, 3], padTo: 4 },
        { kind: "text", ids: [4] }, // a text id after pads starts a new text
        { kind: "block", modality: "image", shape: [2, 2], ids: [0, 1, 2, 3], rowBreaks: true },
        { kind: "placeholder", name: "image", slots: 3, token: "<image>" },
        { kind: "block", modality: "code", shape: [2], ids: [2, 0], markers: false },
        { kind: "block", modality: "audio", shape: [1], ids: [3] },
        { kind: "text", ids: [5] },
        { kind: "special", name: "<eos>" },
      ],
    });
  });

  it("takes block shapes from blockShapes when the product matches, else [n]; placeholder names from the option", () => {
    const ids = Int32Array.from([11, 18, 19, 20, 21, 22, 23, 12, 11, 18, 12, 16]);
    const doc = parseSequence(v, ids, { blockShapes: { image: [3, 2] }, placeholderNames: { "<image>": "photo" } });
    expect(doc.segments).toEqual([
      { kind: "block", modality: "image", shape: [3, 2], ids: [0, 1, 2, 3, 4, 5] },
      { kind: "block", modality: "image", shape: [1], ids: [0] },
      { kind: "placeholder", name: "photo", slots: 1, token: "<image>" },
    ]);
  });

  it("round-trips documents of each kind, in canonical form", () => {
    const docs: SequenceDocument[] = [
      // text→image as the unified model trains it
      { segments: [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [2, 3], padTo: 6 }, { kind: "block", modality: "image", shape: [2, 3], ids: [0, 1, 2, 3, 4, 5], loss: 1 }] },
      // image→text, with an empty padded caption slot and a caption ending in <eos>
      { segments: [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [], padTo: 3 }, { kind: "block", modality: "image", shape: [2, 3], ids: [5, 4, 3, 2, 1, 0], loss: 0.25 }, { kind: "text", ids: [7, 8], end: "<eos>", loss: 1 }] },
      // Emu3-style rows, a bidirectional audio block, a prefix
      { segments: [{ kind: "text", ids: [4] }, { kind: "block", modality: "image", shape: [3, 1], ids: [7, 6, 5], rowBreaks: true }, { kind: "block", modality: "audio", shape: [2], ids: [0, 3], attention: "bidirectional" }], attention: { prefix: 2 } },
      // LLaVA-style placeholders and marker-less codes
      { segments: [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [2] }, { kind: "placeholder", name: "image", slots: 4, token: "<image>" }, { kind: "block", modality: "code", shape: [3], ids: [0, 1, 2], markers: false }, { kind: "text", ids: [3], end: "<eos>" }] },
    ];
    for (const doc of docs) expect(roundTrip(doc)).toEqual(canonicalDocument(doc, { blockShapes: SHAPES }));
    expect(canonicalDocument(docs[1]!).segments[2]).toEqual({ kind: "block", modality: "image", shape: [6], ids: [5, 4, 3, 2, 1, 0] }); // no blockShapes: [n]
    expect(canonicalDocument(docs[1]!, { blockShapes: SHAPES }).segments).toEqual([
      { kind: "special", name: "<bos>" },
      { kind: "text", ids: [], padTo: 3 },
      { kind: "block", modality: "image", shape: [2, 3], ids: [5, 4, 3, 2, 1, 0] },
      { kind: "text", ids: [7, 8] },
      { kind: "special", name: "<eos>" },
    ]);
  });

  it("property: random documents survive compile → parse, and canonicalDocument keeps their ids", () => {
    const rng = mulberry32(20240611);
    for (let n = 0; n < 400; n++) {
      const doc = randomDocument(rng);
      const compiled = compileSequence(v, doc);
      const parsed = parseSequence(v, compiled.ids, { blockShapes: SHAPES });
      const canon = canonicalDocument(doc, { blockShapes: SHAPES });
      expect(parsed, JSON.stringify(doc)).toEqual(canon);
      expect(canonicalDocument(parsed, { blockShapes: SHAPES })).toEqual(parsed); // parse output is canonical
      expect(Array.from(compileSequence(v, canon).ids)).toEqual(Array.from(compiled.ids));
    }
  });

  it("errors name the index and the token", () => {
    const cases: [number[], string][] = [
      [[10, 11, 18, 19], 'parseSequence: the "image" block opened by "<boi>" at index 1 is not closed: no end marker "<eoi>" before the end of the 4 ids'],
      [[10, 18, 12], 'parseSequence: ids[2] = 12 is "<eoi>", the end marker of "image", without a begin marker "<boi>" before it'],
      [[10, 2, -1], "parseSequence: ids[2] is −1, a hole (a position still to be generated)"],
      [[10, 33], "parseSequence: ids[1]: unknown token id 33: expected an integer in [0, 32]"],
      [[11, 18, 26, 12], 'parseSequence: ids[2] = 26 (a audio token) inside the "image" block opened by "<boi>" at index 0: expected a "image" code, its line break "<eol>" or its end marker "<eoi>"'],
      [[11, 18, 17, 12], 'parseSequence: ids[2] = 17 (special "<eos>") inside the "image" block'],
      [[11, 18, 19, 13, 20, 13, 12], 'the "image" block opened by "<boi>" at index 0 has rows of 2, 1 codes; expected equal, non-empty rows'],
      [[11, 18, 13, 19, 12], 'the "image" block opened by "<boi>" at index 0 has 1 codes after its last row break (index 3); every row must end with "<eol>"'],
      [[11, 12], 'the "image" block opened by "<boi>" at index 0 is empty'],
    ];
    for (const [ids, message] of cases) expect(() => parseSequence(v, ids), message).toThrow(message);
  });
});
