/**
 * The configuration of a Transfusion-style model (Zhou et al. 2024, "Transfusion: Predict the
 * Next Token and Diffuse Images with One Multi-Modal Model"): one transformer reads text tokens
 * and continuous image patches in one sequence, predicts the next text token (LM loss) and the
 * noise added to the image patches (the diffusion loss, under a mask that is causal except
 * bidirectional within each image, §3.2), trained together as L = L_LM + λ·L_DDPM (§3.3, eq. 4).
 * `transfusionShapes` validates every field before anything is allocated (InputError, naming
 * the field, the value and what is allowed).
 */
import { CAPTION_TEMPLATES } from "../data/captions.ts";
import { asInputError, InputError } from "../io/errors.ts";
import { checkTransformerConfig, type TransformerConfig } from "../backbone/transformer.ts";
import { checkDiffusionSteps, cosineSchedule } from "../backbone/heads/diffusion-schedule.ts";
import { patchGrid, type PatchGrid } from "../tokenizers/continuous/patches.ts";
import { checkDiffusionSampling, type DiffusionSampling } from "../generate/diffusion.ts";
import { checkImageTraining, intChecker } from "./config-checks.ts";

export const DIFFUSION_PREDICTIONS = ["epsilon", "x0"] as const;
export type DiffusionPrediction = (typeof DIFFUSION_PREDICTIONS)[number];

export type TransfusionConfig = {
  readonly seed: number;
  /** the images' C×H×W (MNIST: 1×28×28) */
  readonly image: { readonly channels: number; readonly height: number; readonly width: number };
  /** p: each image position holds one p×p patch, C·p² pixel values scaled to [−1, 1] */
  readonly patch: number;
  readonly backbone: Omit<TransformerConfig, "vocabSize">;
  /** T, the diffusion steps of the cosine schedule (Transfusion §3.2: 1000) */
  readonly diffusionSteps: number;
  /** F, the width of the timestep's sinusoid before its MLP (even) */
  readonly timeDim: number;
  /** λ, the weight of the diffusion loss (Transfusion §4.1: 5) */
  readonly lambda: number;
  /**
   * γ of Min-SNR-γ loss weighting (Hang et al. 2023): each image's ε loss × min(SNR_t, γ)/SNR_t,
   * SNR_t = ᾱ_t/(1 − ᾱ_t), so the nearly clean timesteps stop dominating the loss; absent or 0: off.
   */
  readonly minSnr?: number;
  /**
   * What the image positions output: "epsilon", the noise ε̂ (Transfusion §3.2, DDPM's choice),
   * or "x0", the clean patches x̂_0, trained on ‖x̂_0 − x_0‖² (absent: "epsilon"). In x_0 units
   * the ε loss weighs timestep t by SNR_t = ᾱ_t/(1 − ᾱ_t), which vanishes where the noise is
   * heavy, just where only the caption tells the digit; the x_0 loss weighs every t alike.
   */
  readonly prediction?: DiffusionPrediction;
  /** rows of each batch that are image → caption sequences; the rest are caption → image */
  readonly captionRows: number;
  /**
   * Images before a caption are noised with t ~ U{0, …, captionNoise − 1} (0 = clean): Transfusion
   * §4.3 ("Image Noising") caps it at T/2 so the caption still sees the image, while those images
   * still train the (unconditional) diffusion loss.
   */
  readonly captionNoise: number;
  /** captions drawn from the first `templates` of `CAPTION_TEMPLATES` (the demo's 8) */
  readonly templates: number;
  /** share of caption → image rows whose caption is dropped (all pads), for classifier-free guidance */
  readonly dropCaption: number;
  readonly steps: number;
  readonly lr: number;
  readonly batch: number;
  /** how images are drawn (DDIM over the whole image block, generate/diffusion.ts) */
  readonly sampling: DiffusionSampling;
};

/**
 * 49 patches of 4×4 and a backbone the width of the demo's unified model. λ = 5 is the paper's:
 * the diffusion loss (≈ 0.04–0.1 once trained) and the LM loss (≈ 0.1) are then of one order.
 * 16 image → caption rows noised up to t = 250 captioned 83.6% of held-out digits, 8 rows up to
 * t = 500 only 54.8%. The image positions predict x_0: predicting ε, 13% of the samples were
 * judged right, x_0 prediction 80–88% at guidance 3 and 87–91% at guidance 5, chosen on sampling
 * seed 1 (docs/experiments/compositional-vs-unified.md).
 */
