/**
 * A run folder: everything `caption` and `generate` need, committed whole.
 *
 *   runs/NAME/run.json                      the manifest, written last (atomically): which
 *                                           checkpoint is current, the sha-256 of each of its files,
 *                                           the data set, the joint vocabulary and the layout
 *   runs/NAME/checkpoints/<id>/             tokenizer.json (HF), image-tokenizer.{safetensors,json},
 *                                           model.{safetensors,json}, judge.{safetensors,json}
 *   runs/NAME/{recon,samples}.png, metrics.json   pictures and figures, written after the commit
 *
 * Saving writes a new checkpoint folder under a temporary name, syncs it, renames it into place,
 * then replaces run.json, then deletes older checkpoints: a kill at any point leaves the previous
 * manifest with its intact checkpoint, or the new one, never a mix. Loading refuses a checkpoint
 * whose files do not match the manifest's hashes, and checks every config against the others
 * (vocabulary sizes, shapes) before allocating any weight.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tree, type Array, type JsTree } from "../engine/index.ts";
import { paramsLike, paramsToTensors } from "../engine/params.ts";
import { KeyStream } from "../engine/rng.ts";
import type { DatasetInfo } from "../data/types.ts";
import { encodeSafetensors, decodeSafetensors, type TensorRecord } from "../io/safetensors.ts";
import { fsyncDir, writeAtomic } from "../io/checkpoint.ts";
import { checkPairedLayout, type PairedLayout } from "../backbone/sequence/presets.ts";
import { JointVocab, type VocabJSON } from "../backbone/sequence/vocab.ts";
import { checkTransformerConfig, countParameters, initTransformer, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { Judge, checkJudgeConfig, initJudge, type JudgeConfig, type JudgeParams } from "../eval/judge.ts";
import { AutoencoderTokenizer } from "../tokenizers/image/autoencoder.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";

export const RUN_FORMAT = "mmntp-run";
export const RUN_VERSION = 2;

export type RunManifest = {
  readonly format: typeof RUN_FORMAT;
  readonly version: number;
  /** The current checkpoint folder, relative to the run folder. */
  readonly checkpoint: string;
  /** sha-256 (hex) of every file of the checkpoint, by name. */
  readonly files: Readonly<Record<string, string>>;
  readonly dataset: DatasetInfo;
  readonly vocab: VocabJSON;
  readonly layout: PairedLayout;
  readonly created: string;
};

