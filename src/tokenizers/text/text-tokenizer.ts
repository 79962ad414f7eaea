import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";

/**
 * Text tokenizer in Hugging Face `tokenizer.json` format. Built with HF's native `tokenizers`
 * binding (WordLevel model, lowercase normalizer, whitespace pre-tokenizer) and read back with
 * the pure-JS `@huggingface/tokenizers`, so the same file works in a browser.
 */
export type TextTokenizerOptions = { specialTokens?: readonly string[] };

const DEFAULT_SPECIALS = ["<pad>", "<unk>"] as const;

/** Build a WordLevel tokenizer over every word of `corpus`; returns tokenizer.json text. */
export async function trainTextTokenizer(corpus: readonly string[], { specialTokens = DEFAULT_SPECIALS }: TextTokenizerOptions = {}): Promise<string> {
  const native = await import("tokenizers");
  const vocab: Record<string, number> = {};
  for (const t of specialTokens) vocab[t] = Object.keys(vocab).length;
  // The Node binding exposes no WordLevel trainer: collect the words with the library's own
  // normalizer and pre-tokenizer (a WordLevel over only <unk> reports each piece's surface form).
  const probe = new native.Tokenizer(native.WordLevel.init({ "<unk>": 0 }, { unkToken: "<unk>" }));
  probe.setNormalizer(native.lowercase());
  probe.setPreTokenizer(native.whitespacePreTokenizer());
  for (const line of corpus) {
    const enc = await probe.encode(line);
    for (const [start, end] of enc.getOffsets()) vocab[line.slice(start, end).toLowerCase()] ??= Object.keys(vocab).length;
  }
  const tok = new native.Tokenizer(native.WordLevel.init(vocab, { unkToken: "<unk>" }));
  tok.setNormalizer(native.lowercase());
  tok.setPreTokenizer(native.whitespacePreTokenizer());
  tok.addSpecialTokens([...specialTokens]);
  const dir = mkdtempSync(join(tmpdir(), "mmntp-tok-"));
  try {
    tok.save(join(dir, "tokenizer.json"));
    return readFileSync(join(dir, "tokenizer.json"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class TextTokenizer {
  readonly #hf: HFTokenizer;
  readonly #json: string;
  readonly vocabSize: number;
  readonly #unk: number;

  private constructor(json: string) {
    this.#json = json;
    this.#hf = new HFTokenizer(JSON.parse(json), {});
    this.vocabSize = this.#hf.get_vocab(true).size;
    const unk = this.#hf.token_to_id("<unk>");
    if (unk === undefined) throw new Error("tokenizer.json has no <unk> token");
    this.#unk = unk;
  }

  static fromJSON(json: string): TextTokenizer {
    return new TextTokenizer(json);
  }

  /** text → ids (no special tokens added); unknown words become `<unk>`. */
  encode(text: string): number[] {
    // The JS reader has no WordLevel-specific model and leaves unknown words without an id.
    return this.#hf.encode(text, { add_special_tokens: false }).ids.map((id: number | undefined) => id ?? this.#unk);
  }

  /** ids → text; throws on an id outside the vocabulary. */
  decode(ids: readonly number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new Error(`unknown text token id ${id}: expected an integer in [0, ${this.vocabSize - 1}]`);
    }
    return this.#hf.decode([...ids], { skip_special_tokens: true });
  }

  tokenToId(token: string): number | undefined {
    return this.#hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id);
  }

  toJSON(): string {
    return this.#json;
  }
}
