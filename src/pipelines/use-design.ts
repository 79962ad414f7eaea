/**
 * Using a design run (design-run.ts): caption PNG files with a captioning preset's model
 * (llava-mnist, transfusion-mnist), draw a grid of images for a caption with a generating one
 * (mar-mnist, transfusion-mnist). The counterpart of use-run.ts, for the demo's runs.
 */
import { startEngine } from "../engine/index.ts";
import type { ImageSet } from "../data/types.ts";
import { InputError } from "../io/errors.ts";
import { readGrayImage, writeGrayGrid } from "../io/png.ts";
import type { DiffusionSampling } from "../generate/diffusion.ts";
import { captionImages } from "./continuous.ts";
import { sampleMar } from "./mar.ts";
import { captionTransfusion, sampleTransfusion } from "./transfusion.ts";
import { disposeDesignRun, loadDesignRun, type DesignModel } from "./design-run.ts";
import { CAPTIONING_PRESETS, GENERATING_PRESETS } from "./design-presets.ts";

const cannotCaption = (preset: string) =>
  new InputError(`a ${preset} run draws images and does not caption them; caption with a run of ${CAPTIONING_PRESETS.join(" or ")} (\`mmntp train --preset ${CAPTIONING_PRESETS[0]}\`)`, { field: "run", value: preset, expected: CAPTIONING_PRESETS.join(", ") });

/** Greedy captions of `images`, one per image; an InputError for a run that does not caption. */
export async function captionDesign(run: DesignModel, images: ImageSet): Promise<string[]> {
  if (run.preset === "llava-mnist") return captionImages(run.model, images);
  if (run.preset === "transfusion-mnist") return (await captionTransfusion(run.model, images)).map((ids) => run.model.text.decodeText(ids));
  throw cannotCaption(run.preset);
}

/** How `generateWithDesign` draws; absent settings are the run's config's (`sampling`). */
export type DesignGenerateOptions = {
  readonly count: number;
  readonly seed: number;
  /** S, the denoising steps per image (MAR: per token) */
  readonly steps?: number;
  readonly guidance?: number;
  readonly temperature?: number;
};

/** The run's sampling with the user's settings over it; InputErrors name the flag. */
function samplingOf(run: DesignModel & { preset: "mar-mnist" | "transfusion-mnist" }, opts: DesignGenerateOptions): DiffusionSampling {
  const { sampling } = run.model.config;
  const t = run.model.schedule.steps;
  if (opts.steps !== undefined && (!Number.isInteger(opts.steps) || opts.steps < 1 || opts.steps > t)) {
    throw new InputError(`--steps must be an integer in [1, ${t}] (this run's diffusion steps T), got ${opts.steps}`, { field: "steps", value: opts.steps, expected: `an integer in [1, ${t}]` });
  }
  if (opts.temperature !== undefined && !(opts.temperature > 0 && Number.isFinite(opts.temperature))) {
    throw new InputError(`--temperature must be a finite number > 0 for a ${run.preset} run (it scales each denoising step's noise), got ${opts.temperature}`, { field: "temperature", value: opts.temperature });
  }
  return { ...sampling, ...(opts.steps !== undefined && { steps: opts.steps }), ...(opts.guidance !== undefined && { guidance: opts.guidance }), ...(opts.temperature !== undefined && { temperature: opts.temperature }) };
}

/** Caption each PNG (`files`: paths, of the run's image size) with the design run in `dir`; one caption per file, in order. */
export async function captionFilesWithDesign(dir: string, files: readonly string[]): Promise<{ file: string; caption: string }[]> {
  if (files.length === 0) throw new InputError("caption: no images given");
  await startEngine();
  const run = await loadDesignRun(dir);
  try {
    if (!CAPTIONING_PRESETS.includes(run.preset)) throw cannotCaption(run.preset);
    const { channels, height, width } = run.model.config.image;
    if (channels !== 1) throw new InputError(`${dir}: this run's images have ${channels} channels; caption reads grayscale PNGs only`, { file: dir });
    const pixels = files.map((f) => readGrayImage(f, { height, width }));
    const images = new Float32Array(files.length * height * width);
    pixels.forEach((p, i) => images.set(p, i * height * width));
    const captions = await captionDesign(run, { images, labels: new Int32Array(files.length), n: files.length, height, width });
    return files.map((file, i) => ({ file, caption: captions[i]! }));
  } finally {
    disposeDesignRun(run);
  }
}

/**
 * Draw `count` images for `prompt` with the design run in `dir` into the PNG grid `outPath` (8
 * columns at most). The seed fixes the images.
 */
export async function generateWithDesign(dir: string, prompt: string, outPath: string, opts: DesignGenerateOptions): Promise<{ file: string; count: number; preset: string; sampling: DiffusionSampling }> {
  await startEngine();
  const run = await loadDesignRun(dir);
  try {
    if (run.preset === "llava-mnist") {
      throw new InputError(`a ${run.preset} run captions images and does not draw them; generate with a run of ${GENERATING_PRESETS.join(" or ")} (\`mmntp train --preset ${GENERATING_PRESETS[0]}\`)`, { field: "run", value: run.preset, expected: GENERATING_PRESETS.join(", ") });
    }
    const { text, layout, config } = run.model;
    const words = text.encodeText(prompt);
    if (words.length === 0) throw new InputError("the prompt is empty");
    const unknown = prompt.split(/\s+/).filter((w) => w !== "" && text.encodeText(w).includes(text.unkId));
    if (unknown.length > 0) throw new InputError(`the prompt has ${unknown.length > 1 ? "words" : "a word"} the model never saw: ${unknown.slice(0, 5).map((w) => JSON.stringify(w.slice(0, 40))).join(", ")}; try e.g. "a handwritten 7"`);
    if (words.length > layout.captionLength) throw new InputError(`the prompt has ${words.length} tokens; this run's captions hold at most ${layout.captionLength}`);
    const sampling = samplingOf(run, opts);
    const captions = globalThis.Array.from({ length: opts.count }, () => words);
    const images = run.preset === "mar-mnist" ? await sampleMar(run.model, captions, { seed: opts.seed, sampling }) : await sampleTransfusion(run.model, captions, { seed: opts.seed, sampling });
    const { height, width } = config.image;
    writeGrayGrid(outPath, images, { height, width, count: opts.count, cols: Math.min(opts.count, 8) });
    return { file: outPath, count: opts.count, preset: run.preset, sampling };
  } finally {
    disposeDesignRun(run);
  }
}
