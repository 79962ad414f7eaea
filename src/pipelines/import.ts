/**
 * `mmntp import CKPT --run RUN --out NEW`: a backbone trained elsewhere (a folder as `mmntp export`
 * writes it, or as reference/train_torch.py writes back: config.json + model.safetensors under
 * PyTorch names) goes back into a run folder beside the run's own tokenizers, vocabulary, layout
 * and judge, so `caption`, `generate` and `evaluate` use it. Everything is checked before a weight
 * is built: the format, the model config against the run's (field by field), every tensor's name,
 * shape and dtype (backbone/torch-names.ts), finite values; each refusal is an InputError naming
 * the file and the field or tensor. The new run is committed by `saveRun` (atomic).
 */
import { join } from "node:path";
import { startEngine, tree } from "../engine/index.ts";
import { paramsOfInit } from "../engine/params.ts";
import { decodeSafetensorsAt, readRegularFile } from "../io/checkpoint.ts";
import { asInputError, InputError, parseJson } from "../io/errors.ts";
import { backboneFromTorch } from "../backbone/torch-names.ts";
import { checkTransformerConfig, initTransformerForShapes, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { TORCH_FORMAT, TORCH_VERSION } from "./export.ts";
import { disposeRun, loadRun, saveRun } from "./run.ts";

export type ImportResult = { readonly dir: string; readonly from: string; readonly parameters: number; readonly digest: string };

/** config.json's `model`, checked: a valid config equal to `want` in every field. */
function readModelConfig(file: string, want: TransformerConfig): TransformerConfig {
  const c = parseJson(readRegularFile(file, 2 ** 20).toString("utf8"), file) as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null || Array.isArray(c)) throw new InputError(`${file}: expected an object`, { file });
  if (c.format !== TORCH_FORMAT) throw new InputError(`${file}: format is ${JSON.stringify(c.format)}, expected "${TORCH_FORMAT}" (a folder written by \`mmntp export\` or reference/train_torch.py)`, { file, field: "format", value: c.format, expected: TORCH_FORMAT });
  if (c.version !== TORCH_VERSION) throw new InputError(`${file}: version ${JSON.stringify(c.version)} is not supported (this mmntp reads version ${TORCH_VERSION})`, { file, field: "version", value: c.version });
  const model = c.model;
  asInputError(() => checkTransformerConfig(model, `${file}: model`), { file });
  for (const key of Object.keys(want) as (keyof TransformerConfig)[]) {
    const got = (model as TransformerConfig)[key];
    if (got !== want[key]) throw new InputError(`${file}: model.${key} is ${JSON.stringify(got)}, but the run's model has ${JSON.stringify(want[key])}: the checkpoint was not trained from this run's model`, { file, field: `model.${key}`, value: got, expected: JSON.stringify(want[key]) });
  }
  const extra = Object.keys(model as object).filter((k) => !Object.hasOwn(want, k));
  if (extra.length > 0) throw new InputError(`${file}: model has unknown field${extra.length > 1 ? "s" : ""} ${extra.map((k) => JSON.stringify(k)).join(", ")}`, { file, field: `model.${extra[0]}` });
  return want;
}

/** Import the checkpoint folder `from` into a new run `outDir` made from the run in `runDir`. */
export async function importTorch(from: string, runDir: string, outDir: string): Promise<ImportResult> {
  await startEngine();
  const run = loadRun(runDir);
  let params: TransformerParams | undefined;
  try {
    if (run.order?.name === "random") throw new InputError(`${runDir}: a random-order run's model has a target-position table that PyTorch checkpoints do not carry`, { file: runDir, field: "order", value: "random" });
    const config = readModelConfig(join(from, "config.json"), run.model.config);
    const file = join(from, "model.safetensors");
    const tensors = decodeSafetensorsAt(file);
    params = paramsOfInit(backboneFromTorch(tensors, config, file), () => initTransformerForShapes(config), file);
    const parameters = Object.values(tensors).reduce((n, t) => n + t.data.length, 0);
    const manifest = await saveRun(outDir, { ...run, model: { params, config } });
    return { dir: outDir, from, parameters, digest: manifest.digest };
  } finally {
    if (params) tree.dispose(params);
    disposeRun(run);
  }
}
