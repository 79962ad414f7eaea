/** Using a saved run: caption images, draw images for a caption. */
import { startEngine } from "../engine/index.ts";
import { InputError } from "../io/errors.ts";
import { readGrayImage, writeGrayGrid } from "../io/png.ts";
import { mkdirSync } from "node:fs";
import { ORDER_NAMES, type OrderName, type TrainedOrder } from "../backbone/orders/training.ts";
import { Decoder } from "../generate/decode.ts";
import type { GuidanceSchedule } from "../generate/guidance.ts";
import { OrderDecoder, type DecodeOrder } from "../generate/order-decoder.ts";
import { GREEDY } from "../generate/sampling.ts";
import { generateWithOrder, previewRecorder, writePreviews } from "./orders.ts";
import { disposeRun, loadRun, type Run } from "./run.ts";
import { captionImages, pairedSequenceLengths } from "./unified.ts";
import { loadMnist, MNIST_INFO, splitTrainTest } from "../data/mnist.ts";
import { DEFAULT_DEMO, DEMO_SPLIT, tokenizeSet } from "./demo.ts";
import { evaluateUnified, type EvaluationConfig } from "./evaluate.ts";

/** Caption each PNG (`images`: paths) with the run in `runDir`; returns one caption per file, in order. */
export async function caption(runDir: string, images: readonly string[]): Promise<{ file: string; caption: string }[]> {
  if (images.length === 0) throw new InputError("caption: no images given");
  await startEngine();
  const run = loadRun(runDir);
  try {
    const { height, width } = run.dataset;
    const pixels = images.map((file) => readGrayImage(file, { height, width }));
    const ids = await run.image.encodeImages(concat(pixels), pixels.length);
    const t = run.image.tokensPerImage;
    const decoder = new Decoder(run.model.params, run.model.config);
    const out: { file: string; caption: string }[] = [];
    try {
      for (let i = 0; i < images.length; i += 100) {
        const batch = Array.from({ length: Math.min(100, images.length - i) }, (_, j) => Array.from(ids.subarray((i + j) * t, (i + j + 1) * t)));
        const captions = await captionImages(decoder, run.vocab, batch, run.image.tokenShape, { sampling: GREEDY, layout: run.layout });
        captions.forEach((c, j) => out.push({ file: images[i + j]!, caption: run.text.decodeText(c) }));
      }
    } finally {
      decoder.dispose();
    }
    return out;
  } finally {
    disposeRun(run);
  }
}

export type GenerateOptions = {
  count: number;
  temperature: number;
  topK: number;
  /** nucleus sampling: the smallest set of tokens whose probability reaches p (1 = off; default 1) */
  topP?: number;
  seed: number;
  guidance: number;
  /** how the guidance scale moves over the steps (default "constant") */
  guidanceSchedule?: GuidanceSchedule;
  /** the decoding order (default: the one the run's model was trained in) */
  order?: OrderName;
  /** MaskGIT's passes per image (default 8) */
  steps?: number;
  /** write the partial images after each step (PNG grids and steps.gif) into this folder */
  preview?: string;
};

/** What a run's model decodes: the order it was trained in (the demo's paired model: raster). */
export const trainedOrderOf = (run: Run): TrainedOrder => run.order ?? { name: "raster" };

/** The decode order for the user's options, or an InputError naming the bad value and what is allowed. */
export function decodeOrderFor(trained: TrainedOrder, opts: Pick<GenerateOptions, "order" | "steps">, tokens: number): DecodeOrder {
  const name = opts.order ?? trained.name;
  if (!ORDER_NAMES.includes(name)) throw new InputError(`--order must be one of ${ORDER_NAMES.join(", ")}, got ${JSON.stringify(name)}`, { field: "order", value: name });
  if (name !== trained.name) throw new InputError(`--order ${name}: this run's model was trained for the ${trained.name} order and decodes only that; train a ${name} model with \`mmntp experiment orders\` (runs/orders/${name})`, { field: "order", value: name, expected: trained.name });
  if (opts.steps !== undefined && name !== "maskgit") throw new InputError(`--steps applies to the maskgit order only (its passes per image); the ${name} order takes ${name === "next-scale" ? "one pass per scale" : "one pass per token"}`, { field: "steps", value: opts.steps });
  if (name === "maskgit") {
    const steps = opts.steps ?? 8;
    if (!Number.isInteger(steps) || steps < 1 || steps > tokens) throw new InputError(`--steps must be an integer in [1, ${tokens}] (the image's ${tokens} tokens, at least one revealed per pass), got ${steps}`, { field: "steps", value: steps });
    return { name, steps };
  }
  if (name === "random") return { name, order: "random" };
  return { name } as DecodeOrder;
}

