/**
 * Text tokenizer in Hugging Face `tokenizer.json` format.
 *
 * Reading uses the pure-JS `@huggingface/tokenizers`, so a saved tokenizer.json encodes and
 * decodes the same way in Node and in a browser (this file imports no Node module). Training is
 * Node-only: train.ts, on HF's native `tokenizers` binding.
 *
 * Ids are contiguous, 0..vocabSize-1, special tokens first (`<pad>` = 0, `<unk>` = 1 by
 * default): the joint multimodal vocabulary (backbone/sequence/vocab.ts) puts its own ids after them.
 */
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { checkJsonDepth, InputError } from "../../io/errors.ts";
import { idsOf, type SavedTokenizer, type TokenIds, type Tokenizer } from "../tokenizer.ts";

type TokenizerJSON = { model?: { type?: string; unk_token?: string | null; vocab?: unknown }; added_tokens?: unknown; decoder?: unknown };

/**
 * Every id in the file must be an integer in [0, n) for the n tokens it lists (model.vocab and
 * added_tokens): HF's reader sizes an array by the largest id, so one entry `"the": 2009746942`
 * would have it loop over 2·10⁹ slots (a hang) before any other check could run.
 */
function checkIds(parsed: TokenizerJSON): void {
  const where = "TextTokenizer.fromJSON";
  const vocab = parsed.model?.vocab;
  const ids: [string, unknown][] = [];
  if (typeof vocab === "object" && vocab !== null && !Array.isArray(vocab)) ids.push(...Object.entries(vocab).map(([t, id]): [string, unknown] => [`model.vocab ${JSON.stringify(t.slice(0, 40))}`, id]));
  else if (vocab !== undefined && !Array.isArray(vocab)) throw new InputError(`${where}: model.vocab must map tokens to ids, got ${JSON.stringify(vocab)?.slice(0, 40)}`, { field: "model.vocab" });
  const added = parsed.added_tokens ?? [];
  if (!Array.isArray(added)) throw new InputError(`${where}: added_tokens must be a list, got ${JSON.stringify(added)?.slice(0, 40)}`, { field: "added_tokens" });
  added.forEach((t: unknown, i) => ids.push([`added_tokens[${i}].id`, typeof t === "object" && t !== null ? (t as { id?: unknown }).id : undefined]));
  const n = (Array.isArray(vocab) ? vocab.length : 0) + ids.length;
  for (const [field, id] of ids) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= n) throw new InputError(`${where}: ${field} has id ${JSON.stringify(id)}; ids must be integers in [0, ${n - 1}] (fewer than the ${n} entries listed)`, { field, value: id });
  }
}

/**
 * A trained tokenizer.json, read with the pure-JS `@huggingface/tokenizers` (works in browsers).
 * `encodeText` / `decodeText` work on one string; `encode` / `decode` are the tokenizer contract
 * (tokenizers/tokenizer.ts) over many.
 */
export class TextTokenizer implements Tokenizer<string> {
  readonly modality = "text";
  /** Text has no fixed length. */
  readonly tokenShape = undefined;
  readonly tokensPerItem = undefined;
  /** Text ids are 0..vocabSize-1 (special tokens included). */
  readonly vocabSize: number;
  readonly #hf: HFTokenizer;
  readonly #json: string;
  readonly #unk: string;

  private constructor(json: string) {
    let parsed: TokenizerJSON;
    try {
      parsed = JSON.parse(json) as TokenizerJSON;
    } catch (e) {
      throw new InputError(`TextTokenizer.fromJSON: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    checkJsonDepth(parsed, "TextTokenizer.fromJSON");
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new InputError(`TextTokenizer.fromJSON: expected a tokenizer.json object, got ${JSON.stringify(parsed)?.slice(0, 40)}`);
    checkIds(parsed);
    const unk = parsed.model?.unk_token;
    if (typeof unk !== "string") throw new InputError(`TextTokenizer.fromJSON: the model (${parsed.model?.type}) has no unk_token`, { field: "model.unk_token", value: unk });
    try {
      this.#hf = new HFTokenizer(parsed, {
        // The JS reader has no WordLevel model: its fallback takes the unknown token from here.
        unk_token: unk,
        // Without a decoder tokens are joined by spaces; re-attach punctuation ("seven ," → "seven,").
        clean_up_tokenization_spaces: parsed.decoder == null,
      });
      this.vocabSize = this.#hf.get_vocab(true).size;
    } catch (e) {
      // HF's reader does not check the file's structure; whatever it trips on is in the file.
      throw new InputError(`TextTokenizer.fromJSON: not a tokenizer.json HF tokenizers can read (${(e as Error).message})`, { cause: e });
    }
    this.#json = json;
    this.#unk = unk;
    if (this.#hf.token_to_id(unk) === undefined) throw new InputError(`TextTokenizer.fromJSON: unk_token "${unk}" is not in the vocabulary`, { field: "model.unk_token", value: unk });
    // The joint vocabulary offsets image ids by vocabSize, so text ids must fill 0..vocabSize-1.
    for (let id = 0; id < this.vocabSize; id++) {
      if (this.#hf.id_to_token(id) === undefined) throw new InputError(`TextTokenizer.fromJSON: ids must be contiguous 0..${this.vocabSize - 1}, but id ${id} has no token`, { field: "model.vocab" });
    }
  }

  static fromJSON(json: string): TextTokenizer {
    return new TextTokenizer(json);
  }

  /** From `save()`'s output: the tokenizer.json is its config. */
  static fromSaved(saved: SavedTokenizer): TextTokenizer {
    if (saved.kind !== "text") throw new Error(`text tokenizer: kind is ${JSON.stringify(saved.kind)}, expected "text"`);
    return new TextTokenizer(JSON.stringify(saved.config));
  }

  async encode(items: readonly string[]): Promise<TokenIds[]> {
    return items.map((s) => {
      const ids = Int32Array.from(this.encodeText(s));
      return { ids, shape: [ids.length] };
    });
  }

  async decode(ids: readonly (TokenIds | Int32Array)[]): Promise<string[]> {
    return ids.map((t) => this.decodeText(Array.from(idsOf(t))));
  }

  async save(): Promise<SavedTokenizer> {
    return { kind: "text", config: JSON.parse(this.#json) as Record<string, unknown>, tensors: {} };
  }

  /** Nothing to free (no device arrays). */
  dispose(): void {}

  /** Id of the unknown-word token. */
  get unkId(): number {
    return this.#hf.token_to_id(this.#unk)!;
  }

  /** text → ids, no special tokens added; unknown words (BPE: unknown characters) → `<unk>`. */
  encodeText(text: string): number[] {
    const { ids } = this.#hf.encode(text, { add_special_tokens: false });
    return ids;
  }

  /** ids → text (special tokens dropped); throws on an id outside 0..vocabSize-1. */
  decodeText(ids: readonly number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new Error(`unknown text token id ${id}: expected an integer in [0, ${this.vocabSize - 1}]`);
    }
    return ids.length === 0 ? "" : this.#hf.decode([...ids], { skip_special_tokens: true });
  }

  tokenToId(token: string): number | undefined {
    return this.#hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id);
  }

  /** The tokenizer.json text (as loaded). */
  toJSON(): string {
    return this.#json;
  }
}
