import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
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
import { generateWithOrder, orderVocab, previewRecorder, trainWithOrder, writePreviews } from "../../src/pipelines/orders.ts";

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
    const dir = mkdtempSync(join(tmp, `${order.name}-`));
    writePreviews(dir, recorder.frames, { height: 28, width: 28, count: 2 });
    const files = readdirSync(dir).sort();
    expect(files.length).toBe(frames + 1);
    expect(files.at(-1)).toBe("steps.gif");
    expect(String.fromCharCode(...readFileSync(join(dir, "steps.gif")).subarray(0, 6))).toBe("GIF89a");
    decoder.dispose();
    tree.dispose(trained.params);
    image.dispose();
  });
});
