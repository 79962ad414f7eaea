import { beforeAll, describe, expect, it } from "vitest";
import { engineMemoryBytes, fromHost, np, startEngine, type Array as JaxArray } from "../../src/engine/node.ts";
import { hostRng, KeyStream } from "../../src/engine/rng.ts";
import { initTransformer, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { pairedBatch, pairedVocabOfSizes } from "../../src/pipelines/unified.ts";
import { nextTokenLoss } from "../../src/train/losses.ts";
import { Decoder } from "../../src/generate/decode.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";

beforeAll(startEngine);

/**
 * Memory soak: a training loop and a decoding loop must not leak device arrays. jax-js's wasm
 * heap only grows when its free lists can't serve an allocation, so after a warm-up it must stay
 * exactly flat; a loop that keeps one array per step (the control) must make it grow.
 */
describe("memory soak", () => {
  const vocab = pairedVocabOfSizes(10, 16);
  const cfg: TransformerConfig = { vocabSize: vocab.size, contextLength: 32, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" };
  const layout = { unconditionalImage: 0.25, captionSlot: 4, captionWeight: 2 };

  it("training steps and KV-cached decoding keep the wasm heap flat", async () => {
    const trainer = new Trainer(initTransformer(new KeyStream(0), cfg), (p, b) => nextTokenLoss(p as TransformerParams, b as never, cfg), DEFAULT_ADAMW);
    const rng = hostRng(1);
    const batch = () => {
      const captions = Array.from({ length: 8 }, () => [1 + Math.floor(rng() * 9), 1 + Math.floor(rng() * 9)]);
      const images = captions.map(() => Array.from({ length: 16 }, () => Math.floor(rng() * 16)));
      return pairedBatch(vocab, captions, images, [4, 4], cfg, layout);
    };
    const heap: number[] = [];
    for (let step = 0; step < 250; step++) {
      await trainer.step(batch(), 1e-3);
      if (step % 50 === 49) heap.push(engineMemoryBytes());
    }
    expect(heap[0]).toBeGreaterThan(0);
    expect(heap.slice(1)).toEqual(heap.slice(1).map(() => heap[0])); // flat after the first 50 steps

    const decoder = new Decoder(trainer.params as TransformerParams, cfg);
    const prompts = Array.from({ length: 4 }, () => [vocab.special("<bos>"), 1, 2, vocab.special("<boi>")]);
    const decodeHeap: number[] = [];
    for (let round = 0; round < 30; round++) {
      await decoder.generate(prompts, 16, { sampling: { temperature: 1, topK: 0 }, seed: round, guidance: { prompts: prompts.map(() => [vocab.special("<bos>"), 0, 0, vocab.special("<boi>")]), scale: 2 } });
      if (round % 10 === 9) decodeHeap.push(engineMemoryBytes());
    }
    expect(decodeHeap).toEqual(decodeHeap.map(() => decodeHeap[0]));
    decoder.dispose();
    trainer.dispose();
  });

  it("control: the heap measure does see a loop that leaks one array per step", () => {
    const before = engineMemoryBytes();
    const leaked: JaxArray[] = [];
    for (let i = 0; i < 64; i++) leaked.push(np.add(fromHost(new Float32Array(64 * 1024), [64 * 1024]), 1)); // 256 KiB each
    for (const a of leaked) a.ref.dataSync(); // make the kernels run (reading consumes one reference)
    expect(engineMemoryBytes()).toBeGreaterThanOrEqual(before + 8 * 1024 * 1024);
    for (const a of leaked) a.dispose();
  });
});
