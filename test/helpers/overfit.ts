import { nn, np, tree, type Array as JaxArray } from "../../src/engine/index.ts";
import type { Params } from "../../src/train/optim.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";
import { flat, ints } from "./fixtures.ts";

/**
 * Trains `params` by cross-entropy of `logitsOf(params, images)` [N, K] against `labels` (AdamW,
 * lr 3e-3, no weight decay) for at most `maxSteps`, checking train accuracy every 25 steps and
 * stopping at 100%. Consumes params and images; returns the accuracy, the steps taken and the
 * first and last losses.
 */
export async function overfitLabels<P extends Params>(params: P, logitsOf: (p: P, x: JaxArray) => JaxArray, images: JaxArray, labels: Int32Array, classes: number, maxSteps = 300): Promise<{ acc: number; steps: number; first: number; last: number }> {
  const n = labels.length;
  const loss = (p: P, b: { images: JaxArray; labels: JaxArray }): [JaxArray, Record<string, JaxArray>] => {
    const logp = nn.logSoftmax(logitsOf(p, b.images), -1);
    return [logp.mul(nn.oneHot(b.labels, classes).astype(np.float32)).sum(-1).mean().mul(-1), {}];
  };
  const trainer = new Trainer(params, (p, b) => loss(p as P, b as never), { ...DEFAULT_ADAMW, weightDecay: 0 });
  let [first, last, steps, acc] = [0, 0, 0, 0];
  for (; steps < maxSteps && acc < 1; steps++) {
    const r = await trainer.step({ images: images.ref, labels: ints(labels, [n]) }, 3e-3);
    if (steps === 0) first = r.loss;
    last = r.loss;
    if (steps % 25 === 24) {
      const pred = flat(np.argmax(logitsOf(tree.ref(trainer.params) as P, images.ref), -1));
      acc = pred.filter((u, i) => u === labels[i]).length / n;
    }
  }
  images.dispose();
  trainer.dispose();
  return { acc, steps, first, last };
}