/** What a run holds (the caller keeps ownership of what it passes to `saveRun`). */
export type Run = {
  readonly dataset: DatasetInfo;
  readonly text: TextTokenizer;
  readonly image: AutoencoderTokenizer;
  readonly vocab: JointVocab;
  readonly layout: PairedLayout;
  readonly model: { readonly params: TransformerParams; readonly config: TransformerConfig };
  readonly judge: Judge;
};

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/** Write `run` into `dir` as a new checkpoint and commit it (see the file comment). Borrows `run`. */
export async function saveRun(dir: string, run: Run): Promise<RunManifest> {
  checkRunConsistency(run.vocab, run.text, run.image, run.model.config, "saveRun");
  const files: Record<string, Uint8Array | string> = {
    "tokenizer.json": run.text.toJSON(),
    ...weights("image-tokenizer", (await run.image.save()).tensors, run.image.config),
    ...weights("model", await paramsToTensors(run.model.params as JsTree<Array>), run.model.config),
    ...weights("judge", await paramsToTensors(run.judge.params as JsTree<Array>), run.judge.config),
  };
  const root = join(dir, "checkpoints");
  mkdirSync(root, { recursive: true });
  const id = new Date().toISOString().replace(/[:.]/g, "-");
  const partial = join(root, `.${id}.partial`);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial);
  const hashes: Record<string, string> = {};
  for (const [name, bytes] of Object.entries(files)) {
    writeAtomic(join(partial, name), bytes);
    hashes[name] = sha256(bytes);
  }
  fsyncDir(partial);
  renameSync(partial, join(root, id));
  fsyncDir(root);
  const manifest: RunManifest = {
    format: RUN_FORMAT,
    version: RUN_VERSION,
    checkpoint: `checkpoints/${id}`,
    files: hashes,
    dataset: run.dataset,
    vocab: run.vocab.toJSON(),
    layout: run.layout,
    created: new Date().toISOString(),
  };
  writeAtomic(join(dir, "run.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  // Committed: older checkpoints and unfinished ones from killed saves can go.
  for (const entry of readdirSync(root)) if (entry !== id) rmSync(join(root, entry), { recursive: true, force: true });
  return manifest;
}

const weights = (name: string, tensors: Record<string, TensorRecord>, config: object) => ({
  [`${name}.safetensors`]: encodeSafetensors(tensors, { format: "mmntp", name }),
  [`${name}.json`]: `${JSON.stringify(config, null, 2)}\n`,
});

/** Load and check a run folder written by `saveRun`. The caller owns the result (`disposeRun`). */
export function loadRun(dir: string): Run & { manifest: RunManifest } {
  const manifestFile = join(dir, "run.json");
  if (!existsSync(dir)) throw new Error(`no run at ${dir}; run \`mmntp demo\` first or pass --run <dir>`);
  if (!existsSync(manifestFile)) {
    const legacy = existsSync(join(dir, "model.safetensors"));
    throw new Error(legacy ? `${dir} was written by an earlier mmntp (no run.json); run \`mmntp demo\` again to rebuild it` : `${dir} is not a run folder: ${manifestFile} is missing`);
  }
  const manifest = readManifest(manifestFile);
  const ckpt = join(dir, manifest.checkpoint);
  const read = (name: string): Buffer => {
    const file = join(ckpt, name);
    if (!Object.hasOwn(manifest.files, name)) throw new Error(`${manifestFile}: files has no entry for ${name}`);
    if (!existsSync(file)) throw new Error(`${file} is missing (the run is incomplete; run \`mmntp demo\` again)`);
    const bytes = readFileSync(file);
    if (sha256(bytes) !== manifest.files[name]) throw new Error(`${file} does not match run.json (sha-256 differs): the file changed after the run was saved`);
    return bytes;
  };
  const json = (name: string): unknown => {
    const text = read(name).toString("utf8");
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`${join(ckpt, name)}: invalid JSON: ${(e as Error).message}`);
    }
  };
  const tensors = (name: string) => {
    try {
      return decodeSafetensors(new Uint8Array(read(name))).tensors;
    } catch (e) {
      throw new Error(`${join(ckpt, name)}: ${(e as Error).message}`);
    }
  };

  const vocab = JointVocab.fromJSON(manifest.vocab);
  const text = TextTokenizer.fromJSON(read("tokenizer.json").toString("utf8"));
  if (text.tokenToId("<pad>") !== vocab.padId) throw new Error(`${manifestFile}: the vocabulary's pad id ${vocab.padId} is not the text tokenizer's <pad> (${text.tokenToId("<pad>")})`);
  const imageConfig = json("image-tokenizer.json");
  const modelConfig = json("model.json");
  checkTransformerConfig(modelConfig, `${join(ckpt, "model.json")}`);
  const judgeConfig = json("judge.json");
  checkJudgeConfig(judgeConfig, `${join(ckpt, "judge.json")}`);
  const modelTensors = tensors("model.safetensors");
  const stored = Object.values(modelTensors).reduce((n, t) => n + t.data.length, 0);
  const expected = countParameters(modelConfig);
  if (stored !== expected) throw new Error(`${join(ckpt, "model.safetensors")} holds ${stored} values, but model.json describes ${expected} parameters`);

  const image = AutoencoderTokenizer.fromSaved({ kind: "autoencoder", config: imageConfig as Record<string, unknown>, tensors: tensors("image-tokenizer.safetensors") }, join(ckpt, "image-tokenizer"));
  try {
    checkRunConsistency(vocab, text, image, modelConfig, manifestFile);
    const keys = new KeyStream(0);
    const params = paramsLike(modelTensors, initTransformer(keys, modelConfig), join(ckpt, "model.safetensors"));
    const judgeParams = paramsLike(tensors("judge.safetensors"), initJudge(0, judgeConfig as JudgeConfig), join(ckpt, "judge.safetensors"));
    keys.dispose();
    return { manifest, dataset: manifest.dataset, text, image, vocab, layout: manifest.layout, model: { params, config: modelConfig }, judge: new Judge(judgeParams as JudgeParams, judgeConfig) };
  } catch (e) {
    image.dispose();
    throw e;
  }
}

