import { fromHost, nn, np, tree, type Array, type OwnedFunction } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import { KeyStream } from "../engine/rng.ts";
import { InputError } from "../io/errors.ts";
import { conv2d, initConv2d, type Conv2dParams } from "../nn/conv.ts";
import { initLinear, linear, type LinearParams } from "../nn/linear.ts";
import { fmt } from "../nn/shapes.ts";

/**
 * A small CNN classifier used as a judge: it scores whether generated images show the requested
 * class (the role Inception plays for IS/FID, at MNIST scale), and its penultimate features are
 * what a Fréchet distance would compare. Sized by the data set: two stride-2 convs, then a
 * hidden layer of 64 and one logit per class.
 */
export type JudgeConfig = { readonly height: number; readonly width: number; readonly channels: number; readonly classes: number };
export type JudgeParams = { c1: Conv2dParams; c2: Conv2dParams; fc: LinearParams; out: LinearParams };

export function checkJudgeConfig(cfg: unknown, where = "judge config"): asserts cfg is JudgeConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null) throw new InputError(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  const bounds = { height: [4, 4096], width: [4, 4096], channels: [1, 4], classes: [2, 100_000] } as const;
  for (const [key, [lo, hi]] of Object.entries(bounds)) {
    const v = c[key];
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new InputError(`${where}.${key}: expected an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  }
  if ((c.height as number) % 4 !== 0 || (c.width as number) % 4 !== 0) throw new InputError(`${where}: height and width must be multiples of 4 (two stride-2 convs), got ${c.height}×${c.width}`);
}

export function initJudge(seed: number, cfg: JudgeConfig): JudgeParams {
  checkJudgeConfig(cfg);
  const keys = new KeyStream(seed);
  const p = {
    c1: initConv2d(keys, cfg.channels, 16, 4),
    c2: initConv2d(keys, 16, 32, 4),
    fc: initLinear(keys, 32 * (cfg.height / 4) * (cfg.width / 4), 64),
    out: initLinear(keys, 64, cfg.classes),
  };
  keys.dispose();
  return p;
}

/** images: [N, C, H, W] → the hidden layer [N, 64] (after ReLU): the features of Fréchet distances. */
export function judgeFeatures(p: JudgeParams, images: Array): Array {
  let h = nn.relu(conv2d(p.c1, images, { stride: 2, padding: 1 }));
  h = nn.relu(conv2d(p.c2, h, { stride: 2, padding: 1 }));
  const n = h.shape[0];
  return nn.relu(linear(p.fc, h.reshape([n, -1])));
}

/** images: [N, C, H, W] → logits [N, classes]. */
export function judgeLogits(p: JudgeParams, images: Array): Array {
  return linear(p.out, judgeFeatures(p, images));
}

/** Cross-entropy training loss; labels: [N] int32. */
export function judgeLoss(p: JudgeParams, batch: { images: Array; labels: Array }): [Array, Record<string, Array>] {
  const classes = p.out.w.shape[1];
  const logp = nn.logSoftmax(judgeLogits(p, batch.images), -1);
  const loss = logp.mul(nn.oneHot(batch.labels, classes).astype(np.float32)).sum(-1).mean().mul(-1);
  return [loss, {}];
}

export class Judge {
  readonly #predict: OwnedFunction<(p: JudgeParams, x: Array) => Array>;
  readonly #features: OwnedFunction<(p: JudgeParams, x: Array) => Array>;
  readonly #probabilities: OwnedFunction<(p: JudgeParams, x: Array) => Array>;

  constructor(
    readonly params: JudgeParams,
    readonly config: JudgeConfig,
  ) {
    checkJudgeConfig(config);
    this.#predict = inferenceJit((p: JudgeParams, x: Array) => np.argmax(judgeLogits(p, x), -1));
    this.#features = inferenceJit((p: JudgeParams, x: Array) => judgeFeatures(p, x));
    this.#probabilities = inferenceJit((p: JudgeParams, x: Array) => nn.softmax(judgeLogits(p, x), -1));
  }

  /** images: [N·C·H·W] in [0, 1] → class probabilities [N·classes] (for the Inception Score). */
  async probabilities(images: Float32Array, n: number): Promise<Float32Array> {
    return (await this.#map("probabilities", this.#probabilities, images, n, this.config.classes, Float32Array)) as Float32Array;
  }

  /** images: [N·C·H·W] in [0, 1] → predicted classes [N]. */
  async predict(images: Float32Array, n: number): Promise<Int32Array> {
    return (await this.#map("predict", this.#predict, images, n, 1, Int32Array)) as Int32Array;
  }

  /** images: [N·C·H·W] in [0, 1] → hidden features [N·featureDim] (see `judgeFeatures`). */
  async features(images: Float32Array, n: number): Promise<Float32Array> {
    return (await this.#map("features", this.#features, images, n, this.featureDim, Float32Array)) as Float32Array;
  }

  get featureDim(): number {
    return this.params.fc.w.shape[1]!;
  }

  async #map(what: string, f: OwnedFunction<(p: JudgeParams, x: Array) => Array>, images: Float32Array, n: number, per: number, Out: Int32ArrayConstructor | Float32ArrayConstructor): Promise<Int32Array | Float32Array> {
    const { channels: c, height: h, width: w } = this.config;
    const size = c * h * w;
    if (!Number.isInteger(n) || n < 0 || images.length !== n * size) throw new Error(`Judge.${what}: expected ${n} images of ${fmt([c, h, w])} (${n * size} values), got ${images.length}`);
    const out = new Out(n * per);
    const chunk = 500;
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const x = fromHost(images.slice(i * size, (i + m) * size), [m, c, h, w]);
      out.set((await f(tree.ref(this.params), x).data()) as Int32Array | Float32Array, i * per);
    }
    return out;
  }

  dispose(): void {
    this.#predict.dispose();
    this.#features.dispose();
    this.#probabilities.dispose();
    tree.dispose(this.params);
  }
}
