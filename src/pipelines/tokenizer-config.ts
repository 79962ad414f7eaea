/**
 * What `mmntp tokenizer train` trains: presets (an embedded data set, an auto-encoder tokenizer,
 * its training schedule), their checks, and the data they train and are measured on, embedded
 * or brought by the user (an IDX file, a folder of PNG/JPEG files).
 */
import { statSync } from "node:fs";
import { CAPTION_TEMPLATES, caption } from "../data/captions.ts";
import { readImageFolder } from "../data/image-folder.ts";
import { loadIdxImages } from "../data/idx.ts";
import { loadMnist, MNIST_INFO } from "../data/mnist.ts";
import { makeShapes, SHAPES_INFO } from "../data/shapes.ts";
import { splitTrainTest } from "../data/shuffle.ts";
import type { DatasetInfo, ImageSet } from "../data/types.ts";
import { InputError } from "../io/errors.ts";
import { checkAutoencoderConfig, type AutoencoderTokenizerConfig } from "../tokenizers/image/autoencoder.ts";
import type { AutoencoderTrainConfig } from "../train/autoencoder.ts";
import { checkObjective } from "../train/objectives.ts";
import { checkVqganLosses, DEFAULT_VQGAN } from "../train/vqgan.ts";

export type EmbeddedImages = "mnist" | "shapes";

export type TokenizerRunConfig = {
  /** The embedded data set trained on, unless the user gives their own (`--data`). */
  readonly data: EmbeddedImages;
  /** Held-out images (never trained on): the first of one seeded shuffle, or for shapes a second seed's scenes. */
  readonly testSize: number;
  /** Scenes drawn for training (shapes only: MNIST trains on all its digits not held out). */
  readonly trainSize: number;
  readonly tokenizer: AutoencoderTokenizerConfig;
  readonly train: AutoencoderTrainConfig;
  /** Save a resumable checkpoint every this many steps (0: never). */
  readonly checkpointEvery: number;
  /** Training steps of the feature network that rFID compares features on. */
  readonly featureSteps: number;
};

/** VQGAN's losses off (both weights 0); `--set train.vqgan.perceptualWeight=0.1 --set train.vqgan.discWeight=0.1` turns them on. */
const VQGAN_OFF = { ...DEFAULT_VQGAN, perceptualWeight: 0, discWeight: 0 };

const MNIST_TOKENIZER: TokenizerRunConfig = {
  data: "mnist",
  testSize: 1500,
  trainSize: 0,
  // The linear head: MSE's gradient never vanishes, and reconstructions come out sharper than
  // under the demo's sigmoid head (docs/experiments/quantizers.md).
  tokenizer: { height: 28, width: 28, imageChannels: 1, channels: [32, 64], output: "linear", quantizer: { name: "vq", options: { codebookSize: 256, dim: 16 } } },
  train: { steps: 1000, batchSize: 64, lr: 3e-3, seed: 0, restartEvery: 50, kmeansInit: true, objective: { kind: "autoencode" }, vqgan: VQGAN_OFF },
  checkpointEvery: 100,
  featureSteps: 500,
};

/** The MNIST preset's model and schedule on 32×32 colour scenes, with twice its codes. */
const SHAPES_TOKENIZER: TokenizerRunConfig = {
  ...MNIST_TOKENIZER,
  data: "shapes",
  testSize: 1000,
  trainSize: 20_000,
  tokenizer: { ...MNIST_TOKENIZER.tokenizer, height: 32, width: 32, imageChannels: 3, quantizer: { name: "vq", options: { codebookSize: 512, dim: 16 } } },
};

/** `mmntp tokenizer train --preset NAME`. */
export const TOKENIZER_PRESETS: Readonly<Record<string, TokenizerRunConfig>> = { mnist: MNIST_TOKENIZER, shapes: SHAPES_TOKENIZER };

export function tokenizerPreset(name: string): TokenizerRunConfig {
  const p = Object.hasOwn(TOKENIZER_PRESETS, name) ? TOKENIZER_PRESETS[name] : undefined;
  if (!p) throw new InputError(`unknown tokenizer preset "${name}"; expected one of: ${Object.keys(TOKENIZER_PRESETS).join(", ")}`, { field: "preset", value: name });
  return p;
}

const isInt = (v: unknown, lo: number, hi = Number.MAX_SAFE_INTEGER): v is number => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;

