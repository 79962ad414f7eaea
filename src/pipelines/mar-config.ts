/**
 * The configuration of a MAR-style text→image generator (Li et al. 2024, "Autoregressive Image
 * Generation without Vector Quantization"): the image is a sequence of continuous tokens (raw
 * p×p pixel patches: no tokenizer to train), the backbone predicts them left to right from the
 * caption, and a per-token diffusion head draws each token from the backbone's hidden state.
 * `checkMarConfig` validates every field before anything is allocated (InputError, naming the
 * field, the value and what is allowed).
 */
import { CAPTION_TEMPLATES } from "../data/captions.ts";
import { asInputError, InputError } from "../io/errors.ts";
import { checkTransformerConfig, type TransformerConfig } from "../backbone/transformer.ts";
import { checkDiffusionHeadConfig, type DiffusionHeadConfig } from "../backbone/heads/diffusion-head.ts";
import { patchGrid, type PatchGrid } from "../tokenizers/continuous/patches.ts";
import { checkDiffusionSampling, type DiffusionSampling } from "../generate/diffusion.ts";
import { cosineSchedule } from "../backbone/heads/diffusion-schedule.ts";
import { checkDiffusionMultiplier } from "../train/diffusion-loss.ts";
import { checkImageTraining, intChecker } from "./config-checks.ts";

export type MarConfig = {
  readonly seed: number;
  /** the images' C×H×W (MNIST: 1×28×28) */
  readonly image: { readonly channels: number; readonly height: number; readonly width: number };
  /** p: each continuous token is one p×p patch, C·p² pixel values scaled to [−1, 1] */
  readonly patch: number;
  readonly backbone: Omit<TransformerConfig, "vocabSize">;
  /** the diffusion head's size and its training steps T (tokenDim and conditionDim follow from patch and backbone) */
  readonly head: Pick<DiffusionHeadConfig, "width" | "depth" | "steps">;
  /** draws of (t, ε) per token and step (MAR's diffusion batch multiplier, 4) */
  readonly multiplier: number;
  /** captions drawn from the first `templates` of `CAPTION_TEMPLATES` (the demo's 8) */
  readonly templates: number;
  /** share of training sequences whose caption is dropped (all pads), for classifier-free guidance */
  readonly dropCaption: number;
  readonly steps: number;
  readonly lr: number;
  readonly batch: number;
  /** how samples are drawn from the head at every position (generate/diffusion.ts) */
  readonly sampling: DiffusionSampling;
};

/**
 * 4×4 patches (49 tokens of 16 values for a digit), a backbone the size of the demo's unified
 * model's, and a head narrower than MAR-B's (1024 wide, 3 blocks) because its tokens are 16 values,
 * not 16 VAE channels of a 256² image.
 */
export const DEFAULT_MAR: MarConfig = {
  seed: 0,
  image: { channels: 1, height: 28, width: 28 },
  patch: 4,
  backbone: { contextLength: 64, dim: 128, layers: 3, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "learned" },
  head: { width: 128, depth: 3, steps: 1000 },
  multiplier: 4,
  templates: 8,
  dropCaption: 0.1,
  steps: 3000,
  lr: 1e-3,
  batch: 32,
  sampling: { steps: 50, eta: 1, temperature: 1, guidance: 3 },
};

const fail = (msg: string): never => {
  throw new InputError(`mar config: ${msg}`);
};

/** What follows from a config: the patch grid (N tokens of Dx values each). */
export function marShapes(cfg: MarConfig): PatchGrid {
  const int = intChecker(fail);
  checkImageTraining(cfg, int);
  int("templates", cfg.templates, 1, CAPTION_TEMPLATES.length);
  if (!(cfg.lr > 0 && cfg.lr < 1)) fail(`lr must be in (0, 1), got ${JSON.stringify(cfg.lr)}`);
  if (!(cfg.dropCaption >= 0 && cfg.dropCaption < 1)) fail(`dropCaption must be in [0, 1), got ${JSON.stringify(cfg.dropCaption)}`);
  asInputError(() => checkDiffusionMultiplier(cfg.multiplier, "mar config: multiplier"));
  asInputError(() => checkTransformerConfig({ ...cfg.backbone, vocabSize: 1 }, "mar config: backbone"));
  const grid = asInputError(() => patchGrid(cfg.image.channels, cfg.image.height, cfg.image.width, cfg.patch, "mar config: patch"));
  asInputError(() => checkDiffusionHeadConfig({ ...cfg.head, tokenDim: grid.patchDim, conditionDim: cfg.backbone.dim }, "mar config: head"));
  asInputError(() => checkDiffusionSampling(cfg.sampling ?? ({} as DiffusionSampling), cosineSchedule(cfg.head.steps), "mar config: sampling"));
  return grid;
}

/** `marShapes` for its checks alone. */
export function checkMarConfig(cfg: MarConfig): void {
  marShapes(cfg);
}
