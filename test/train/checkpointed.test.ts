/**
 * CheckpointedTrainer (activation checkpointing per block) must train exactly as Trainer on
 * nextTokenLoss does — the same losses, gradient norms and parameters after several steps, for
 * each position kind, with loss weights, a non-causal mask and explicit positions — while its
 * training step needs less of the wasm heap.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { engineMemoryBytes, fromHost, startEngine, tree, type Array, type JsTree } from "../../src/engine/node.ts";
import { hostRng, KeyStream } from "../../src/engine/rng.ts";
import { initTransformer, type PositionKind, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { prefixMask } from "../../src/backbone/masks.ts";
import { nextTokenLoss, type NextTokenBatch } from "../../src/train/losses.ts";
import { CheckpointedTrainer } from "../../src/train/checkpointed.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";
import { relativeError } from "../helpers/values.ts";

beforeAll(startEngine);

/**
 * AdamW with eps 1 (≫ √v for these gradients) and no weight decay: updates ≈ lr·m, so they show
 * the gradients. With a small eps, Adam scales each entry to ±lr, and entries whose exact gradient
 * is 0 (the key bias without rope: softmax ignores a shift shared by all keys) would show float
 * rounding noise blown up to full steps.
 */
const SGD_LIKE = { ...DEFAULT_ADAMW, eps: 1, weightDecay: 0 };

const config = (positions: PositionKind, over: Partial<TransformerConfig> = {}): TransformerConfig => ({ vocabSize: 48, contextLength: 16, dim: 32, layers: 3, heads: 2, mlp: "gelu", mlpRatio: 2, positions, ...over });

type HostBatch = { inputs: Int32Array; targets: Int32Array; weights: Float32Array; positions?: Int32Array };

function hostBatch(cfg: TransformerConfig, b: number, t: number, seed: number, withPositions: boolean): HostBatch {
  const rng = hostRng(seed);
  const ints = () => Int32Array.from({ length: b * t }, () => Math.floor(rng() * cfg.vocabSize));
  const batch: HostBatch = { inputs: ints(), targets: ints(), weights: Float32Array.from({ length: b * t }, () => (rng() < 0.25 ? 0 : 0.5 + rng())) };
  // rope2d: a 4-wide grid's (row, column) ids; else each row's positions in a shuffled order
  if (withPositions && cfg.positions === "rope2d") batch.positions = Int32Array.from({ length: b * t * 2 }, (_, i) => (i % 2 === 0 ? Math.floor((i >> 1) % t / 4) : ((i >> 1) % t) % 4));
  else if (withPositions) batch.positions = Int32Array.from({ length: b * t }, (_, i) => (i * 7) % t);
  return batch;
}

function deviceBatch(h: HostBatch, cfg: TransformerConfig, b: number, t: number, mask: boolean): NextTokenBatch {
  const out: NextTokenBatch = { inputs: fromHost(h.inputs, [b, t]), targets: fromHost(h.targets, [b, t]), weights: fromHost(h.weights, [b, t]) };
  if (h.positions) out.positions = fromHost(h.positions, cfg.positions === "rope2d" ? [b, t, 2] : [b, t]);
  if (mask) out.mask = prefixMask(t, 5);
  return out;
}

const flat = async (p: TransformerParams) => Promise.all(tree.leaves(p as unknown as JsTree<Array>).map((a) => a.ref.data() as Promise<Float32Array>));

describe("CheckpointedTrainer", () => {
  const cases: [PositionKind, boolean, boolean][] = [
    ["learned", false, false],
    ["learned", true, true],
    ["rope", true, false],
    ["rope2d", false, true],
  ];
  for (const [positions, withPositions, mask] of cases) {
    it(`trains as Trainer does: ${positions} positions${withPositions ? ", explicit" : ""}${mask ? ", prefix mask" : ""}`, async () => {
      const cfg = config(positions, positions === "learned" ? {} : { mlp: "swiglu" });
      const [b, t] = [3, cfg.contextLength];
      const init = () => initTransformer(new KeyStream(3), cfg);
      const plain = new Trainer(init(), (p, x) => nextTokenLoss(p as TransformerParams, x as NextTokenBatch, cfg), SGD_LIKE);
      const ckpt = new CheckpointedTrainer(init(), cfg, SGD_LIKE);
      for (let step = 0; step < 3; step++) {
        const h = hostBatch(cfg, b, t, 10 + step, withPositions);
        const want = await plain.step(deviceBatch(h, cfg, b, t, mask), 0.5);
        const got = await ckpt.step(deviceBatch(h, cfg, b, t, mask), 0.5);
        expect(Math.abs(got.loss - want.loss) / want.loss).toBeLessThan(1e-5);
        expect(Math.abs(got.gradNorm - want.gradNorm) / want.gradNorm).toBeLessThan(1e-4);
        expect(got.loss).toBeGreaterThan(0);
      }
      const [a, w, start] = [await flat(ckpt.params), await flat(plain.params as TransformerParams), await flat(init())];
      expect(a.length).toBe(w.length);
      // every tensor's update (the embeddings', each block's, the head's) is the same; a missed gradient would leave one at zero
      a.forEach((x, i) => {
        const update = (y: Float32Array) => y.map((v, j) => v - start[i]![j]!);
        expect(relativeError(update(x), update(w[i]!))).toBeLessThan(1e-3);
      });
      plain.dispose();
      ckpt.dispose();
    });
  }

  it("a step's heap high-water mark is lower than Trainer's, and does not grow over steps", async () => {
    // activations dominate: 6 blocks of [8, 128, 64] with 4 heads' [8, 4, 128, 128] scores
    const cfg: TransformerConfig = { vocabSize: 64, contextLength: 128, dim: 64, layers: 6, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "learned" };
    const [b, t] = [8, cfg.contextLength];
    const h = hostBatch(cfg, b, t, 1, false);
    const ckpt = new CheckpointedTrainer(initTransformer(new KeyStream(0), cfg), cfg);
    await ckpt.step(deviceBatch(h, cfg, b, t, false), 1e-3);
    const before = engineMemoryBytes();
    for (let i = 0; i < 3; i++) await ckpt.step(deviceBatch(h, cfg, b, t, false), 1e-3);
    const checkpointed = engineMemoryBytes();
    expect(checkpointed).toBe(before);
    const params = ckpt.release();
    const plain = new Trainer(params, (p, x) => nextTokenLoss(p as TransformerParams, x as NextTokenBatch, cfg));
    await plain.step(deviceBatch(h, cfg, b, t, false), 1e-3);
    // the plain step had to grow the heap past the checkpointed one's high-water mark, by more than the block activations it keeps
    const growth = (engineMemoryBytes() - checkpointed) / 2 ** 20;
    expect(growth).toBeGreaterThan(16);
    console.log(`heap growth of the plain step past the checkpointed one: ${growth.toFixed(1)} MiB`);
    plain.dispose();
  });
});
