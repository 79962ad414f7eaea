/**
 * A run folder: everything `caption` and `generate` need, committed whole.
 *
 *   runs/NAME/run.json                      the manifest, written last (atomically): which
 *                                           checkpoint is current, the sha-256 of each of its files,
 *                                           the data set, the joint vocabulary, the layout, and the
 *                                           sha-256 of all that (`digest`: an edited manifest is refused)
 *   runs/NAME/checkpoints/<id>/             tokenizer.json (HF), image-tokenizer.{safetensors,json},
 *                                           model.{safetensors,json}, judge.{safetensors,json}
 *   runs/NAME/{recon,samples}.png, metrics.json   pictures and figures, written after the commit
 *
 * A run without `order` holds the demo's paired model (captions both ways, raster order); a run
 * with `order` holds a text→image model trained in that generation order (pipelines/orders.ts),
 * over the orders' vocabulary (with `<mask>`), which `generate` decodes in the orders it allows.
 *
 * Saving writes a new checkpoint folder under a temporary name, syncs it, renames it into place,
 * then replaces run.json, then deletes older checkpoints: a kill at any point leaves the previous
 * manifest with its intact checkpoint, or the new one, never a mix. Loading refuses a manifest
 * whose digest does not match, a checkpoint whose files do not match the manifest's hashes, and
 * checks every config against the others (vocabulary sizes, image sizes, the layout against the
 * context length) and every tensor against its config before allocating any weight. Every refusal
 * is an InputError naming the file.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tree, type Array, type JsTree } from "../engine/index.ts";
import { paramsOfInit, paramsToTensors } from "../engine/params.ts";
import { KeyStream } from "../engine/rng.ts";
import type { DatasetInfo } from "../data/types.ts";
import { encodeSafetensors, type TensorRecord } from "../io/safetensors.ts";
import { decodeSafetensorsAt, fsyncDir, readRegularFile, writeAtomic } from "../io/checkpoint.ts";
import { asInputError, InputError, parseJson } from "../io/errors.ts";
import { checkPairedLayout, type PairedLayout } from "../backbone/sequence/presets.ts";
import { JointVocab, type VocabJSON } from "../backbone/sequence/vocab.ts";
import { checkTransformerConfig, countParameters, initTransformer, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { Judge, checkJudgeConfig, initJudge, type JudgeConfig } from "../eval/judge.ts";
import { AutoencoderTokenizer, checkAutoencoderConfig, latentGrid, type AutoencoderTokenizerConfig } from "../tokenizers/image/autoencoder.ts";
import { makeQuantizer } from "../tokenizers/quantizers/registry.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { initTargetPositions, type OrderParams } from "../backbone/orders/forward.ts";
import { checkScales } from "../backbone/orders/next-scale.ts";
import type { TrainedOrder } from "../backbone/orders/training.ts";
import { checkTrainedOrder, orderLength } from "../generate/order-decoder.ts";
import { imagePrompt, orderVocab } from "./orders.ts";
import { pairedSequenceLengths, pairedVocab } from "./unified.ts";

export const RUN_FORMAT = "mmntp-run";
export const RUN_VERSION = 3;

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
  /** The generation order of a text→image model (absent: the demo's paired raster model). */
  readonly order?: TrainedOrder;
  readonly created: string;
  /** sha-256 (hex) of `JSON.stringify` of every other field, in this order. */
  readonly digest: string;
};

/** What a run holds (the caller keeps ownership of what it passes to `saveRun`). */
export type Run = {
  readonly dataset: DatasetInfo;
  readonly text: TextTokenizer;
  readonly image: AutoencoderTokenizer;
  readonly vocab: JointVocab;
  readonly layout: PairedLayout;
  readonly model: { readonly params: TransformerParams | OrderParams; readonly config: TransformerConfig };
  readonly judge: Judge;
  /** The order a text→image model was trained in; absent for the demo's paired model. */
  readonly order?: TrainedOrder;
};