/** Throws an InputError naming the field when `cfg` (a preset after `--set`, or a run.json) is not a valid run config. */
export function checkTokenizerRunConfig(cfg: unknown, where = "tokenizer run config"): asserts cfg is TokenizerRunConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null) throw new InputError(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  if (c.data !== "mnist" && c.data !== "shapes") throw new InputError(`${where}.data: expected "mnist" or "shapes", got ${JSON.stringify(c.data)}`, { field: "data", value: c.data });
  const ints: [string, unknown, number][] = [
    ["testSize", c.testSize, 1],
    ["trainSize", c.trainSize, 0],
    ["checkpointEvery", c.checkpointEvery, 0],
    ["featureSteps", c.featureSteps, 0],
  ];
  for (const [k, v, lo] of ints) if (!isInt(v, lo)) throw new InputError(`${where}.${k}: expected an integer ≥ ${lo}, got ${JSON.stringify(v)}`, { field: k, value: v });
  checkAutoencoderConfig(c.tokenizer, `${where}.tokenizer`);
  const t = c.train as Record<string, unknown> | null;
  if (typeof t !== "object" || t === null) throw new InputError(`${where}.train: expected an object, got ${JSON.stringify(t)}`);
  for (const [k, lo] of [["steps", 1], ["batchSize", 1], ["seed", 0], ["restartEvery", 0]] as const) {
    if (!isInt(t[k], lo)) throw new InputError(`${where}.train.${k}: expected an integer ≥ ${lo}, got ${JSON.stringify(t[k])}`, { field: `train.${k}`, value: t[k] });
  }
  if (typeof t.lr !== "number" || !(t.lr > 0 && t.lr < 1)) throw new InputError(`${where}.train.lr: expected a number in (0, 1), got ${JSON.stringify(t.lr)}`, { field: "train.lr", value: t.lr });
  if (t.objective !== undefined) checkObjective(t.objective, `${where}.train.objective`);
  if (t.vqgan !== undefined) checkVqganLosses(t.vqgan, `${where}.train.vqgan`);
  if (typeof t.kmeansInit !== "boolean") throw new InputError(`${where}.train.kmeansInit: expected true or false, got ${JSON.stringify(t.kmeansInit)}`, { field: "train.kmeansInit" });
  const q = (c.tokenizer as AutoencoderTokenizerConfig).quantizer.name;
  if (q !== "vq" && (t.kmeansInit || (t.restartEvery as number) > 0)) {
    throw new InputError(`${where}.train: k-means initialization and dead-code restarts need a VQ codebook; the ${q} quantizer has none (--set train.kmeansInit=false --set train.restartEvery=0)`, { field: "train" });
  }
}

/**
 * `trainCaptions`: one caption per training image, for the contrastive objective (MNIST: its
 * digit under the caption templates in turn; shapes: the scene's). `testCaptions`: the exact
 * captions of the held-out shapes scenes, which the scene checker reads reconstructions against.
 */
export type TokenizerData = {
  readonly name: string;
  readonly train: ImageSet;
  readonly test: ImageSet;
  readonly info: DatasetInfo;
  readonly trainCaptions?: readonly string[];
  readonly testCaptions?: readonly string[];
};

/**
 * The training and held-out images of `cfg`: its embedded set, or the user's `path` (a folder of
 * PNG/JPEG files, resized to the tokenizer's size; or an IDX image file at its size, with an
 * optional IDX label file), of which `testSize` images are held out by a seeded shuffle.
 * Everything is read and checked here, before anything is written.
 */
export async function tokenizerData(cfg: TokenizerRunConfig, path?: string, labels?: string): Promise<TokenizerData> {
  const { height, width } = cfg.tokenizer;
  const channels = cfg.tokenizer.imageChannels ?? 1;
  const want = `${channels}×${height}×${width}`;
  if (path === undefined) {
    const info = cfg.data === "mnist" ? MNIST_INFO : SHAPES_INFO;
    if (info.channels !== channels || info.height !== height || info.width !== width) {
      throw new InputError(`the ${info.name} images are ${info.channels}×${info.height}×${info.width}; the tokenizer config takes ${want}`, { field: "tokenizer" });
    }
    if (cfg.data === "mnist") {
      const { train, test } = splitTrainTest(loadMnist(), { testSize: cfg.testSize, seed: cfg.train.seed });
      return { name: "mnist", train, test, info, trainCaptions: Array.from(train.labels, (l, i) => caption(l, i % CAPTION_TEMPLATES.length)) };
    }
    if (cfg.trainSize < cfg.train.batchSize) throw new InputError(`trainSize ${cfg.trainSize} is less than one batch of ${cfg.train.batchSize}`, { field: "trainSize", value: cfg.trainSize });
    // Held-out scenes come from another seed: the same stream would repeat the training scenes.
    const test = makeShapes(cfg.testSize, cfg.train.seed + 1_000_003);
    const train = makeShapes(cfg.trainSize, cfg.train.seed);
    return { name: "shapes", train, test, info, trainCaptions: train.captions, testCaptions: test.captions };
  }
  let isFolder: boolean;
  try {
    isFolder = statSync(path).isDirectory();
  } catch {
    throw new InputError(`no such file or folder: ${path}`, { file: path });
  }
  let set: ImageSet;
  let classes: readonly string[];
  if (isFolder) {
    const folder = await readImageFolder(path, { height, width, channels });
    set = folder;
    classes = folder.classes.length > 0 ? folder.classes : ["all"];
  } else {
    if (channels !== 1) throw new InputError(`${path}: IDX images are grayscale [N, H, W]; the tokenizer takes ${channels} channels`, { file: path, expected: "1 channel" });
    set = loadIdxImages(path, labels);
    if (set.height !== height || set.width !== width) {
      throw new InputError(`${path}: the images are ${set.height}×${set.width}, the tokenizer takes ${height}×${width} (--set tokenizer.height=${set.height} --set tokenizer.width=${set.width})`, { file: path });
    }
    // A loop, not Math.max(...labels): spreading a large set's labels overflows the call stack.
    classes = Array.from({ length: set.labels.reduce((a, b) => Math.max(a, b), 1) + 1 }, (_, k) => String(k));
  }
  if (set.n < cfg.testSize + cfg.train.batchSize) {
    throw new InputError(`${path} holds ${set.n} images; holding out ${cfg.testSize} (testSize) leaves less than one batch of ${cfg.train.batchSize} (--set testSize=… to hold out fewer)`, { file: path, value: set.n });
  }
  const { train, test } = splitTrainTest(set, { testSize: cfg.testSize, seed: cfg.train.seed });
  return { name: path, train, test, info: { name: path, height, width, channels, classes } };
}
