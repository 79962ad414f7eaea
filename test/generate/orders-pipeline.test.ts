import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEngine, tree } from "../../src/engine/index.ts";
import { allCaptions } from "../../src/data/captions.ts";
import { loadMnist } from "../../src/data/mnist.ts";
import { DEFAULT_PAIRED } from "../../src/backbone/sequence/presets.ts";
import type { TrainedOrder } from "../../src/backbone/orders/training.ts";
import { OrderDecoder, type DecodeOrder } from "../../src/generate/order-decoder.ts";
import { AutoencoderTokenizer } from "../../src/tokenizers/image/autoencoder.ts";
import { MNIST_VQVAE } from "../../src/tokenizers/image/presets.ts";
import { TextTokenizer } from "../../src/tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../../src/tokenizers/text/train.ts";
import { MNIST_INFO } from "../../src/data/mnist.ts";
import { paramsToTensors } from "../../src/engine/params.ts";
import { initJudge, Judge } from "../../src/eval/judge.ts";
import { judgeConfigOf } from "../../src/pipelines/judge.ts";
import { disposeRun, loadRun, saveRun } from "../../src/pipelines/run.ts";
import { generate } from "../../src/pipelines/use-run.ts";
import { MAX_GENERATE_BATCH, generateWithOrder, orderVocab, previewRecorder, trainWithOrder, writePreviews } from "../../src/pipelines/orders.ts";