/** run.json holds names, hashes and small configs: a few KB. */
const MAX_MANIFEST_BYTES = 2 ** 20;

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
  const fields: Omit<RunManifest, "digest"> = {
    format: RUN_FORMAT,
    version: RUN_VERSION,
    checkpoint: `checkpoints/${id}`,
    files: hashes,
    dataset: run.dataset,
    vocab: run.vocab.toJSON(),
    layout: run.layout,
    ...(run.order ? { order: run.order } : {}),
    created: new Date().toISOString(),
  };
  const manifest: RunManifest = { ...fields, digest: sha256(JSON.stringify(fields)) };
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
  if (!existsSync(dir)) throw new InputError(`no run at ${dir}; run \`mmntp demo\` first or pass --run <dir>`, { file: dir });
  if (!existsSync(manifestFile)) {
    const legacy = existsSync(join(dir, "model.safetensors"));
    throw new InputError(legacy ? `${dir} was written by an earlier mmntp (no run.json); run \`mmntp demo\` again to rebuild it` : `${dir} is not a run folder: ${manifestFile} is missing`, { file: manifestFile });
  }
  const manifest = readManifest(manifestFile);
  const ckpt = join(dir, manifest.checkpoint);
  const read = (name: string): Buffer => {
    const file = join(ckpt, name);
    if (!Object.hasOwn(manifest.files, name)) throw new InputError(`${manifestFile}: files has no entry for ${name}`, { file: manifestFile, field: "files" });
    if (!existsSync(file)) throw new InputError(`${file} is missing (the run is incomplete; run \`mmntp demo\` again)`, { file });
    const bytes = readRegularFile(file);
    if (sha256(bytes) !== manifest.files[name]) throw new InputError(`${file} does not match run.json (sha-256 differs): the file changed after the run was saved`, { file });
    return bytes;
  };
  const json = (name: string): unknown => parseJson(read(name).toString("utf8"), join(ckpt, name));
  const tensors = (name: string) => decodeSafetensorsAt(join(ckpt, name), new Uint8Array(read(name)));
  // Readers whose messages do not name the file (the vocabulary's, the text tokenizer's).
  const inFile = <T>(file: string, check: () => T): T => {
    try {
      return asInputError(check);
    } catch (e) {
      if (e instanceof InputError) throw new InputError(`${file}: ${e.message}`, { file, field: e.field, value: e.value, expected: e.expected, cause: e });
      throw e;
    }
  };

  const vocab = inFile(manifestFile, () => JointVocab.fromJSON(manifest.vocab));
  inFile(manifestFile, () => vocab.modality("image"));
  const textFile = join(ckpt, "tokenizer.json");
  const text = inFile(textFile, () => TextTokenizer.fromJSON(read("tokenizer.json").toString("utf8")));
  if (text.tokenToId("<pad>") !== vocab.padId) throw new InputError(`${manifestFile}: the vocabulary's pad id ${vocab.padId} is not the text tokenizer's <pad> (${text.tokenToId("<pad>")})`, { file: manifestFile, field: "vocab.text.pad" });
  const imageFile = join(ckpt, "image-tokenizer.json");
  const imageConfig = json("image-tokenizer.json");
  checkAutoencoderConfig(imageConfig, imageFile);
  const modelFile = join(ckpt, "model.json");
  const modelConfig = json("model.json");
  checkModelConfig(modelConfig, modelFile);
  const judgeFile = join(ckpt, "judge.json");
  const judgeConfig = json("judge.json");
  checkJudgeConfig(judgeConfig, judgeFile);
  checkSizes(manifest, imageConfig, judgeConfig, { manifestFile, imageFile, judgeFile });
  const modelTensors = tensors("model.safetensors");
  const stored = Object.values(modelTensors).reduce((n, t) => n + t.data.length, 0);
  const target = manifest.order?.name === "random" ? (imageTokens(imageConfig) + 1) * modelConfig.dim : 0;
  const expected = countParameters(modelConfig) + target;
  if (stored !== expected) throw new InputError(`${join(ckpt, "model.safetensors")} holds ${stored} values, but model.json describes ${expected} parameters`, { file: join(ckpt, "model.safetensors") });
  const imageTensors = tensors("image-tokenizer.safetensors");
  const judgeTensors = tensors("judge.safetensors");

  // Every tensor is checked against its config (traced, nothing allocated) before any is built.
  const image = AutoencoderTokenizer.fromSaved({ kind: "autoencoder", config: imageConfig, tensors: imageTensors }, join(ckpt, "image-tokenizer"));
  let params: OrderParams | undefined;
  try {
    checkRunConsistency(vocab, text, image, modelConfig, manifestFile);
    const order = manifest.order;
    if (order) {
      if (canonical(vocab.toJSON()) !== canonical(orderVocab(text, image.codebookSize).toJSON())) {
        throw new InputError(`${manifestFile}: vocab is not the orders' vocabulary (text ids, then <bos> <boi> <eoi> <eos> <mask>, then the image codes)`, { file: manifestFile, field: "vocab" });
      }
      checkOrderFits(order, vocab, manifest.layout, image, modelConfig, manifestFile);
    } else {
      if (canonical(vocab.toJSON()) !== canonical(pairedVocab(text, image.codebookSize).toJSON())) {
        throw new InputError(`${manifestFile}: vocab is not the paired layout's vocabulary (text ids, then <bos> <boi> <eoi> <eos>, then the image codes)`, { file: manifestFile, field: "vocab" });
      }
      checkLayoutFits(manifest.layout, image, modelConfig, manifestFile);
    }
    const init = (): OrderParams => {
      const keys = new KeyStream(0);
      const p: OrderParams = initTransformer(keys, modelConfig);
      if (order?.name === "random") p.target = initTargetPositions(keys, image.tokensPerImage, modelConfig.dim);
      keys.dispose();
      return p;
    };
    params = paramsOfInit(modelTensors, init, join(ckpt, "model.safetensors"));
    const judgeParams = paramsOfInit(judgeTensors, () => initJudge(0, judgeConfig), join(ckpt, "judge.safetensors"));
    return { manifest, dataset: manifest.dataset, text, image, vocab, layout: manifest.layout, model: { params, config: modelConfig }, judge: new Judge(judgeParams, judgeConfig), ...(order ? { order } : {}) };
  } catch (e) {
    image.dispose();
    if (params) tree.dispose(params);
    throw e;
  }
}

