import { beforeAll, describe, expect, it } from "vitest";
import { startEngine, tree, type Array, type JsTree } from "../../src/engine/index.ts";
import { paramsToTensors } from "../../src/engine/params.ts";
import { loadMnist, subset } from "../../src/data/mnist.ts";
import { trainAutoencoder, type AutoencoderTrainConfig, type AutoencoderTrainState } from "../../src/train/autoencoder.ts";
import { makeQuantizer, type QuantizerSpec } from "../../src/tokenizers/quantizers/registry.ts";
import type { ConvAEConfig } from "../../src/tokenizers/image/autoencoder.ts";
import { caption } from "../../src/data/captions.ts";
import { DEFAULT_OBJECTIVES } from "../../src/train/objectives.ts";

beforeAll(startEngine);

/**
 * A run stopped after k steps and resumed from the state its checkpoint saved must end with the
 * same weights, bit for bit, as one that never stopped: the optimizer moments, the step's
 * learning rate, the batch order across epochs, the code counts and the restarts' random draws
 * all carry over. Restarts every 4 steps, 8 steps per epoch: the resume points fall inside an
 * epoch, on a restart's step and past an epoch boundary.
 */
const set = subset(loadMnist(), globalThis.Array.from({ length: 64 }, (_: unknown, i: number) => i));
const cfg: ConvAEConfig = { height: 28, width: 28, channels: [4, 8], output: "linear" };
const train: AutoencoderTrainConfig = { steps: 14, batchSize: 8, lr: 3e-3, seed: 3, restartEvery: 4, kmeansInit: true };

const captions = globalThis.Array.from(set.labels, (l) => caption(l, l % 3));

async function run(spec: QuantizerSpec, t: AutoencoderTrainConfig, resume?: AutoencoderTrainState) {
  const q = makeQuantizer(spec, [7, 7]);
  const states: AutoencoderTrainState[] = [];
  const losses: number[] = [];
  const params = await trainAutoencoder(set, cfg, q, t, (_, f) => losses.push(f.loss!), { every: 1, onCheckpoint: (s) => void states.push(s), captions, ...(resume && { resume }) });
  const tensors = await paramsToTensors(params as JsTree<Array>);
  tree.dispose(params as JsTree<Array>);
  return { tensors, states, losses };
}

describe.each<[string, QuantizerSpec, Partial<AutoencoderTrainConfig>]>([
  ["VQ (codebook by loss, k-means, restarts)", { name: "vq", options: { codebookSize: 32, dim: 4 } }, {}],
  ["VQ with an EMA codebook", { name: "vq", options: { codebookSize: 32, dim: 4, codebookUpdate: "ema" }, ema: { decay: 0.9, eps: 1e-5 } }, {}],
  ["FSQ (no codebook)", { name: "fsq", options: { levels: [5, 4, 4] } }, { kmeansInit: false, restartEvery: 0 }],
  ["VQ trained by masked modelling", { name: "vq", options: { codebookSize: 32, dim: 4 } }, { objective: DEFAULT_OBJECTIVES.masked }],
  ["VQ with a supervised head", { name: "vq", options: { codebookSize: 32, dim: 4 } }, { objective: DEFAULT_OBJECTIVES.supervised }],
  ["EMA VQ with the contrastive objective", { name: "vq", options: { codebookSize: 32, dim: 4, codebookUpdate: "ema" }, ema: { decay: 0.9, eps: 1e-5 } }, { objective: DEFAULT_OBJECTIVES.contrastive }],
])("resuming %s", (_, spec, over) => {
  const t = { ...train, ...over };
  it("ends bit-identical to the run that never stopped, from any step", async () => {
    const whole = await run(spec, t);
    expect(whole.states.map((s) => s.step)).toEqual(globalThis.Array.from({ length: t.steps - 1 }, (_: unknown, i: number) => i + 1));
    for (const at of [5, 8, 11]) {
      const resumed = await run(spec, t, whole.states[at - 1]!);
      expect(resumed.losses).toEqual(whole.losses.slice(at));
      expect(Object.keys(resumed.tensors)).toEqual(Object.keys(whole.tensors));
      for (const [k, v] of Object.entries(whole.tensors)) expect(resumed.tensors[k]!.data, `${k} after resuming at step ${at}`).toEqual(v.data);
    }
  });
});

describe("resuming, refused", () => {
  it("a state from outside the run's steps, or of another codebook size", async () => {
    const spec: QuantizerSpec = { name: "vq", options: { codebookSize: 32, dim: 4 } };
    const { states } = await run(spec, { ...train, steps: 3 });
    await expect(run(spec, { ...train, steps: 1 }, states[1]!)).rejects.toThrow(/step 2, outside this run's 0..1/);
    await expect(run({ name: "vq", options: { codebookSize: 16, dim: 4 } }, train, states[1]!)).rejects.toThrow(/training state/);
  });
});
