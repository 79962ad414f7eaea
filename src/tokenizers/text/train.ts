/**
 * Training a text tokenizer in Hugging Face `tokenizer.json` format, on HF's native `tokenizers`
 * binding (Rust: its WordLevelTrainer / BpeTrainer, its normalizer and pre-tokenizer). Node-only
 * (a native addon, temp files); the result is read by `TextTokenizer` (text-tokenizer.ts), which
 * runs in browsers too.
 *
 * Ids are contiguous, 0..vocabSize-1, special tokens first (`<pad>` = 0, `<unk>` = 1 by default):
 * the joint multimodal vocabulary (backbone/sequence/vocab.ts) puts its own ids after them.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type TextTokenizerKind = "wordlevel" | "bpe";

export type TrainTextTokenizerOptions = {
  /** "wordlevel": one id per corpus word; "bpe": byte-pair merges (Sennrich et al. 2016). */
  readonly kind?: TextTokenizerKind;
  /** At most this many ids, special tokens included; default: everything the trainer learns. */
  readonly vocabSize?: number;
  /** Get the first ids, in this order; must include `<unk>`. */
  readonly specialTokens?: readonly string[];
};

const UNK = "<unk>";
// SentencePiece's word-start marker: BPE pieces carry it so decode can put the spaces back.
const WORD_START = "\u2581";
// The Node binding trains only with the model's default trainer (`Tokenizer.train(files)` →
// `model.get_trainer()`): min_frequency 0, vocab_size 30000, no options exposed.
const DEFAULT_TRAINER_VOCAB = 30_000;

type Native = typeof import("tokenizers");
type Trained = { readonly tokens: readonly string[]; readonly merges: readonly (readonly [string, string])[] };

/** Train a tokenizer on `corpus` (one sentence per entry); returns tokenizer.json text. */
export async function trainTextTokenizer(corpus: readonly string[], options: TrainTextTokenizerOptions = {}): Promise<string> {
  const { kind = "wordlevel", vocabSize, specialTokens = ["<pad>", UNK] } = options;
  if (kind !== "wordlevel" && kind !== "bpe") throw new Error(`trainTextTokenizer: kind must be "wordlevel" or "bpe", got ${JSON.stringify(kind)}`);
  if (!specialTokens.includes(UNK)) throw new Error(`trainTextTokenizer: specialTokens must include "${UNK}", got ${JSON.stringify(specialTokens)}`);
  if (new Set(specialTokens).size !== specialTokens.length) throw new Error(`trainTextTokenizer: duplicate special tokens in ${JSON.stringify(specialTokens)}`);
  if (vocabSize !== undefined && (!Number.isInteger(vocabSize) || vocabSize <= specialTokens.length)) {
    throw new Error(`trainTextTokenizer: vocabSize must be an integer > ${specialTokens.length} (the special tokens), got ${vocabSize}`);
  }
  if (corpus.length === 0) throw new Error("trainTextTokenizer: the corpus is empty");

  const native = await import("tokenizers");
  const trained = await withTempDir((dir) => trainModel(native, kind, corpus, dir));
  const budget = vocabSize === undefined ? Infinity : vocabSize - specialTokens.length;
  if (trained.tokens.length >= DEFAULT_TRAINER_VOCAB && budget > DEFAULT_TRAINER_VOCAB) {
    throw new Error(`trainTextTokenizer: the tokenizers Node binding's default trainer stops at ${DEFAULT_TRAINER_VOCAB} tokens; pass vocabSize ≤ ${DEFAULT_TRAINER_VOCAB + specialTokens.length}`);
  }
  const { tokens, merges } = kind === "bpe" ? truncateBpe(trained, budget, specialTokens.length) : { tokens: trained.tokens.slice(0, budget), merges: [] };

  // Specials first, then the trained tokens in the trainer's order (WordLevel: most frequent
  // first; BPE: alphabet, then merge results in merge order).
  const vocab: Record<string, number> = {};
  for (const t of [...specialTokens, ...tokens]) if (!Object.hasOwn(vocab, t)) vocab[t] = Object.keys(vocab).length;
  const model = kind === "bpe" ? native.BPE.init(vocab, merges, { unkToken: UNK }) : native.WordLevel.init(vocab, { unkToken: UNK });
  const tok = configure(native, new native.Tokenizer(model), kind);
  if (kind === "bpe") tok.setDecoder(native.metaspaceDecoder(WORD_START, "always", true));
  tok.addSpecialTokens([...specialTokens]);
  return withTempDir(async (dir) => {
    tok.save(join(dir, "tokenizer.json"), true);
    return readFile(join(dir, "tokenizer.json"), "utf8");
  });
}

/**
 * Lowercase, then split on whitespace and on runs of punctuation ("seven," → "seven", ",").
 * BPE also marks each word's start with ▁ so subwords decode back to words. Punctuation runs
 * stay whole ("Contiguous") because that is what the JS reader does, whatever the setting.
 */
function configure(native: Native, tok: InstanceType<Native["Tokenizer"]>, kind: TextTokenizerKind): InstanceType<Native["Tokenizer"]> {
  tok.setNormalizer(native.lowercase());
  const words = native.whitespaceSplitPreTokenizer();
  const punctuation = native.punctuationPreTokenizer("contiguous");
  tok.setPreTokenizer(
    kind === "bpe"
      ? native.sequencePreTokenizer([words, native.metaspacePreTokenizer(WORD_START, "always", true), punctuation])
      : native.sequencePreTokenizer([words, punctuation]),
  );
  return tok;
}

/** Run the library's default trainer for `kind` over `corpus`; tokens are listed by trained id. */
async function trainModel(native: Native, kind: TextTokenizerKind, corpus: readonly string[], dir: string): Promise<Trained> {
  const tok = configure(native, new native.Tokenizer(kind === "bpe" ? native.BPE.empty() : native.WordLevel.empty()), kind);
  const corpusPath = join(dir, "corpus.txt");
  await writeFile(corpusPath, corpus.join("\n"));
  tok.train([corpusPath]);
  // The binding has no getter for merges: read the model back from its own tokenizer.json.
  tok.save(join(dir, "trained.json"), false);
  const model = (JSON.parse(await readFile(join(dir, "trained.json"), "utf8")) as { model: { vocab: Record<string, number>; merges?: [string, string][] } }).model;
  const tokens = Object.entries(model.vocab).sort((a, b) => a[1] - b[1]).map(([t]) => t);
  return { tokens, merges: model.merges ?? [] };
}

/**
 * Keep the first `budget` BPE tokens and the merges made before the first dropped token: what
 * BpeTrainer would have produced with that vocab_size (it learns merges greedily, in order).
 */
function truncateBpe({ tokens, merges }: Trained, budget: number, specials: number): Trained {
  const firstMerge = merges[0];
  const alphabet = firstMerge === undefined ? tokens.length : tokens.indexOf(firstMerge[0] + firstMerge[1]);
  if (budget < alphabet) throw new Error(`trainTextTokenizer: vocabSize must be ≥ ${specials + alphabet} for BPE (${specials} special tokens + ${alphabet} characters in the corpus), got ${specials + budget}`);
  const kept = tokens.slice(0, budget);
  const keptSet = new Set(kept);
  const cut = merges.findIndex(([a, b]) => !keptSet.has(a + b));
  return { tokens: kept, merges: cut < 0 ? merges : merges.slice(0, cut) };
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "mmntp-tok-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