/** Draw `count` images for `prompt` with the run in `runDir` into the PNG grid `outPath`. */
export async function generate(runDir: string, prompt: string, outPath: string, opts: GenerateOptions): Promise<{ file: string; count: number; order: string; previews?: string[] }> {
  await startEngine();
  const run = loadRun(runDir);
  try {
    const words = run.text.encodeText(prompt);
    if (words.length === 0) throw new InputError("the prompt is empty");
    const unknown = prompt.split(/\s+/).filter((w) => w !== "" && run.text.encodeText(w).includes(run.text.unkId));
    if (unknown.length > 0) throw new InputError(`the prompt has ${unknown.length > 1 ? "words" : "a word"} the model never saw: ${unknown.slice(0, 5).map((w) => JSON.stringify(w.slice(0, 40))).join(", ")}; try e.g. "a handwritten 7"`);
    const slot = run.layout.captionSlot;
    if (slot > 0 && words.length > slot) throw new InputError(`the prompt has ${words.length} tokens; this run's captions hold at most ${slot}`);
    // Without a caption slot the prompt's length is free: it must still fit the model's context.
    const room = run.model.config.contextLength + 1 - pairedSequenceLengths(run.layout, run.image.tokenShape, run.image.tokensPerImage).textToImage;
    if (slot === 0 && words.length > room) throw new InputError(`the prompt has ${words.length} tokens; this run's model has room for at most ${room}`);
    const trained = trainedOrderOf(run);
    const order = decodeOrderFor(trained, opts, run.image.tokensPerImage);
    const recorder = opts.preview === undefined ? undefined : await previewRecorder(run.image);
    const decoder = new OrderDecoder({ params: run.model.params, config: run.model.config, order: trained }, run.vocab);
    let codes: number[][];
    try {
      codes = await generateWithOrder(decoder, run.vocab, Array.from({ length: opts.count }, () => words), run.image.tokenShape, {
        order,
        sampling: { temperature: opts.temperature, topK: opts.topK, ...(opts.topP === undefined || opts.topP === 1 ? {} : { topP: opts.topP }) },
        seed: opts.seed,
        guidance: opts.guidance,
        ...(opts.guidanceSchedule ? { guidanceSchedule: opts.guidanceSchedule } : {}),
        layout: run.layout,
        ...(recorder ? { onStep: recorder.onStep } : {}),
      });
    } finally {
      decoder.dispose();
    }
    const images = await run.image.decodeImages(Int32Array.from(codes.flat()), opts.count);
    const { height, width } = run.dataset;
    const cols = Math.min(opts.count, 8);
    writeGrayGrid(outPath, images, { height, width, count: opts.count, cols });
    let previews: string[] | undefined;
    if (recorder && opts.preview !== undefined) {
      mkdirSync(opts.preview, { recursive: true });
      previews = writePreviews(opts.preview, recorder.frames, { height, width, count: opts.count, cols });
    }
    return { file: outPath, count: opts.count, order: order.name, ...(previews ? { previews } : {}) };
  } finally {
    disposeRun(run);
  }
}

export type RunEvaluation = {
  readonly caption_accuracy: number;
  readonly generation_accuracy: number;
  readonly generation_accuracy_by_digit: readonly number[];
  /** What was scored: the held-out split and the evaluation settings. */
  readonly test: { readonly testSize: number; readonly seed: number } & EvaluationConfig;
};

/**
 * The demo's held-out scores of the paired model in `runDir`: greedy captions of the first
 * `captionImages` held-out digits, and `samplesPerClass` guided samples per digit read by the run's
 * judge, with the demo's split and settings (`DEFAULT_DEMO`), so runs compare on equal terms (a run
 * continued in PyTorch and imported, say, against the run it came from).
 */
export async function evaluateRun(runDir: string, cfg: EvaluationConfig & { readonly seed: number } = DEFAULT_DEMO): Promise<RunEvaluation> {
  await startEngine();
  const run = loadRun(runDir);
  try {
    if (run.order) throw new InputError(`${runDir}: evaluate scores the demo's paired model (captions and images); this run holds a ${run.order.name}-order text→image model: see \`mmntp experiment orders\``, { file: runDir, field: "order", value: run.order.name });
    if (run.dataset.name !== MNIST_INFO.name) throw new InputError(`${runDir}: evaluate scores on the embedded MNIST digits' held-out split, but this run's data set is ${JSON.stringify(run.dataset.name)}`, { file: runDir, field: "dataset.name", value: run.dataset.name });
    const { test } = splitTrainTest(loadMnist(), DEMO_SPLIT);
    const decoder = new Decoder(run.model.params, run.model.config);
    try {
      const e = await evaluateUnified(decoder, run.vocab, run.text, run.image, run.judge, run.dataset, await tokenizeSet(run.image, test), { ...cfg, layout: run.layout });
      const { captionImages: c, samplesPerClass, temperature, topK, guidance } = cfg;
      return { caption_accuracy: e.captionAccuracy, generation_accuracy: e.generationAccuracy, generation_accuracy_by_digit: e.generationByClass, test: { ...DEMO_SPLIT, captionImages: c, samplesPerClass, temperature, topK, guidance } };
    } finally {
      decoder.dispose();
    }
  } finally {
    disposeRun(run);
  }
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}
