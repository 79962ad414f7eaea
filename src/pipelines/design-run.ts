/**
 * Run folders of the three continuous-token designs that `mmntp train --preset NAME` trains on
 * the embedded MNIST digits (use-design.ts captions and draws with them):
 *
 *   llava-mnist        the continuous-input captioner (continuous.ts; LLaVA, Liu et al. 2023): captions
 *   mar-mnist          the MAR-style generator (mar.ts; Li et al. 2024): draws images from captions
 *   transfusion-mnist  one model of both directions (transfusion.ts; Zhou et al. 2024): both
 *
 * A folder holds everything its model needs, so it can be moved or shipped alone:
 *
 *   design.json        format, version, the preset, its full config, the caption length, the evaluation
 *   model.safetensors  the parameters; model.json: the transformer's config, checked against design.json's
 *   tokenizer.json     the text tokenizer (HF tokenizers format)
 *   samples.png        generators: the evaluation's samples, one column per digit
 *
 * A run is written whole into a sibling folder and then renamed into place (`saveDesignRun`).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { startEngine, type Array, type JsTree } from "../engine/index.ts";
import { paramsOfInit, paramsToTensors } from "../engine/params.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import { describeTransformer, type TransformerConfig } from "../backbone/transformer.ts";
import { cosineSchedule } from "../backbone/heads/diffusion-schedule.ts";
import { checkOutputFolder, loadCheckpoint, replaceFolder, saveCheckpoint, writeAtomic } from "../io/checkpoint.ts";
import { asInputError, InputError, parseJson } from "../io/errors.ts";
import { writeGrayGrid } from "../io/png.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { checkContinuousConfig, DEFAULT_CONTINUOUS, type ContinuousCaptionConfig } from "./continuous-config.ts";
import { backboneConfig, captionLayout, continuousVocab, initContinuousParams, type ContinuousParams } from "./continuous-model.ts";
import { disposeContinuousCaptioner, trainAndScoreContinuous, type ContinuousCaptioner, type ContinuousCaptionReport } from "./continuous.ts";
import { checkMarConfig, DEFAULT_MAR, type MarConfig } from "./mar-config.ts";
import { initMarParams, marBackboneConfig, marLayout, marVocab, type MarParams } from "./mar-model.ts";
import { disposeMar, trainAndScoreMar, type MarGenerator, type MarReport } from "./mar.ts";
import { checkTransfusionConfig, DEFAULT_TRANSFUSION, type TransfusionConfig } from "./transfusion-config.ts";
import { initTransfusionParams, transfusionBackboneConfig, transfusionLayout, transfusionVocab, type TransfusionParams } from "./transfusion-model.ts";
import { disposeTransfusion, trainAndScoreTransfusion, type TransfusionModel, type TransfusionReport } from "./transfusion.ts";
import { checkPreset, DESIGN_PRESETS, type DesignPreset } from "./design-presets.ts";

export const DESIGN_FORMAT = "mmntp-design";
export const DESIGN_VERSION = 1;

export { CAPTIONING_PRESETS, checkPreset, DESIGN_PRESETS, GENERATING_PRESETS, isDesignRun, type DesignPreset } from "./design-presets.ts";

export type DesignConfigs = { "llava-mnist": ContinuousCaptionConfig; "mar-mnist": MarConfig; "transfusion-mnist": TransfusionConfig };
export type DesignModels = { "llava-mnist": ContinuousCaptioner; "mar-mnist": MarGenerator; "transfusion-mnist": TransfusionModel };
/** The evaluation of a preset's training run, as its pipeline reports it (less the config, which design.json holds). */
export type DesignReports = { "llava-mnist": Omit<ContinuousCaptionReport, "config">; "mar-mnist": Omit<MarReport, "config">; "transfusion-mnist": Omit<TransfusionReport, "config"> };
export type DesignReport = DesignReports[DesignPreset];

