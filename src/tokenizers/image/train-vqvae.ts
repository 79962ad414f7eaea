import { fromHost, tree } from "../../engine/index.ts";
import { hostRng, KeyStream } from "../../engine/rng.ts";
import { seededPermutation, subset } from "../../data/shuffle.ts";
import type { ImageSet } from "../../data/types.ts";
import { DEFAULT_ADAMW, warmupCosine } from "../../train/optim.ts";
import { Trainer } from "../../train/step.ts";
import { kmeans, restartDeadCodes } from "../quantizers/codebook-init.ts";
import { encodeLatents, initVQVAE, VQVAETokenizer, vqvaeLoss, type VQVAEConfig, type VQVAEParams } from "./vqvae.ts";

export type VQVAETrainConfig = {
  readonly steps: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly seed: number;
  /** Re-seed codes unused over this many steps from current encoder outputs; 0 = never. */
  readonly restartEvery: number;
  /** Initialize the codebook by k-means on the first batch's latents. */
  readonly kmeansInit: boolean;
};

export const DEFAULT_VQVAE_TRAIN: VQVAETrainConfig = { steps: 600, batchSize: 64, lr: 2e-3, seed: 0, restartEvery: 50, kmeansInit: true };

export type TrainProgress = (step: number, fields: Record<string, number>) => void;

/** The images of `order[start .. start + size)`, as one [size·H·W] array. */
const batchOf = (set: ImageSet, order: Int32Array, start: number, size: number) => subset(set, order.subarray(start, start + size)).images;

/** Encoder outputs for a batch, as host [N·h·w, D] rows (for k-means and restarts). */
async function latentRows(params: VQVAEParams, images: Float32Array, n: number, cfg: VQVAEConfig): Promise<Float32Array> {
  const x = fromHost(images, [n, 1, cfg.height, cfg.width]);
  return (await encodeLatents(tree.ref(params.enc), x).data()) as Float32Array;
}

function replaceCodebook(params: VQVAEParams, codes: Float32Array, cfg: VQVAEConfig): void {
  params.vq.codebook.dispose();
  params.vq.codebook = fromHost(codes, [cfg.vq.codebookSize, cfg.vq.dim]);
}

/** Train a VQ-VAE on `set` by auto-encoding; returns the tokenizer. */
export async function trainVQVAE(
  set: ImageSet,
  cfg: VQVAEConfig,
  train: VQVAETrainConfig = DEFAULT_VQVAE_TRAIN,
  onProgress?: TrainProgress,
): Promise<VQVAETokenizer> {
  const rng = hostRng(train.seed);
  const keys = new KeyStream(train.seed);
  const params = initVQVAE(keys, cfg);
  keys.dispose();
  let epoch = 0;
  let order = seededPermutation(set.n, train.seed);
  const { codebookSize, dim } = cfg.vq;

  if (train.kmeansInit) {
    const first = batchOf(set, order, 0, Math.max(train.batchSize, Math.ceil((4 * codebookSize) / 49)));
    const rows = await latentRows(params, first, first.length / (cfg.height * cfg.width), cfg);
    replaceCodebook(params, kmeans(rows, dim, codebookSize, { iters: 8, rng }), cfg);
  }

  const trainer = new Trainer(params, (p, x) => vqvaeLoss(p as VQVAEParams, x as never, cfg), { ...DEFAULT_ADAMW, weightDecay: 0 });
  let counts = new Int32Array(codebookSize);
  let cursor = 0;
  for (let step = 0; step < train.steps; step++) {
    if (cursor + train.batchSize > set.n) {
      order = seededPermutation(set.n, train.seed + ++epoch);
      cursor = 0;
    }
    const images = batchOf(set, order, cursor, train.batchSize);
    cursor += train.batchSize;
    const lr = warmupCosine(step, { peak: train.lr, warmup: 20, total: train.steps });
    const x = fromHost(images, [train.batchSize, 1, cfg.height, cfg.width]);
    const r = await trainer.step(x, lr);

    for (const id of r.outputs.indices) counts[id]++;
    if (train.restartEvery > 0) {
      const p = trainer.params as VQVAEParams;
      if ((step + 1) % train.restartEvery === 0 && step + 1 < train.steps * 0.8) {
        const rows = await latentRows(p, images, train.batchSize, cfg);
        const current = (await p.vq.codebook.ref.data()) as Float32Array;
        const { codebook } = restartDeadCodes(current, counts, rows, dim, rng);
        replaceCodebook(p, codebook, cfg);
        counts = new Int32Array(codebookSize);
      }
    }
    const used = counts.reduce((a, c) => a + (c > 0 ? 1 : 0), 0);
    onProgress?.(step, { loss: r.loss, ...r.metrics, usage: used / codebookSize });
  }
  const params2 = trainer.params as VQVAEParams;
  trainer.params = {};
  trainer.dispose();
  return new VQVAETokenizer(params2, cfg);
}
