import { describe, expect, it } from "vitest";
import { JointVocab, type VocabSpec } from "../../../src/backbone/sequence/vocab.ts";
import { allowedIds, MULTI } from "./fixtures.ts";

const LEGACY_SPEC: VocabSpec = { text: { size: 40, pad: 0 }, specials: ["<bos>", "<boi>", "<eoi>", "<eos>"], modalities: [{ name: "image", size: 256, begin: "<boi>", end: "<eoi>" }] };

describe("JointVocab", () => {
  it("lays out the legacy text+image vocabulary with the same ids as today's JointVocab(40, 256, 0)", () => {
    const v = JointVocab.build(LEGACY_SPEC);
    expect(v.size).toBe(300);
    expect(v.padId).toBe(0);
    expect(["<bos>", "<boi>", "<eoi>", "<eos>"].map((s) => v.special(s))).toEqual([40, 41, 42, 43]);
    expect(v.range("text")).toEqual({ start: 0, end: 40 });
    expect(v.range("special")).toEqual({ start: 40, end: 44 });
    expect(v.range("image")).toEqual({ start: 44, end: 300 });
    expect(v.toJoint("image", 0)).toBe(44);
    expect(v.toJoint("image", 255)).toBe(299);
    expect(v.fromJoint("image", 299)).toBe(255);
    expect([0, 39, 40, 43, 44, 299].map((id) => v.modalityOf(id))).toEqual(["text", "text", "special", "special", "image", "image"]);
  });

  it("packs modalities in order after the specials, or at explicit offsets with gaps", () => {
    const v = JointVocab.build(MULTI);
    expect([v.range("special"), v.range("image"), v.range("audio"), v.range("code")]).toEqual([
      { start: 10, end: 18 },
      { start: 18, end: 26 },
      { start: 26, end: 30 },
      { start: 30, end: 33 },
    ]);
    expect(v.size).toBe(33);
    const gap = JointVocab.build({ text: { size: 4, pad: 0 }, specials: ["<s>"], modalities: [{ name: "a", size: 2, offset: 8 }, { name: "b", size: 2 }] });
    expect([gap.range("a"), gap.range("b"), gap.size]).toEqual([{ start: 8, end: 10 }, { start: 10, end: 12 }, 12]);
    expect(() => gap.modalityOf(6)).toThrow("unknown token id 6: it lies in a gap between the ranges (text 0..3, special 4..4, a 8..9, b 10..11)");
    expect(gap.allowedMask({ modalities: ["a"] })[6]).toBe(-Infinity);
  });

  it("knows each special's role", () => {
    const v = JointVocab.build(MULTI);
    expect(v.roleOf("<boi>")).toEqual({ kind: "begin", modality: "image" });
    expect(v.roleOf("<eoa>")).toEqual({ kind: "end", modality: "audio" });
    expect(v.roleOf("<eol>")).toEqual({ kind: "lineBreak", modalities: ["image"] });
    expect(v.roleOf("<image>")).toEqual({ kind: "placeholder" });
    expect(v.roleOf("<eos>")).toEqual({ kind: "plain" });
    expect(v.specialName(17)).toBe("<eos>");
    expect(() => v.specialName(18)).toThrow("token 18 is not a special (specials are 10..17)");
  });

  it("allowedMask: 0 on allowed ids, −∞ elsewhere, text never the pad id, cached per constraint", () => {
    const v = JointVocab.build(MULTI);
    const m = v.allowedMask({ modalities: ["text"], specials: ["<eos>"] });
    expect(allowedIds(m)).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9, 17]); // pad 1 excluded
    expect([...m].every((x) => x === 0 || x === -Infinity)).toBe(true);
    expect(v.allowedMask({ specials: ["<eos>"], modalities: ["text"] })).toBe(m); // same constraint, other order
    const audio = v.allowedMask({ modalities: ["audio"] });
    expect(allowedIds(audio)).toEqual([26, 27, 28, 29]);
    const one = v.allowedMask({ ids: [30] });
    expect(allowedIds(one)).toEqual([30]);
    expect(() => v.allowedMask({ modalities: ["video"] })).toThrow('unknown modality "video": expected one of "image", "audio", "code"');
    expect(() => v.allowedMask({ specials: ["<x>"] })).toThrow('unknown special "<x>"');
    expect(() => v.allowedMask({ modalities: ["special"] })).toThrow('not the modality "special"');
    expect(() => v.allowedMask({ ids: [33] })).toThrow("unknown token id 33: expected an integer in [0, 32]");
  });

  it("round-trips through JSON, offsets and gaps included", () => {
    const v = JointVocab.build({ ...MULTI, modalities: [...MULTI.modalities, { name: "far", size: 5, offset: 100 }] });
    const json = JSON.parse(JSON.stringify(v));
    const w = JointVocab.fromJSON(json);
    expect(w.toJSON()).toEqual(v.toJSON());
    expect(w.range("far")).toEqual({ start: 100, end: 105 });
    expect(w.size).toBe(105);
    expect(JointVocab.fromJSON(JointVocab.build(LEGACY_SPEC).toJSON()).special("<eos>")).toBe(43);
  });

  it("fromJSON names the field of the wrong type", () => {
    const good = JointVocab.build(MULTI).toJSON();
    expect(() => JointVocab.fromJSON(null)).toThrow("vocab JSON must be an object, got null");
    expect(() => JointVocab.fromJSON({ ...good, text: { size: "10", pad: 1 } })).toThrow('vocab JSON text.size must be an integer, got string "10"');
    expect(() => JointVocab.fromJSON({ ...good, specials: "<bos>" })).toThrow("vocab JSON specials must be an array, got string");
    expect(() => JointVocab.fromJSON({ ...good, specials: ["<bos>", 3] })).toThrow("vocab JSON specials[1] must be a string, got number 3");
    expect(() => JointVocab.fromJSON({ ...good, modalities: [{ ...good.modalities[0], offset: 1.5 }] })).toThrow("vocab JSON modalities[0].offset must be an integer, got number 1.5");
    expect(() => JointVocab.fromJSON({ ...good, modalities: [{ ...good.modalities[0], begin: 7 }] })).toThrow("vocab JSON modalities[0].begin must be a string, got number 7");
    expect(() => JointVocab.fromJSON({ ...good, modalities: [[]] })).toThrow("vocab JSON modalities[0] must be an object, got an array");
  });

  it("rejects bad specs, naming the value", () => {
    const base = (patch: Partial<VocabSpec>): VocabSpec => ({ ...MULTI, ...patch });
    const img = MULTI.modalities[0]!;
    const cases: [VocabSpec, string][] = [
      [base({ text: { size: 0, pad: 0 } }), "text.size 0 must be a positive integer"],
      [base({ text: { size: 10, pad: 10 } }), "text.pad 10 must be a text id in [0, 9]"],
      [base({ specials: [...MULTI.specials, "<bos>"] }), 'special "<bos>" is listed twice in specials'],
      [base({ modalities: [img, { ...img, begin: "<boa>", end: "<eoa>" }] }), 'modality "image" is listed twice'],
      [base({ modalities: [{ name: "text", size: 3 }] }), 'a modality cannot be named "text"'],
      [base({ modalities: [{ name: "special", size: 3 }] }), 'a modality cannot be named "special"'],
      [base({ modalities: [{ name: "x", size: 2.5 }] }), 'modality "x" size 2.5 must be a positive integer'],
      [base({ modalities: [{ name: "x", size: 0 }] }), 'modality "x" size 0 must be a positive integer'],
      [base({ modalities: [{ name: "x", size: 2, begin: "<start>", end: "<eoi>" }] }), 'modality "x" begin marker "<start>" is not listed in specials'],
      [base({ modalities: [{ name: "x", size: 2, lineBreak: "<nl>" }] }), 'modality "x" line break "<nl>" is not listed in specials'],
      [base({ placeholders: ["<audio>"] }), 'placeholder token "<audio>" is not listed in specials'],
      [base({ modalities: [{ name: "x", size: 2, begin: "<boi>" }] }), 'modality "x" has begin "<boi>" but no end: give both markers or neither'],
      [base({ modalities: [img, { name: "y", size: 2, begin: "<boi>", end: "<eoa>" }] }), 'special "<boi>" cannot be both the begin marker of "image" and the begin marker of "y"'],
      [base({ modalities: [{ name: "x", size: 2, begin: "<image>", end: "<eos>" }] }), 'special "<image>" cannot be both a placeholder token and the begin marker of "x"'],
      [base({ modalities: [{ name: "x", size: 2, begin: "<boi>", end: "<eoi>", lineBreak: "<eoi>" }] }), 'special "<eoi>" cannot be both the end marker of "x" and the line break of "x"'],
      [base({ modalities: [{ name: "x", size: 5, offset: 8 }] }), 'modality "x" ids 8..12 overlap text ids 0..9'],
      [base({ modalities: [{ name: "x", size: 5, offset: 12 }] }), 'modality "x" ids 12..16 overlap the specials ids 10..17'],
      [base({ modalities: [{ name: "x", size: 5 }, { name: "y", size: 2, offset: 20 }] }), 'modality "y" ids 20..21 overlap modality "x" ids 18..22'],
      [base({ modalities: [{ name: "x", size: 5, offset: -1 }] }), 'modality "x" offset -1 must be a non-negative integer'],
    ];
    for (const [spec, message] of cases) expect(() => JointVocab.build(spec), message).toThrow(message);
  });

  it("errors on unknown names and out-of-range codes", () => {
    const v = JointVocab.build(MULTI);
    expect(() => v.special("<pad>")).toThrow('unknown special "<pad>": expected one of "<bos>", "<boi>", "<eoi>", "<eol>", "<boa>", "<eoa>", "<image>", "<eos>"');
    expect(() => v.range("video")).toThrow('unknown modality "video"');
    expect(() => v.toJoint("audio", 4)).toThrow("audio code 4 out of range [0, 3]");
    expect(() => v.toJoint("text", -1)).toThrow("text code -1 out of range [0, 9]");
    expect(() => v.fromJoint("audio", 25)).toThrow("token 25 is not one of the audio tokens (audio ids are 26..29)");
    expect(() => v.fromJoint("special", 12)).toThrow("specials have no codes");
    expect(() => v.modalityOf(-3)).toThrow("unknown token id -3: expected an integer in [0, 32]");
    expect(v.toJoint("text", 7)).toBe(7);
    expect(v.fromJoint("code", 32)).toBe(2);
  });
});