export const DEFAULT_TRANSFUSION: TransfusionConfig = {
  seed: 0,
  image: { channels: 1, height: 28, width: 28 },
  patch: 4,
  backbone: { contextLength: 64, dim: 128, layers: 4, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "learned" },
  diffusionSteps: 1000,
  timeDim: 64,
  lambda: 5,
  minSnr: 0,
  prediction: "x0",
  captionRows: 16,
  captionNoise: 250,
  templates: 8,
  dropCaption: 0.1,
  steps: 3000,
  lr: 1e-3,
  batch: 32,
  sampling: { steps: 50, eta: 0, guidance: 5 },
};

const fail = (msg: string): never => {
  throw new InputError(`transfusion config: ${msg}`);
};

/** What follows from a config: the patch grid (N image positions of Dx values each). Throws (InputError) unless `cfg` is valid. */
export function transfusionShapes(cfg: TransfusionConfig): PatchGrid {
  const int = intChecker(fail);
  checkImageTraining(cfg, int);
  int("templates", cfg.templates, 1, CAPTION_TEMPLATES.length);
  asInputError(() => checkDiffusionSteps(cfg.diffusionSteps, "transfusion config: diffusionSteps"));
  int("captionRows", cfg.captionRows, 0, cfg.batch - 1); // at least one caption → image row
  int("captionNoise", cfg.captionNoise, 0, cfg.diffusionSteps);
  if (!Number.isInteger(cfg.timeDim) || cfg.timeDim < 2 || cfg.timeDim % 2 !== 0 || cfg.timeDim > 1 << 14) fail(`timeDim must be an even integer in [2, ${1 << 14}] (cos and sin halves), got ${JSON.stringify(cfg.timeDim)}`);
  if (!(cfg.lr > 0 && cfg.lr < 1)) fail(`lr must be in (0, 1), got ${JSON.stringify(cfg.lr)}`);
  if (cfg.minSnr !== undefined && !(cfg.minSnr >= 0 && Number.isFinite(cfg.minSnr))) fail(`minSnr must be a finite number ≥ 0 (0 = no Min-SNR weighting), got ${JSON.stringify(cfg.minSnr)}`);
  const prediction = cfg.prediction ?? "epsilon";
  if (!DIFFUSION_PREDICTIONS.includes(prediction)) fail(`prediction must be one of ${DIFFUSION_PREDICTIONS.map((x) => `"${x}"`).join(", ")}, got ${JSON.stringify(cfg.prediction)}`);
  if (prediction === "x0" && cfg.minSnr) fail(`minSnr applies to prediction "epsilon" only (the x0 loss already weighs every timestep alike), got minSnr ${cfg.minSnr} with prediction "x0"`);
  if (!(cfg.lambda >= 0 && Number.isFinite(cfg.lambda))) fail(`lambda must be a finite number ≥ 0 (the diffusion loss's weight), got ${JSON.stringify(cfg.lambda)}`);
  if (!(cfg.dropCaption >= 0 && cfg.dropCaption < 1)) fail(`dropCaption must be in [0, 1), got ${JSON.stringify(cfg.dropCaption)}`);
  asInputError(() => checkTransformerConfig({ ...cfg.backbone, vocabSize: 1 }, "transfusion config: backbone"));
  if (cfg.backbone.dim % 4 !== 0) fail(`backbone.dim must be a multiple of 4 (the patches' 2-D sin-cos positions: a sin and a cos half each for rows and columns), got ${JSON.stringify(cfg.backbone.dim)}`);
  const grid = asInputError(() => patchGrid(cfg.image.channels, cfg.image.height, cfg.image.width, cfg.patch, "transfusion config: patch"));
  asInputError(() => checkDiffusionSampling(cfg.sampling ?? ({} as DiffusionSampling), cosineSchedule(cfg.diffusionSteps), "transfusion config: sampling"));
  return grid;
}

/** `transfusionShapes` for its checks alone. */
export function checkTransfusionConfig(cfg: TransfusionConfig): void {
  transfusionShapes(cfg);
}
