/** Using a saved run: caption images, draw images for a caption. */
import { startEngine } from "../engine/index.ts";
import { InputError } from "../io/errors.ts";
import { readGrayImage, writeGrayGrid } from "../io/png.ts";
import { Decoder } from "../generate/decode.ts";
import { GREEDY } from "../generate/sampling.ts";
import { disposeRun, loadRun } from "./run.ts";
import { captionImages, generateImages, pairedSequenceLengths } from "./unified.ts";

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

export type GenerateOptions = { count: number; temperature: number; topK: number; seed: number; guidance: number };

/** Draw `count` images for `prompt` with the run in `runDir` into the PNG grid `outPath`. */
export async function generate(runDir: string, prompt: string, outPath: string, opts: GenerateOptions): Promise<{ file: string; count: number }> {
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
    const decoder = new Decoder(run.model.params, run.model.config);
    let codes: number[][];
    try {
      codes = await generateImages(decoder, run.vocab, Array.from({ length: opts.count }, () => words), run.image.tokenShape, {
        sampling: { temperature: opts.temperature, topK: opts.topK },
        seed: opts.seed,
        guidance: opts.guidance,
        layout: run.layout,
      });
    } finally {
      decoder.dispose();
    }
    const images = await run.image.decodeImages(Int32Array.from(codes.flat()), opts.count);
    const { height, width } = run.dataset;
    writeGrayGrid(outPath, images, { height, width, count: opts.count, cols: Math.min(opts.count, 8) });
    return { file: outPath, count: opts.count };
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
