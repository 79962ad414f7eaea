import { readFileSync } from "node:fs";
import { KeyStream } from "../../src/engine/rng.ts";
import { MNIST_INFO } from "../../src/data/mnist.ts";
import { DEFAULT_PAIRED } from "../../src/backbone/sequence/presets.ts";
import { initTransformer, type TransformerConfig } from "../../src/backbone/transformer.ts";
import { Judge, initJudge } from "../../src/eval/judge.ts";
import type { Run } from "../../src/pipelines/run.ts";
import { pairedVocab } from "../../src/pipelines/unified.ts";
import { AutoencoderTokenizer } from "../../src/tokenizers/image/autoencoder.ts";
import { MNIST_VQVAE } from "../../src/tokenizers/image/presets.ts";
import { TextTokenizer } from "../../src/tokenizers/text/text-tokenizer.ts";

/**
 * A freshly initialized run on the MNIST digits' shapes (the demo's VQ tokenizer with fewer
 * channels, a small backbone, the demo's caption tokenizer): what export, import and evaluate
 * take, in milliseconds. The caller disposes it (`disposeRun`).
 */
export function mnistRun(model: Partial<TransformerConfig> = {}): Run {
  const text = TextTokenizer.fromJSON(readFileSync(new URL("../fixtures/caption-tokenizer.json", import.meta.url), "utf8"));
  const image = AutoencoderTokenizer.init({ ...MNIST_VQVAE, channels: [8, 8] }, 1);
  const vocab = pairedVocab(text, image.codebookSize);
  const config: TransformerConfig = { vocabSize: vocab.size, contextLength: 64, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned", ...model };
  const keys = new KeyStream(5);
  const params = initTransformer(keys, config);
  keys.dispose();
  const judgeConfig = { height: 28, width: 28, channels: 1, classes: 10 };
  return { dataset: MNIST_INFO, text, image, vocab, layout: DEFAULT_PAIRED, model: { params, config }, judge: new Judge(initJudge(2, judgeConfig), judgeConfig) };
}