export type DesignManifest = {
  format: typeof DESIGN_FORMAT;
  version: number;
  preset: DesignPreset;
  config: DesignConfigs[DesignPreset];
  /** M, the longest caption in text tokens: it fixes every sequence's layout */
  captionTokens: number;
  eval?: DesignReport;
};

/** A model under its preset. */
export type DesignModel = { [P in DesignPreset]: { readonly preset: P; readonly model: DesignModels[P] } }[DesignPreset];
/** A loaded (or just trained) run: the model (owned; `disposeDesignRun` frees it) and its manifest. */
export type DesignRun = DesignModel & { readonly manifest: DesignManifest };

export function disposeDesignRun(run: DesignModel): void {
  if (run.preset === "llava-mnist") disposeContinuousCaptioner(run.model);
  else if (run.preset === "mar-mnist") disposeMar(run.model);
  else disposeTransfusion(run.model);
}

/** `--quick`: this many training steps, and this many diffusion steps per sample. */
export const QUICK_STEPS = 20;
export const QUICK_SAMPLING_STEPS = 10;

/** The preset's config (`DEFAULT_CONTINUOUS`, `DEFAULT_MAR`, `DEFAULT_TRANSFUSION`); `quick`: a smoke test's few steps. */
export function designDefaults<P extends DesignPreset>(preset: P, { quick = false }: { quick?: boolean } = {}): DesignConfigs[P] {
  checkPreset(preset);
  const configs: DesignConfigs = quick
    ? {
        "llava-mnist": { ...DEFAULT_CONTINUOUS, steps: QUICK_STEPS, stages: DEFAULT_CONTINUOUS.stages.map((s) => ({ ...s, steps: QUICK_STEPS })) },
        "mar-mnist": { ...DEFAULT_MAR, steps: QUICK_STEPS, sampling: { ...DEFAULT_MAR.sampling, steps: QUICK_SAMPLING_STEPS } },
        "transfusion-mnist": { ...DEFAULT_TRANSFUSION, steps: QUICK_STEPS, sampling: { ...DEFAULT_TRANSFUSION.sampling, steps: QUICK_SAMPLING_STEPS } },
      }
    : { "llava-mnist": DEFAULT_CONTINUOUS, "mar-mnist": DEFAULT_MAR, "transfusion-mnist": DEFAULT_TRANSFUSION };
  return configs[preset];
}

/** Throws (InputError, naming the field) unless `cfg` is a valid config of `preset`. */
export function checkDesignConfig(preset: DesignPreset, cfg: unknown): void {
  if (typeof cfg !== "object" || cfg === null || globalThis.Array.isArray(cfg)) throw new InputError(`${preset} config: expected an object, got ${JSON.stringify(cfg)?.slice(0, 40)}`);
  const check = { "llava-mnist": checkContinuousConfig, "mar-mnist": checkMarConfig, "transfusion-mnist": checkTransfusionConfig }[preset] as (c: unknown) => void;
  asInputError(() => check(cfg));
}

/**
 * What a preset's model is made of besides its parameters, from the config and the text
 * tokenizer: the joint vocabulary, the transformer's config, fresh parameters (`init`), and the
 * model around given parameters (`build`). Throws (InputError) when the layout does not fit the context.
 */
function designParts(preset: DesignPreset, cfg: DesignConfigs[DesignPreset], text: TextTokenizer, captionTokens: number): { vocab: JointVocab; backbone: TransformerConfig; init: () => JsTree<Array>; build: (params: JsTree<Array>) => DesignRun["model"] } {
  if (preset === "llava-mnist") {
    const c = cfg as ContinuousCaptionConfig;
    const vocab = continuousVocab(text);
    const backbone = backboneConfig(c, vocab);
    const layout = captionLayout(vocab, c, captionTokens);
    return { vocab, backbone, init: () => initContinuousParams(c, vocab) as never, build: (params) => ({ config: c, backbone, vocab, text, layout, params: params as unknown as ContinuousParams }) };
  }
  if (preset === "mar-mnist") {
    const c = cfg as MarConfig;
    const vocab = marVocab(text);
    const backbone = marBackboneConfig(c, vocab);
    const layout = marLayout(vocab, c, captionTokens);
    return { vocab, backbone, init: () => initMarParams(c, vocab) as never, build: (params) => ({ config: c, backbone, vocab, text, layout, schedule: cosineSchedule(c.head.steps), params: params as unknown as MarParams }) };
  }
  const c = cfg as TransfusionConfig;
  const vocab = transfusionVocab(text);
  const backbone = transfusionBackboneConfig(c, vocab);
  const layout = transfusionLayout(vocab, c, captionTokens);
  return { vocab, backbone, init: () => initTransfusionParams(c, vocab) as never, build: (params) => ({ config: c, backbone, vocab, text, layout, schedule: cosineSchedule(c.diffusionSteps), params: params as unknown as TransfusionParams }) };
}

