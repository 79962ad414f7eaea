import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { allCaptions } from "../../../src/data/captions.ts";
import { TextTokenizer } from "../../../src/tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer, type TextTokenizerKind } from "../../../src/tokenizers/text/train.ts";

// The fixture is this corpus trained with the defaults (WordLevel, ["<pad>", "<unk>"]).
// Regenerate after a deliberate change: UPDATE_GOLDEN=1 npx vitest run test/tokenizers/text
const FIXTURE_CORPUS = ["a handwritten 7", "the digit seven", "a picture of a 3", "an image of the number five"];
const FIXTURE_PATH = fileURLToPath(new URL("../../fixtures/caption-tokenizer.json", import.meta.url));

const CORPUS = [...FIXTURE_CORPUS, "An eight, written by hand", "handwritten digit 0", "the number 9", "a photo of the digit 4"];
// Beyond the corpus: unknown words and characters, case, punctuation runs, tabs and runs of spaces.
const PROBES = ["a zebra", "THE DIGIT Seven?!", "hand-written\t7.", "  a   photo  ", "café ж", "<unk> 7"];

const normalized = (s: string): string => s.toLowerCase().trim().split(/\s+/).join(" ");

async function nativeIds(json: string, text: string): Promise<number[]> {
  return (await NativeTokenizer.fromString(json).encode(text, null, { addSpecialTokens: false })).getIds();
}

describe.each<TextTokenizerKind>(["wordlevel", "bpe"])("text tokenizer (%s, HF tokenizer.json)", (kind) => {
  it("round-trips every corpus sentence and every caption", async () => {
    for (const corpus of [CORPUS, allCaptions()]) {
      const tok = TextTokenizer.fromJSON(await trainTextTokenizer(corpus, { kind }));
      for (const s of corpus) expect(tok.decodeText(tok.encodeText(s)), s).toBe(normalized(s));
    }
  });

  it("writes valid HF tokenizer.json that the native library reads back and encodes identically", async () => {
    const json = await trainTextTokenizer(CORPUS, { kind });
    const parsed = JSON.parse(json) as Record<string, { type: string; pretokenizers?: { type: string }[] }>;
    expect(Object.keys(parsed)).toEqual(expect.arrayContaining(["model", "normalizer", "pre_tokenizer", "added_tokens", "decoder"]));
    expect(parsed.model!.type).toBe(kind === "bpe" ? "BPE" : "WordLevel");
    expect(parsed.normalizer).toEqual({ type: "Lowercase" });
    expect(parsed.pre_tokenizer!.pretokenizers!.map((p) => p.type)).toEqual(kind === "bpe" ? ["WhitespaceSplit", "Metaspace", "Punctuation"] : ["WhitespaceSplit", "Punctuation"]);
    const tok = TextTokenizer.fromJSON(json);
    expect(tok.toJSON()).toBe(json);
    for (const s of [...CORPUS, ...PROBES]) expect(tok.encodeText(s), s).toEqual(await nativeIds(json, s));
  });

  it("puts the special tokens first, maps unknown text to <unk>, and keeps ids contiguous", async () => {
    const tok = TextTokenizer.fromJSON(await trainTextTokenizer(CORPUS, { kind }));
    expect([tok.tokenToId("<pad>"), tok.tokenToId("<unk>")]).toEqual([0, 1]);
    // WordLevel: "zebra" is an unknown word; BPE: "ж" is a character the corpus never had.
    expect(tok.encodeText("a zebra")).toContain(1);
    if (kind === "wordlevel") expect(tok.encodeText("a zebra")).toEqual([tok.tokenToId("a"), 1]);
    expect(tok.encodeText("ж").at(-1)).toBe(1);
    for (let id = 0; id < tok.vocabSize; id++) expect(tok.tokenToId(tok.idToToken(id)!)).toBe(id);
    expect(tok.idToToken(tok.vocabSize)).toBeUndefined();
    expect(tok.tokenToId("no-such-token")).toBeUndefined();
  });

  it("throws on ids outside the vocabulary, naming the id and the valid range", async () => {
    const tok = TextTokenizer.fromJSON(await trainTextTokenizer(CORPUS, { kind }));
    const last = tok.vocabSize - 1;
    expect(() => tok.decodeText([2, tok.vocabSize])).toThrow(`unknown text token id ${tok.vocabSize}: expected an integer in [0, ${last}]`);
    expect(() => tok.decodeText([-1])).toThrow("unknown text token id -1");
    expect(() => tok.decodeText([1.5])).toThrow("unknown text token id 1.5");
    expect(tok.decodeText([])).toBe("");
  });

  it("caps the vocabulary at vocabSize and still round-trips what it knows", async () => {
    const full = TextTokenizer.fromJSON(await trainTextTokenizer(CORPUS, { kind }));
    const size = kind === "bpe" ? full.vocabSize - 20 : 6;
    const tok = TextTokenizer.fromJSON(await trainTextTokenizer(CORPUS, { kind, vocabSize: size }));
    expect(tok.vocabSize).toBe(size);
    // The most frequent words ("a", "the", "of", "digit") survive a WordLevel cut; BPE can still spell everything.
    if (kind === "wordlevel") expect(tok.decodeText(tok.encodeText("a digit of the"))).toBe("a digit of the");
    else for (const s of CORPUS) expect(tok.decodeText(tok.encodeText(s))).toBe(normalized(s));
  });
});

