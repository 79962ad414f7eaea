import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromHost, tree, type Array, type JsTree } from "../engine/index.ts";
import { KeyStream } from "../engine/rng.ts";
import { flattenTree, loadCheckpoint, saveCheckpoint, unflattenTree, writeAtomic } from "../io/checkpoint.ts";
import type { TensorRecord } from "../io/safetensors.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { initVQVAE, VQVAETokenizer, type VQVAEConfig } from "../tokenizers/image/vqvae.ts";
import type { Judge } from "../eval/judge.ts";
import type { LayoutOptions } from "../backbone/layout.ts";
import { initTransformer, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";

/** Device params → a checkpoint of host tensors under dotted names. Borrows `params`. */
async function saveParams(dir: string, name: string, params: JsTree<Array>, config: object): Promise<void> {
  const tensors: Record<string, TensorRecord> = {};
  for (const [k, arr] of Object.entries(flattenTree<Array>(params))) {
    const data = await arr.ref.data();
    tensors[k] = data instanceof Int32Array ? { dtype: "I32", shape: arr.shape, data } : { dtype: "F32", shape: arr.shape, data: data as Float32Array };
  }
  saveCheckpoint(dir, name, { tensors, config });
}

/** Load into the structure of `like` (disposed here), checking every name, shape and dtype. */
function loadParams<P extends JsTree<Array>>(dir: string, name: string, like: P): { params: P; config: unknown } {
  const expect = Object.fromEntries(
    Object.entries(flattenTree<Array>(like)).map(([k, a]) => [k, { shape: a.shape, dtype: a.dtype === "int32" ? ("I32" as const) : ("F32" as const) }]),
  );
  const { tensors, config } = loadCheckpoint(dir, name, { expect });
  tree.dispose(like);
  const arrays = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, fromHost(t.data as Float32Array | Int32Array, t.shape)]));
  return { params: unflattenTree(arrays) as P, config };
}

/** A saved run folder: tokenizer.json, vqvae.*, judge.*, model.* (safetensors + JSON config). */
export async function saveRun(
  dir: string,
  run: { text: string; vq: VQVAETokenizer; judge: Judge; model: { params: TransformerParams; config: TransformerConfig }; layout: LayoutOptions },
): Promise<void> {
  writeAtomic(join(dir, "tokenizer.json"), run.text);
  writeAtomic(join(dir, "layout.json"), JSON.stringify(run.layout, null, 2));
  await saveParams(dir, "vqvae", run.vq.params as JsTree<Array>, run.vq.config);
  await saveParams(dir, "judge", run.judge.params as JsTree<Array>, {});
  await saveParams(dir, "model", run.model.params as JsTree<Array>, run.model.config);
}

export type LoadedRun = { text: TextTokenizer; vq: VQVAETokenizer; model: { params: TransformerParams; config: TransformerConfig }; layout: LayoutOptions };

export function loadRun(dir: string): LoadedRun {
  const keys = new KeyStream(0);
  // Runs saved before ConvAEConfig.output existed were trained with the sigmoid head.
  const vqCfg = { output: "sigmoid", ...JSON.parse(readFileSync(join(dir, "vqvae.json"), "utf8")) } as VQVAEConfig;
  const vq = loadParams(dir, "vqvae", initVQVAE(keys, vqCfg));
  const modelCfg = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as TransformerConfig;
  const model = loadParams(dir, "model", initTransformer(keys, modelCfg));
  keys.dispose();
  return {
    text: TextTokenizer.fromJSON(readFileSync(join(dir, "tokenizer.json"), "utf8")),
    vq: new VQVAETokenizer(vq.params, vqCfg),
    model: { params: model.params, config: modelCfg },
    layout: JSON.parse(readFileSync(join(dir, "layout.json"), "utf8")) as LayoutOptions,
  };
}

export const disposeRun = (r: LoadedRun) => {
  r.vq.dispose();
  tree.dispose(r.model.params);
};
