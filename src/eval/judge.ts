import { fromHost, jit, nn, np, tree, type Array, type OwnedFunction } from "../engine/index.ts";
import { KeyStream } from "../engine/rng.ts";
import { conv2d, initConv2d, type Conv2dParams } from "../nn/conv.ts";
import { initLinear, linear, type LinearParams } from "../nn/linear.ts";

/**
 * A small CNN digit classifier used as a judge: it scores whether generated images show the
 * requested digit (the role Inception plays for IS/FID, at MNIST scale).
 */
export type JudgeParams = { c1: Conv2dParams; c2: Conv2dParams; fc: LinearParams; out: LinearParams };

export function initJudge(seed: number): JudgeParams {
  const keys = new KeyStream(seed);
  const p = {
    c1: initConv2d(keys, 1, 16, 4),
    c2: initConv2d(keys, 16, 32, 4),
    fc: initLinear(keys, 32 * 7 * 7, 64),
    out: initLinear(keys, 64, 10),
  };
  keys.dispose();
  return p;
}

/** images: [N, 1, 28, 28] → logits [N, 10]. */
export function judgeLogits(p: JudgeParams, images: Array): Array {
  let h = nn.relu(conv2d(p.c1, images, { stride: 2, padding: 1 }));
  h = nn.relu(conv2d(p.c2, h, { stride: 2, padding: 1 }));
  const n = h.shape[0];
  return linear(p.out, nn.relu(linear(p.fc, h.reshape([n, -1]))));
}

/** Cross-entropy training loss; labels: [N] int32. */
export function judgeLoss(p: JudgeParams, batch: { images: Array; labels: Array }): [Array, Record<string, Array>] {
  const logp = nn.logSoftmax(judgeLogits(p, batch.images), -1);
  const loss = logp.mul(nn.oneHot(batch.labels, 10).astype(np.float32)).sum(-1).mean().mul(-1);
  return [loss, {}];
}

export class Judge {
  readonly #predict: OwnedFunction<(p: JudgeParams, x: Array) => Array>;

  constructor(readonly params: JudgeParams) {
    this.#predict = jit((p: JudgeParams, x: Array) => np.argmax(judgeLogits(p, x), -1));
  }

  /** images: [N·784] in [0, 1] → predicted digits [N]. */
  async predict(images: Float32Array, n: number): Promise<Int32Array> {
    if (images.length !== n * 784) throw new Error(`Judge.predict: expected ${n} images of 28×28 (${n * 784} values), got ${images.length}`);
    const out = new Int32Array(n);
    const chunk = 500;
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const x = fromHost(images.slice(i * 784, (i + m) * 784), [m, 1, 28, 28]);
      out.set((await this.#predict(tree.ref(this.params), x).data()) as Int32Array, i);
    }
    return out;
  }

  dispose(): void {
    this.#predict.dispose();
    tree.dispose(this.params);
  }
}
