import { startEngine } from "../engine/index.ts";
import { readGrayImage, writeGrayGrid } from "../io/png.ts";
import { JointVocab } from "../backbone/vocab.ts";
import { maxCaptionTokens } from "../backbone/layout.ts";
import { generateCaptions, generateImageTokens } from "../backbone/unified.ts";
import { Decoder } from "../generate/decode.ts";
import { GREEDY } from "../generate/sampling.ts";
import { disposeRun, loadRun } from "./run-files.ts";

/** Caption one PNG with a saved run. */
export async function caption(runDir: string, imagePath: string): Promise<string> {
  await startEngine();
  const image = readGrayImage(imagePath, { height: 28, width: 28 });
  const run = loadRun(runDir);
  const vocab = new JointVocab(run.text.vocabSize, run.vq.codebookSize, run.text.tokenToId("<pad>") ?? 0);
  const ids = await run.vq.encode(image, 1);
  const decoder = new Decoder(run.model.params, run.model.config);
  const [out] = await generateCaptions(decoder, vocab, [Array.from(ids)], maxCaptionTokens(run.layout), GREEDY, run.layout);
  decoder.dispose();
  const text = run.text.decode(out);
  disposeRun(run);
  return text;
}

/** Generate `count` images for a prompt into a PNG grid. */
export async function generate(runDir: string, prompt: string, outPath: string, opts: { count: number; temperature: number; seed: number; guidance: number }): Promise<void> {
  if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > 256) throw new Error(`--count must be an integer in [1, 256], got ${opts.count}`);
  await startEngine();
  const run = loadRun(runDir);
  const vocab = new JointVocab(run.text.vocabSize, run.vq.codebookSize, run.text.tokenToId("<pad>") ?? 0);
  const words = run.text.encode(prompt);
  const unk = run.text.tokenToId("<unk>");
  if (words.length === 0) throw new Error("the prompt is empty");
  if (words.some((id) => id === unk)) throw new Error(`the prompt "${prompt}" has words the model never saw; try e.g. "a handwritten 7"`);
  const decoder = new Decoder(run.model.params, run.model.config);
  const codes = await generateImageTokens(decoder, vocab, Array.from({ length: opts.count }, () => words), run.vq.tokensPerImage, { temperature: opts.temperature, topK: 0 }, opts.seed, opts.guidance, run.layout);
  decoder.dispose();
  const images = await run.vq.decode(Int32Array.from(codes.flat()), opts.count);
  writeGrayGrid(outPath, images, { height: 28, width: 28, count: opts.count, cols: Math.min(opts.count, 8) });
  disposeRun(run);
}
