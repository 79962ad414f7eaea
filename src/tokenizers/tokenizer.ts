/**
 * The one tokenizer contract, whatever the modality: media in, token ids out (with their
 * shape), ids back to media, a vocabulary size, tokens per item, and a saved form that a
 * loader rebuilds the tokenizer from. The joint vocabulary of a multimodal model
 * (backbone/sequence/vocab.ts) gives each tokenizer its own id range of `vocabSize` ids, and
 * the layout compiler lays a tokenizer's ids out as a block of `tokenShape`.
 *
 * Implementations: `TextTokenizer` (text/text-tokenizer.ts; variable length, HF tokenizer.json),
 * `AutoencoderTokenizer` (image/autoencoder.ts; any quantizer of the family).
 */
import type { TensorRecord } from "../io/safetensors.ts";

/** One item's token ids, row-major over `shape` (e.g. [7, 7] for an image grid, [L] for text). */
export type TokenIds = { readonly ids: Int32Array; readonly shape: readonly number[] };

/**
 * A tokenizer as it is written to disk: `kind` picks the loader, `config` is plain JSON (it goes
 * to `<name>.json`), `tensors` its weights (to `<name>.safetensors`; empty for text, whose whole
 * state is the HF tokenizer.json held in `config`).
 */
export type SavedTokenizer = {
  readonly kind: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly tensors: Readonly<Record<string, TensorRecord>>;
};

export interface Tokenizer<Item> {
  /** The modality it reads and writes: "text", "image", "audio", … */
  readonly modality: string;
  /** Its ids are 0 .. vocabSize − 1. */
  readonly vocabSize: number;
  /** One item's ids: a fixed shape (an image's [h, w] grid), or undefined when the length varies (text). */
  readonly tokenShape: readonly number[] | undefined;
  /** The product of `tokenShape`, or undefined when the length varies. */
  readonly tokensPerItem: number | undefined;
  encode(items: readonly Item[]): Promise<TokenIds[]>;
  /** Ids of any shape with `tokensPerItem` ids (fixed-shape tokenizers), any length for text. */
  decode(ids: readonly (TokenIds | Int32Array)[]): Promise<Item[]>;
  save(): Promise<SavedTokenizer>;
  dispose(): void;
}

/** An image: values in [0, 1], channels-first [C, H, W] row-major (C = 1: grayscale). */
export type Image = { readonly data: Float32Array; readonly channels: number; readonly height: number; readonly width: number };

/** `ids` of a TokenIds or a bare array. */
export const idsOf = (t: TokenIds | Int32Array): Int32Array => (t instanceof Int32Array ? t : t.ids);