beforeAll(startEngine);
const tmp = mkdtempSync(join(tmpdir(), "mmntp-orders-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SCALES = [1, 2, 3, 5, 7];
const cases: { order: TrainedOrder; decode: DecodeOrder; quantizer: "vq" | "multiscale"; frames: number }[] = [
  { order: { name: "raster" }, decode: { name: "raster" }, quantizer: "vq", frames: 49 },
  { order: { name: "maskgit" }, decode: { name: "maskgit", steps: 4 }, quantizer: "vq", frames: 4 },
  { order: { name: "random" }, decode: { name: "random", order: "random" }, quantizer: "vq", frames: 49 },
  { order: { name: "next-scale", scales: SCALES }, decode: { name: "next-scale" }, quantizer: "multiscale", frames: 5 },
];

describe("pipelines/orders.ts: train a few steps in each order on MNIST tokens, generate with guidance, write previews", () => {
  it.each(cases)("$order.name", async ({ order, decode, quantizer, frames }) => {
    const text = TextTokenizer.fromJSON(await trainTextTokenizer(allCaptions()));
    const options = quantizer === "vq" ? { codebookSize: 16, dim: 16 } : { codebookSize: 16, dim: 16, scales: SCALES };
    const image = AutoencoderTokenizer.init({ ...MNIST_VQVAE, quantizer: { name: quantizer, options } }, 0);
    const mnist = loadMnist();
    const n = 32;
    const data = { ids: await image.encodeImages(mnist.images.slice(0, n * 784), n), labels: mnist.labels.slice(0, n), n, shape: image.tokenShape };
    const vocab = orderVocab(text, image.codebookSize);
    const model = { contextLength: order.name === "next-scale" ? 95 : 57, dim: 32, layers: 1, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" } as const;
    const cfg = { seed: 0, steps: 12, batchSize: 8, lr: 3e-3, model, layout: DEFAULT_PAIRED, order };
    if (order.name === "next-scale") {
      await expect(trainWithOrder(data, text, vocab, { ...cfg, order: { name: "next-scale", scales: [1, 2, 7] } })).rejects.toThrow("trainWithOrder: next-scale: scales [1, 2, 7] hold 54 tokens (Σ s²), but an image has 88");
      await expect(trainWithOrder(data, text, vocab, { ...cfg, model: { ...model, contextLength: 64 } })).rejects.toThrow("trainWithOrder: the next-scale order needs a context of 95 (a prompt of 8 and 88 image tokens), got model.contextLength 64");
    }
    const trained = await trainWithOrder(data, text, vocab, cfg);
    const decoder = new OrderDecoder(trained, vocab);
    const recorder = await previewRecorder(image);
    const captions = [text.encodeText("a handwritten 3"), text.encodeText("a handwritten 7")];
    const codes = await generateWithOrder(decoder, vocab, captions, image.tokenShape, { order: decode, sampling: { temperature: 1, topK: 0, topP: 0.95 }, seed: 1, guidance: 2, guidanceSchedule: "linear", layout: DEFAULT_PAIRED, onStep: recorder.onStep });
    expect(codes.map((c) => c.length)).toEqual([data.ids.length / n, data.ids.length / n]);
    expect(codes.flat().every((c) => Number.isInteger(c) && c >= 0 && c < 16)).toBe(true);
    expect(recorder.frames.length).toBe(frames);
    expect(recorder.frames.every((f) => f.length === 2 * 784 && f.every(Number.isFinite))).toBe(true);
    if (order.name === "maskgit") {
      // More captions than one chunk: the first chunk's images are those of the chunk alone, and previews see every caption.
      const many = Array.from({ length: MAX_GENERATE_BATCH + 3 }, (_, i) => text.encodeText(`a handwritten ${i % 10}`));
      const seen: number[] = [];
      const opts = { order: decode, sampling: { temperature: 1, topK: 0 }, seed: 5, guidance: 2, layout: DEFAULT_PAIRED } as const;
      const all = await generateWithOrder(decoder, vocab, many, image.tokenShape, { ...opts, onStep: (p) => void seen.push(p.images.length) });
      const first = await generateWithOrder(decoder, vocab, many.slice(0, MAX_GENERATE_BATCH), image.tokenShape, opts);
      expect(all.slice(0, MAX_GENERATE_BATCH)).toEqual(first);
      expect(all).toHaveLength(MAX_GENERATE_BATCH + 3);
      expect(seen).toEqual([MAX_GENERATE_BATCH + 3, MAX_GENERATE_BATCH + 3, MAX_GENERATE_BATCH + 3, MAX_GENERATE_BATCH + 3]);
    }
    const dir = mkdtempSync(join(tmp, `${order.name}-`));
    writePreviews(dir, recorder.frames, { height: 28, width: 28, count: 2 });
    const files = readdirSync(dir).sort();
    expect(files.length).toBe(frames + 1);
    expect(files.at(-1)).toBe("steps.gif");
    expect(String.fromCharCode(...readFileSync(join(dir, "steps.gif")).subarray(0, 6))).toBe("GIF89a");
    decoder.dispose();

    // Saved as a run: loads back with its order, and `generate` decodes it (and only in that order).
    const runDir = join(tmp, `run-${order.name}`);
    const judge = new Judge(initJudge(0, judgeConfigOf(MNIST_INFO)), judgeConfigOf(MNIST_INFO));
    await saveRun(runDir, { dataset: MNIST_INFO, text, image, vocab, layout: DEFAULT_PAIRED, model: trained, judge, order });
    judge.dispose();
    const loaded = loadRun(runDir);
    expect(loaded.order).toEqual(order);
    const [a, b] = [await paramsToTensors(trained.params as never), await paramsToTensors(loaded.model.params as never)];
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const k of Object.keys(a)) expect(Array.from(b[k]!.data), k).toEqual(Array.from(a[k]!.data));
    disposeRun(loaded);
    const out = join(tmp, `${order.name}.png`);
    const steps = order.name === "maskgit" ? { steps: 3 } : {};
    const r = await generate(runDir, "a handwritten 5", out, { count: 2, temperature: 1, topK: 0, topP: 0.9, seed: 2, guidance: 2, guidanceSchedule: "linear", ...steps, preview: join(tmp, `preview-${order.name}`) });
    expect(r.order).toBe(order.name);
    expect(r.previews).toHaveLength((order.name === "maskgit" ? 3 : frames) + 1);
    const other = order.name === "raster" ? "maskgit" : "raster";
    await expect(generate(runDir, "a handwritten 5", out, { count: 1, temperature: 1, topK: 0, seed: 0, guidance: 1, order: other })).rejects.toThrow(`--order ${other}: this run's model was trained for the ${order.name} order and decodes only that`);
    if (order.name === "maskgit") await expect(generate(runDir, "a handwritten 5", out, { count: 1, temperature: 1, topK: 0, seed: 0, guidance: 1, steps: 50 })).rejects.toThrow("--steps must be an integer in [1, 49] (the image's 49 tokens, at least one revealed per pass), got 50");
    if (order.name === "next-scale") {
      // A manifest whose order's scales are not the tokenizer's (digest recomputed, as a careful forger would) is refused.
      const file = join(runDir, "run.json");
      const { digest: _, ...m } = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
      const forged = { ...m, order: { name: "next-scale", scales: [1, 2, 3, 4, 5, 7] } };
      writeFileSync(file, JSON.stringify({ ...forged, digest: createHash("sha256").update(JSON.stringify(forged)).digest("hex") }));
      expect(() => loadRun(runDir)).toThrow(`${file}: order.scales [1,2,3,4,5,7] must be the multi-scale image tokenizer's scales, got a multiscale tokenizer with scales [1,2,3,5,7]`);
    }
    tree.dispose(trained.params);
    image.dispose();
  });
});
