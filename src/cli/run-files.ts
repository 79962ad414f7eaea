import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tree, type Array, type JsTree } from "../engine/index.ts";
import { KeyStream } from "../engine/rng.ts";
import { loadCheckpoint, saveCheckpoint, writeAtomic } from "../io/checkpoint.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { initVQVAE, VQVAETokenizer, type VQVAEConfig } from "../tokenizers/image/vqvae.ts";
import { initJudge, Judge } from "../eval/judge.ts";
import { initTransformer, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";

/** A saved run folder: tokenizer.json, vqvae.*, judge.*, model.* (safetensors + JSON config). */
export async function saveRun(
  dir: string,
  run: { text: string; vq: VQVAETokenizer; judge: Judge; model: { params: TransformerParams; config: TransformerConfig } },
): Promise<void> {
  writeAtomic(join(dir, "tokenizer.json"), run.text);
  await saveCheckpoint(dir, "vqvae", run.vq.params as JsTree<Array>, run.vq.config);
  await saveCheckpoint(dir, "judge", run.judge.params as JsTree<Array>, {});
  await saveCheckpoint(dir, "model", run.model.params as JsTree<Array>, run.model.config);
}

export type LoadedRun = { text: TextTokenizer; vq: VQVAETokenizer; model: { params: TransformerParams; config: TransformerConfig } };

export function loadRun(dir: string): LoadedRun {
  const keys = new KeyStream(0);
  const vqCfg = JSON.parse(readFileSync(join(dir, "vqvae.json"), "utf8")) as VQVAEConfig;
  const vq = loadCheckpoint(dir, "vqvae", initVQVAE(keys, vqCfg));
  const modelCfg = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as TransformerConfig;
  const model = loadCheckpoint(dir, "model", initTransformer(keys, modelCfg));
  keys.dispose();
  return {
    text: TextTokenizer.fromJSON(readFileSync(join(dir, "tokenizer.json"), "utf8")),
    vq: new VQVAETokenizer(vq.params, vqCfg),
    model: { params: model.params, config: modelCfg },
  };
}

export function loadJudge(dir: string): Judge {
  return new Judge(loadCheckpoint(dir, "judge", initJudge(0)).params);
}

export const disposeRun = (r: LoadedRun) => {
  r.vq.dispose();
  tree.dispose(r.model.params);
};
