import { describe, expect, it } from "vitest";
import { allCaptions } from "../../src/data/captions.ts";
import { TextTokenizer, trainTextTokenizer } from "../../src/tokenizers/text/text-tokenizer.ts";

describe("text tokenizer (HF tokenizer.json)", () => {
  it("writes a real tokenizer.json and round-trips every caption", async () => {
    const json = await trainTextTokenizer(allCaptions());
    const parsed = JSON.parse(json);
    expect(parsed.model.type).toBe("WordLevel");
    expect(parsed.normalizer).toEqual({ type: "Lowercase" });
    expect(parsed.pre_tokenizer).toEqual({ type: "Whitespace" });
    const tok = TextTokenizer.fromJSON(json);
    for (const c of allCaptions()) expect(tok.decode(tok.encode(c))).toBe(c.toLowerCase());
  });

  it("golden ids, <unk> for unknown words, and a clear error for unknown ids", async () => {
    const tok = TextTokenizer.fromJSON(await trainTextTokenizer(["a handwritten 7", "the digit seven"]));
    expect(tok.encode("A handwritten 7")).toEqual([2, 3, 4]);
    expect(tok.encode("the digit seven")).toEqual([5, 6, 7]);
    expect(tok.encode("a zebra")).toEqual([2, 1]);
    expect(tok.vocabSize).toBe(8);
    expect(() => tok.decode([2, 8])).toThrow("unknown text token id 8: expected an integer in [0, 7]");
  });
});