export function disposeRun(r: Run): void {
  r.image.dispose();
  r.judge.dispose();
  tree.dispose(r.model.params);
}

/** The backbone's checker, its refusal an InputError (the backbone's checks throw plain Errors). */
function checkModelConfig(c: unknown, file: string): asserts c is TransformerConfig {
  asInputError(() => checkTransformerConfig(c, file), { file });
}

/** The tokenizers' sizes must be the vocabulary's ranges, and the model's vocabulary the joint one. */
function checkRunConsistency(vocab: JointVocab, text: TextTokenizer, image: AutoencoderTokenizer, model: TransformerConfig, where: string): void {
  const textRange = vocab.range("text");
  if (text.vocabSize !== textRange.end - textRange.start) throw new InputError(`${where}: the text tokenizer has ${text.vocabSize} tokens, but the joint vocabulary reserves ${textRange.end - textRange.start} text ids`, { file: where });
  const codes = vocab.modality("image").size;
  if (image.vocabSize !== codes) throw new InputError(`${where}: the image tokenizer has ${image.vocabSize} codes, but the joint vocabulary reserves ${codes} image ids`, { file: where });
  if (model.vocabSize !== vocab.size) throw new InputError(`${where}: the model's vocabSize is ${model.vocabSize}, but the joint vocabulary has ${vocab.size} ids`, { file: where });
}

/** The data set's images are what the image tokenizer and the judge take, and the judge has one class per name. */
function checkSizes(m: RunManifest, image: AutoencoderTokenizerConfig, judge: JudgeConfig, files: { manifestFile: string; imageFile: string; judgeFile: string }): void {
  const d = m.dataset;
  const shape = (h: number, w: number, c: number) => `${c}×${h}×${w}`;
  const want = shape(d.height, d.width, d.channels);
  const imageShape = shape(image.height, image.width, image.imageChannels ?? 1);
  if (imageShape !== want) throw new InputError(`${files.imageFile}: the image tokenizer takes ${imageShape} images (C×H×W), but ${files.manifestFile} says the data set's are ${want}`, { file: files.imageFile, value: imageShape, expected: want });
  const judgeShape = shape(judge.height, judge.width, judge.channels);
  if (judgeShape !== want) throw new InputError(`${files.judgeFile}: the judge takes ${judgeShape} images (C×H×W), but ${files.manifestFile} says the data set's are ${want}`, { file: files.judgeFile, value: judgeShape, expected: want });
  if (judge.classes !== d.classes.length) throw new InputError(`${files.judgeFile}: classes is ${judge.classes}, but ${files.manifestFile} names ${d.classes.length} classes`, { file: files.judgeFile, field: "classes", value: judge.classes });
}

/** Both directions' sequences (a full caption slot, the longest caption to generate) fit the model's context. */
function checkLayoutFits(layout: PairedLayout, image: AutoencoderTokenizer, model: TransformerConfig, where: string): void {
  const { textToImage, imageToText } = pairedSequenceLengths(layout, image.tokenShape, image.tokensPerImage);
  const longest = Math.max(textToImage, imageToText);
  // The last token is never an input: a context of T holds sequences of T + 1.
  if (longest > model.contextLength + 1) {
    throw new InputError(`${where}: layout.captionSlot ${layout.captionSlot} makes sequences of ${longest} tokens, more than the model's contextLength ${model.contextLength} (+1) holds`, { file: where, field: "layout.captionSlot", value: layout.captionSlot });
  }
}

/** Image tokens per item of a checked auto-encoder config (traced; nothing allocated). */
function imageTokens(config: AutoencoderTokenizerConfig): number {
  return makeQuantizer(config.quantizer, latentGrid(config)).tokensPerImage;
}

