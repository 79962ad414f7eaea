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

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}