describe("text tokenizer golden ids", () => {
  it("the committed fixture is what training the fixture corpus gives today", async () => {
    const json = await trainTextTokenizer(FIXTURE_CORPUS);
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(FIXTURE_PATH, json);
    expect(json).toBe(readFileSync(FIXTURE_PATH, "utf8"));
  });

  it("the fixture encodes to the golden ids in the JS reader and in the native library", async () => {
    const json = readFileSync(FIXTURE_PATH, "utf8");
    const tok = TextTokenizer.fromJSON(json);
    // WordLevelTrainer order: specials, then words by count (a:3, of:2, the:2), ties alphabetical.
    const golden: [string, number[]][] = [
      ["a handwritten 7", [2, 10, 6]],
      ["the digit seven", [4, 8, 14]],
      ["An image of a zebra", [7, 11, 3, 2, 1]],
    ];
    for (const [text, ids] of golden) {
      expect(tok.encodeText(text), text).toEqual(ids);
      expect(await nativeIds(json, text), text).toEqual(ids);
    }
    expect(tok.vocabSize).toBe(15);
    expect(tok.decodeText([2, 10, 6])).toBe("a handwritten 7");
  });

  it("BPE on the fixture corpus gives the golden ids", async () => {
    const tok = TextTokenizer.fromJSON(await trainTextTokenizer(FIXTURE_CORPUS, { kind: "bpe", vocabSize: 40 }));
    // ▁a ▁ h an dw r it t en ▁ 7 | ▁the ▁ di g it ▁ s ev en (ids 2..22 are the alphabet)
    expect(tok.encodeText("a handwritten 7")).toEqual([24, 23, 11, 33, 37, 17, 27, 19, 25, 23, 3]);
    expect(tok.encodeText("the digit seven")).toEqual([31, 23, 36, 10, 27, 23, 18, 38, 25]);
  });
});

describe("text tokenizer errors", () => {
  it("rejects bad training options", async () => {
    await expect(trainTextTokenizer(CORPUS, { specialTokens: ["<pad>"] })).rejects.toThrow('specialTokens must include "<unk>"');
    await expect(trainTextTokenizer(CORPUS, { vocabSize: 2 })).rejects.toThrow("vocabSize must be an integer > 2");
    await expect(trainTextTokenizer(CORPUS, { kind: "bpe", vocabSize: 5 })).rejects.toThrow("vocabSize must be ≥");
    await expect(trainTextTokenizer([])).rejects.toThrow("the corpus is empty");
  });

  it("rejects tokenizer.json it cannot use", () => {
    expect(() => TextTokenizer.fromJSON("{not json")).toThrow("not valid JSON");
  });
});