/** M of a model: the caption positions its layout holds. */
function captionTokensOf(run: DesignModel): number {
  return run.preset === "llava-mnist" ? run.model.layout.maxTokens - 1 : run.model.layout.captionLength;
}

/**
 * Write the run into a fresh sibling folder, then swap it in with renames: a crash leaves the
 * previous run (or none) at `dir`, never the tokenizer of one run beside the model of another.
 * `samples`: the evaluation's grid (`classGrid`, one column per digit), written as samples.png.
 */
export async function saveDesignRun(dir: string, run: DesignModel, extra: { eval?: DesignReport; samples?: Float32Array } = {}): Promise<DesignManifest> {
  const { config, text, backbone, params } = run.model;
  return replaceFolder(dir, async (tmp) => {
    saveCheckpoint(tmp, "model", { tensors: await paramsToTensors(params as never), config: backbone });
    writeAtomic(join(tmp, "tokenizer.json"), text.toJSON());
    if (extra.samples) writeGrayGrid(join(tmp, "samples.png"), extra.samples, { height: config.image.height, width: config.image.width, cols: 10 });
    const manifest: DesignManifest = { format: DESIGN_FORMAT, version: DESIGN_VERSION, preset: run.preset, config, captionTokens: captionTokensOf(run), ...(extra.eval && { eval: extra.eval }) };
    writeAtomic(join(tmp, "design.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  });
}

/** Runs `f`; an InputError from it is rethrown naming `file` (and `field`) first. */
function inFile<T>(file: string, field: string | undefined, f: () => T): T {
  try {
    return asInputError(f);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    throw new InputError(`${file}: ${e.message}`, { file, ...(field === undefined ? {} : { field }), cause: e });
  }
}

/** Load a folder written by `saveDesignRun`, checking each part against the others. The caller disposes it. */
export async function loadDesignRun(dir: string): Promise<DesignRun> {
  await startEngine();
  const file = join(dir, "design.json");
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`no run at ${dir}: not a folder (make one with \`mmntp train --preset ${DESIGN_PRESETS[0]} --out ${dir}\`)`, { file: dir });
  if (!existsSync(file)) throw new InputError(`${dir} is not a design run: ${file} is missing (make one with \`mmntp train --preset ${DESIGN_PRESETS[0]} --out ${dir}\`)`, { file });
  const m = parseJson(readFileSync(file, "utf8"), file) as Partial<DesignManifest> | null;
  if (typeof m !== "object" || m === null || m.format !== DESIGN_FORMAT) throw new InputError(`${file}: format is ${JSON.stringify(m?.format)}, expected "${DESIGN_FORMAT}"`, { file, field: "format", value: m?.format, expected: DESIGN_FORMAT });
  if (m.version !== DESIGN_VERSION) throw new InputError(`${file}: version ${JSON.stringify(m.version)}, this mmntp reads version ${DESIGN_VERSION}`, { file, field: "version", value: m.version });
  const preset = String(m.preset);
  inFile(file, "preset", () => checkPreset(preset));
  const cfg = m.config as DesignConfigs[DesignPreset];
  inFile(file, "config", () => checkDesignConfig(preset as DesignPreset, cfg));
  const captionTokens = m.captionTokens;
  if (!Number.isInteger(captionTokens) || captionTokens! < 1 || captionTokens! > 1024) throw new InputError(`${file}: captionTokens must be an integer in [1, 1024], got ${JSON.stringify(captionTokens)}`, { file, field: "captionTokens", value: captionTokens });
  const textFile = join(dir, "tokenizer.json");
  if (!existsSync(textFile)) throw new InputError(`${textFile} is missing (the run is incomplete)`, { file: textFile });
  const text = inFile(textFile, undefined, () => TextTokenizer.fromJSON(readFileSync(textFile, "utf8")));
  const parts = inFile(file, "config", () => designParts(preset as DesignPreset, cfg, text, captionTokens!));
  const { tensors, config } = loadCheckpoint(dir, "model");
  const modelFile = join(dir, "model.json");
  if (JSON.stringify(config) !== JSON.stringify(parts.backbone)) {
    throw new InputError(`${modelFile}: the checkpoint's transformer is ${JSON.stringify(config)?.slice(0, 200)}, but design.json's config and tokenizer.json make ${describeTransformer(parts.backbone)} (vocabSize ${parts.backbone.vocabSize})`, { file: modelFile });
  }
  const params = paramsOfInit(tensors, parts.init, join(dir, "model.safetensors"));
  return { preset, model: parts.build(params), manifest: m as DesignManifest } as DesignRun;
}

/** How much `trainDesignRun` evaluates: the pipelines' defaults (`runMarGeneration` …), or `QUICK_EVALUATION`. */
export type DesignEvaluation = { readonly samplesPerClass?: number; readonly judgeSteps?: number; readonly captionImages?: number };
export const QUICK_EVALUATION: DesignEvaluation = { samplesPerClass: 1, judgeSteps: 20, captionImages: 50 };

/**
 * Trains `preset` (with `config`, default the preset's) on the embedded MNIST digits outside the
 * demo's held-out split, evaluates it as its pipeline does (held-out caption accuracy for
 * captioners, judged generation accuracy for generators), and saves the run to `out`. The caller
 * disposes the returned run.
 */
export async function trainDesignRun<P extends DesignPreset>(preset: P, out: string, { config, evaluation = {} }: { config?: DesignConfigs[P]; evaluation?: DesignEvaluation } = {}): Promise<{ run: DesignRun; report: DesignReport }> {
  checkPreset(preset);
  const cfg = config ?? designDefaults(preset);
  checkDesignConfig(preset, cfg);
  checkOutputFolder(out);
  const { samplesPerClass, judgeSteps, captionImages } = evaluation;
  const opt = <K extends string, V>(k: K, v: V | undefined) => (v === undefined ? {} : ({ [k]: v } as Record<K, V>));
  let trained: { run: DesignModel; report: DesignReport & { config?: unknown }; grid?: Float32Array };
  if (preset === "llava-mnist") {
    const { model, report } = await trainAndScoreContinuous(cfg as ContinuousCaptionConfig, opt("captionImages", captionImages));
    trained = { run: { preset: "llava-mnist", model }, report };
  } else if (preset === "mar-mnist") {
    const { model, report, grid } = await trainAndScoreMar(cfg as MarConfig, { ...opt("samplesPerClass", samplesPerClass), ...opt("judgeSteps", judgeSteps) });
    trained = { run: { preset: "mar-mnist", model }, report, grid };
  } else {
    const { model, report, grid } = await trainAndScoreTransfusion(cfg as TransfusionConfig, { ...opt("samplesPerClass", samplesPerClass), ...opt("judgeSteps", judgeSteps), ...opt("captionImages", captionImages) });
    trained = { run: { preset: "transfusion-mnist", model }, report, grid };
  }
  const { config: _, ...report } = trained.report;
  try {
    const manifest = await saveDesignRun(out, trained.run, { eval: report, ...(trained.grid && { samples: trained.grid }) });
    return { run: { ...trained.run, manifest } as DesignRun, report };
  } catch (e) {
    disposeDesignRun(trained.run);
    throw e;
  }
}