/** A text→image model's order fits its tokenizer (next-scale: the quantizer's scales) and its context. */
function checkOrderFits(order: TrainedOrder, vocab: JointVocab, layout: PairedLayout, image: AutoencoderTokenizer, model: TransformerConfig, where: string): void {
  const n = image.tokensPerImage;
  if (order.name === "next-scale") {
    const scales = (image.config.quantizer.options as { scales?: unknown }).scales;
    if (image.quantizer.name !== "multiscale" || JSON.stringify(scales) !== JSON.stringify(order.scales)) {
      throw new InputError(`${where}: order.scales ${JSON.stringify(order.scales)} must be the multi-scale image tokenizer's scales, got a ${image.quantizer.name} tokenizer${scales ? ` with scales ${JSON.stringify(scales)}` : ""}`, { file: where, field: "order.scales", value: order.scales });
    }
    asInputError(() => checkScales(order.scales, n, `${where}: order`), { file: where });
  }
  if (!(layout.captionSlot > 0)) throw new InputError(`${where}: layout.captionSlot must be > 0 for a text→image order model (every prompt the same length), got ${layout.captionSlot}`, { file: where, field: "layout.captionSlot", value: layout.captionSlot });
  const need = orderLength(order.name, imagePrompt(vocab, [], image.tokenShape, layout).length, n);
  if (need > model.contextLength) throw new InputError(`${where}: the ${order.name} order needs a context of ${need}, but the model's contextLength is ${model.contextLength}`, { file: where, field: "order", value: order.name });
}

/** JSON with every object's keys sorted: equal values, equal text. */
const canonical = (x: unknown): string =>
  JSON.stringify(x, (_, v: unknown) => (typeof v === "object" && v !== null && !globalThis.Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));

function readManifest(file: string): RunManifest {
  const x = parseJson(readRegularFile(file, MAX_MANIFEST_BYTES).toString("utf8"), file);
  const fail = (field: string, message: string, value?: unknown): never => {
    throw new InputError(`${file}: ${field}${message}`, { file, field, value });
  };
  if (typeof x !== "object" || x === null || globalThis.Array.isArray(x)) return fail("", "expected an object");
  const m = x as Record<string, unknown>;
  if (m.format !== RUN_FORMAT) fail("format", ` is ${JSON.stringify(m.format)}, expected "${RUN_FORMAT}"`, m.format);
  if (m.version !== RUN_VERSION) fail("version", ` ${JSON.stringify(m.version)} is not supported (this mmntp reads version ${RUN_VERSION}); run \`mmntp demo\` again to rebuild the run`, m.version);
  const { digest, ...fields } = m;
  if (digest !== sha256(JSON.stringify(fields))) fail("digest", " does not match the manifest's content: run.json changed after the run was saved", digest);
  if (typeof m.checkpoint !== "string" || !/^checkpoints\/(?!\.\.?$)[\w.-]+$/.test(m.checkpoint)) fail("checkpoint", ` must be "checkpoints/<id>", got ${JSON.stringify(m.checkpoint)}`, m.checkpoint);
  if (typeof m.files !== "object" || m.files === null) fail("files", " must map names to sha-256 hashes");
  for (const [k, v] of Object.entries(m.files as object)) if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) fail(`files.${k}`, ` must be a sha-256 hex digest, got ${JSON.stringify(v)}`, v);
  asInputError(() => checkPairedLayout(m.layout, `${file}: layout`), { file });
  if (m.order !== undefined) asInputError(() => checkTrainedOrder(m.order, `${file}: order`), { file });
  checkDataset(m.dataset, `${file}: dataset`, file);
  return m as unknown as RunManifest;
}

function checkDataset(d: unknown, where: string, file: string): asserts d is DatasetInfo {
  const fail = (field: string, message: string): never => {
    throw new InputError(`${where}${field}: ${message}`, { file, field: `dataset${field}` });
  };
  const x = d as Record<string, unknown> | null;
  if (typeof x !== "object" || x === null) fail("", "expected an object");
  const o = x as Record<string, unknown>;
  if (typeof o.name !== "string") fail(".name", `expected a string, got ${JSON.stringify(o.name)}`);
  for (const k of ["height", "width", "channels"]) if (!Number.isInteger(o[k]) || (o[k] as number) < 1 || (o[k] as number) > 4096) fail(`.${k}`, `expected an integer in [1, 4096], got ${JSON.stringify(o[k])}`);
  if (!globalThis.Array.isArray(o.classes) || o.classes.length < 1 || !o.classes.every((c) => typeof c === "string")) fail(".classes", "expected a non-empty list of names");
}