export function disposeRun(r: Run): void {
  r.image.dispose();
  r.judge.dispose();
  tree.dispose(r.model.params);
}

/** The tokenizers' sizes must be the vocabulary's ranges, and the model's vocabulary the joint one. */
function checkRunConsistency(vocab: JointVocab, text: TextTokenizer, image: AutoencoderTokenizer, model: TransformerConfig, where: string): void {
  const textRange = vocab.range("text");
  if (text.vocabSize !== textRange.end - textRange.start) throw new Error(`${where}: the text tokenizer has ${text.vocabSize} tokens, but the joint vocabulary reserves ${textRange.end - textRange.start} text ids`);
  const codes = vocab.modality("image").size;
  if (image.vocabSize !== codes) throw new Error(`${where}: the image tokenizer has ${image.vocabSize} codes, but the joint vocabulary reserves ${codes} image ids`);
  if (model.vocabSize !== vocab.size) throw new Error(`${where}: the model's vocabSize is ${model.vocabSize}, but the joint vocabulary has ${vocab.size} ids`);
}

function readManifest(file: string): RunManifest {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: invalid JSON: ${(e as Error).message}`);
  }
  if (typeof m !== "object" || m === null) throw new Error(`${file}: expected an object`);
  if (m.format !== RUN_FORMAT) throw new Error(`${file}: format is ${JSON.stringify(m.format)}, expected "${RUN_FORMAT}"`);
  if (m.version !== RUN_VERSION) throw new Error(`${file}: version ${JSON.stringify(m.version)} is not supported (this mmntp reads version ${RUN_VERSION})`);
  if (typeof m.checkpoint !== "string" || !/^checkpoints\/[\w.-]+$/.test(m.checkpoint)) throw new Error(`${file}: checkpoint must be "checkpoints/<id>", got ${JSON.stringify(m.checkpoint)}`);
  if (typeof m.files !== "object" || m.files === null) throw new Error(`${file}: files must map names to sha-256 hashes`);
  for (const [k, v] of Object.entries(m.files)) if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) throw new Error(`${file}: files.${k} must be a sha-256 hex digest, got ${JSON.stringify(v)}`);
  checkPairedLayout(m.layout, `${file}: layout`);
  checkDataset(m.dataset, `${file}: dataset`);
  return m as unknown as RunManifest;
}

function checkDataset(d: unknown, where: string): asserts d is DatasetInfo {
  const x = d as Record<string, unknown> | null;
  if (typeof x !== "object" || x === null) throw new Error(`${where}: expected an object`);
  if (typeof x.name !== "string") throw new Error(`${where}.name: expected a string, got ${JSON.stringify(x.name)}`);
  for (const k of ["height", "width", "channels"]) if (!Number.isInteger(x[k]) || (x[k] as number) < 1 || (x[k] as number) > 4096) throw new Error(`${where}.${k}: expected an integer in [1, 4096], got ${JSON.stringify(x[k])}`);
  if (!globalThis.Array.isArray(x.classes) || x.classes.length < 1 || !x.classes.every((c) => typeof c === "string")) throw new Error(`${where}.classes: expected a non-empty list of names`);
}
