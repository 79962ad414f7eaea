/**
 * A run folder at toy size, built from freshly initialized parts and committed by `saveRun`
 * (milliseconds, where the demo's toy training takes a minute): the fuzz, regression and kill
 * tests all load or overwrite it. Every part is as small as the validators allow, so a mutation
 * that is accepted still loads in a few milliseconds.
 */
import { readFileSync } from "node:fs";
import { startEngine, tree } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { initTransformer, type TransformerConfig } from "../../src/backbone/transformer.ts";
import { DEFAULT_PAIRED } from "../../src/backbone/sequence/presets.ts";
import { Judge, initJudge, type JudgeConfig } from "../../src/eval/judge.ts";
import { saveRun, type Run } from "../../src/pipelines/run.ts";
import { pairedVocab } from "../../src/pipelines/unified.ts";
import { AutoencoderTokenizer, type AutoencoderTokenizerConfig } from "../../src/tokenizers/image/autoencoder.ts";
import { TextTokenizer } from "../../src/tokenizers/text/text-tokenizer.ts";

export const TINY_IMAGE: AutoencoderTokenizerConfig = { height: 8, width: 8, channels: [4, 4], output: "linear", quantizer: { name: "vq", options: { codebookSize: 8, dim: 4 } } };
const TINY_JUDGE: JudgeConfig = { height: 8, width: 8, channels: 1, classes: 10 };
const DATASET = { name: "tiny", height: 8, width: 8, channels: 1, classes: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"] };

/** The kill test's transformer: large enough (3 MB of weights) that saving it takes tens of milliseconds. */
export const KILL_MODEL: Partial<TransformerConfig> = { dim: 128, layers: 4, heads: 4 };

/** The demo's caption tokenizer (test/fixtures), so prompts like "a handwritten 3" encode. */
const tokenizerJson = () => readFileSync(new URL("../fixtures/caption-tokenizer.json", import.meta.url), "utf8");

/**
 * A freshly initialized run; `seed` changes every weight and `model` the transformer's shape (the
 * kill test tells an old run from a new one by them). The caller disposes it (`disposeRun`).
 */
export async function tinyRun(seed = 0, model: Partial<TransformerConfig> = {}): Promise<Run> {
  await startEngine();
  const text = TextTokenizer.fromJSON(tokenizerJson());
  const image = AutoencoderTokenizer.init(TINY_IMAGE, seed);
  const vocab = pairedVocab(text, image.codebookSize);
  const config: TransformerConfig = { vocabSize: vocab.size, contextLength: 24, dim: 8, layers: 1, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned", ...model };
  const keys = new KeyStream(seed);
  const params = initTransformer(keys, config);
  keys.dispose();
  const judge = new Judge(initJudge(seed, TINY_JUDGE), TINY_JUDGE);
  return { dataset: DATASET, text, image, vocab, layout: DEFAULT_PAIRED, model: { params, config }, judge };
}

/** `tinyRun` saved into `dir` (over whatever run is there), then freed. */
export async function saveTinyRun(dir: string, seed = 0, model: Partial<TransformerConfig> = {}): Promise<void> {
  const run = await tinyRun(seed, model);
  try {
    await saveRun(dir, run);
  } finally {
    run.image.dispose();
    run.judge.dispose();
    tree.dispose(run.model.params);
  }
}
