/**
 * The continuous-input captioner's configuration (LLaVA, Liu et al. 2023, §4.1: a vision
 * encoder, a projector into the language model's width, the projected features at placeholder
 * slots of the text sequence): which encoder, which projector, the backbone, and the training
 * stages. `checkContinuousConfig` validates it before anything is allocated; `continuousShapes`
 * gives the sizes that follow from it (features per image, their width, the placeholder's slots).
 */
import { CAPTION_TEMPLATES } from "../data/captions.ts";
import { asInputError, InputError } from "../io/errors.ts";
import { checkTransformerConfig, type TransformerConfig } from "../backbone/transformer.ts";
import { checkResamplerConfig, checkResamplerSlots } from "../backbone/adapters/resampler.ts";
import { cnnGrid, checkCNNEncoderConfig, type CNNEncoderConfig } from "../tokenizers/continuous/cnn.ts";
import { patchGrid } from "../tokenizers/continuous/patches.ts";
import { checkViTConfig, vitTokens, type ViTConfig } from "../tokenizers/continuous/vit.ts";
import { checkImageTraining, intChecker } from "./config-checks.ts";

/**
 * "cnn": stride-2 convolutions (tokenizers/continuous/cnn.ts); "vit": a small ViT (vit.ts);
 * "patches": no encoder at all, raw flattened patches straight into the projector (Fuyu, Adept 2023).
 */
export type ContinuousEncoderKind = "cnn" | "vit" | "patches";
export const CONTINUOUS_ENCODERS: readonly ContinuousEncoderKind[] = ["cnn", "vit", "patches"];

/** "linear" (LLaVA), "mlp" (LLaVA-1.5), "resampler" (Flamingo's Perceiver Resampler: Q embeddings whatever N). */
export type ContinuousProjectorKind = "linear" | "mlp" | "resampler";
export const CONTINUOUS_PROJECTORS: readonly ContinuousProjectorKind[] = ["linear", "mlp", "resampler"];

/**
 * "alignment": only the projector trains, encoder and backbone frozen (LLaVA's stage 1,
 * "pre-training for feature alignment", §4.2); "joint": everything trains, except what `freeze`
 * names (LLaVA's stage 2 keeps the vision encoder frozen: `freeze: ["encoder.**"]`).
 */
export type ContinuousStageKind = "alignment" | "joint";
export const CONTINUOUS_STAGES: readonly ContinuousStageKind[] = ["alignment", "joint"];

export type ContinuousStage = {
  readonly stage: ContinuousStageKind;
  readonly steps: number;
  /** peak learning rate of this stage (default: the config's `lr`) */
  readonly lr?: number;
  /** "joint" only: parameter-path patterns to keep frozen (train/freeze.ts), e.g. "encoder.**" */
  readonly freeze?: readonly string[];
};

export type ContinuousCaptionConfig = {
  readonly seed: number;
  /** the images' C×H×W (MNIST: 1×28×28) */
  readonly image: { readonly channels: number; readonly height: number; readonly width: number };
  readonly encoder: ContinuousEncoderKind;
  readonly cnn: Pick<CNNEncoderConfig, "widths" | "kernel" | "activation">;
  readonly vit: Pick<ViTConfig, "patch" | "dim" | "layers" | "heads" | "mlpRatio">;
  /** p, the patch side of the encoder-free "patches" route */
  readonly patch: number;
  readonly projector: ContinuousProjectorKind;
  /** the resampler's Q queries and its size; its width is the backbone's */
  readonly resampler: { readonly queries: number; readonly layers: number; readonly heads: number; readonly mlpRatio: number };
  /** the placeholder's slot count; 0 = what the projector makes (the encoder's N, or the resampler's Q) */
  readonly slots: number;
  /**
   * Captions are drawn from the first `templates` of `CAPTION_TEMPLATES` (data/captions.ts): 1 is
   * "a handwritten d" alone, 8 every template (the demo's mix of numerals and words).
   */
  readonly templates: number;
  /** a `<boc>` (begin of caption) token after the image slots */
  readonly boc: boolean;
  readonly backbone: Omit<TransformerConfig, "vocabSize">;
  /** steps and peak learning rate of a one-stage run (`stages` empty, or `{ stage }` given to the trainer) */
  readonly steps: number;
  readonly lr: number;
  readonly batch: number;
  /** stages run in order; [] = one "joint" stage of `steps` at `lr` */
  readonly stages: readonly ContinuousStage[];
};

/**
 * A CNN encoder (7×7 grid of 64-wide features) and LLaVA-1.5's MLP projector into a small
 * backbone: captioning is the only task, so a narrower, shallower transformer than the demo's
 * unified model (which also draws) is enough.
 */
export const DEFAULT_CONTINUOUS: ContinuousCaptionConfig = {
  seed: 0,
  image: { channels: 1, height: 28, width: 28 },
  encoder: "cnn",
  cnn: { widths: [32, 64], kernel: 4, activation: "gelu" },
  vit: { patch: 7, dim: 64, layers: 2, heads: 4, mlpRatio: 2 },
  patch: 7,
  projector: "mlp",
  resampler: { queries: 16, layers: 1, heads: 4, mlpRatio: 2 },
  slots: 0,
  templates: 8,
  boc: true,
  backbone: { contextLength: 64, dim: 64, layers: 2, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "learned" },
  // Held-out caption accuracy (500 of the demo's held-out digits) is 79% after 300 steps and 90%
  // after 600; 2,000 steps aim at ≥ 95% in about 4 minutes on 2 cores (8.8 steps/s on one).
  steps: 2000,
  lr: 3e-3,
  batch: 32,
  stages: [],
};

/** What follows from a config: N features per image of width Din, and the placeholder's slots. */
export type ContinuousShapes = { readonly features: number; readonly featureDim: number; readonly slots: number };

const fail = (msg: string): never => {
  throw new InputError(`continuous config: ${msg}`);
};

/** The encoder's N and Din. Throws (InputError) on a bad encoder config or a size that does not divide the image. */
function encoderShapes(cfg: ContinuousCaptionConfig): { features: number; featureDim: number } {
  const { channels, height, width } = cfg.image;
  switch (cfg.encoder) {
    case "cnn": {
      const c = { ...cfg.cnn, channels, height, width };
      asInputError(() => checkCNNEncoderConfig(c, "continuous config: cnn"));
      const g = cnnGrid(c);
      return { features: g.count, featureDim: g.dim };
    }
    case "vit": {
      const c = { ...cfg.vit, channels, height, width };
      asInputError(() => checkViTConfig(c, "continuous config: vit"));
      return { features: vitTokens(c), featureDim: cfg.vit.dim };
    }
    case "patches": {
      const g = asInputError(() => patchGrid(channels, height, width, cfg.patch, "continuous config: patch"));
      return { features: g.count, featureDim: g.patchDim };
    }
    default:
      return fail(`encoder: expected one of ${CONTINUOUS_ENCODERS.join(", ")}, got ${JSON.stringify(cfg.encoder)}`);
  }
}

/** Throws (InputError), naming the setting, the value and what is allowed, unless `cfg` is valid; returns its shapes. */
export function continuousShapes(cfg: ContinuousCaptionConfig): ContinuousShapes {
  const int = intChecker(fail);
  checkImageTraining(cfg, int);
  int("slots", cfg.slots, 0, 1 << 14);
  int("templates", cfg.templates, 1, CAPTION_TEMPLATES.length);
  if (!(cfg.lr > 0 && cfg.lr < 1)) fail(`lr must be in (0, 1), got ${JSON.stringify(cfg.lr)}`);
  if (typeof cfg.boc !== "boolean") fail(`boc must be true or false, got ${JSON.stringify(cfg.boc)}`);
  if (!CONTINUOUS_PROJECTORS.includes(cfg.projector)) fail(`projector: expected one of ${CONTINUOUS_PROJECTORS.join(", ")}, got ${JSON.stringify(cfg.projector)}`);
  asInputError(() => checkTransformerConfig({ ...cfg.backbone, vocabSize: 1 }, "continuous config: backbone"));
  if (!Array.isArray(cfg.stages)) fail(`stages must be a list of { stage, steps, lr?, freeze? }, got ${JSON.stringify(cfg.stages)}`);
  cfg.stages.forEach((s, i) => {
    if (!CONTINUOUS_STAGES.includes(s?.stage)) fail(`stages[${i}].stage: expected one of ${CONTINUOUS_STAGES.join(", ")}, got ${JSON.stringify(s?.stage)}`);
    int(`stages[${i}].steps`, s.steps, 1, 1e7);
    if (s.lr !== undefined && !(s.lr > 0 && s.lr < 1)) fail(`stages[${i}].lr must be in (0, 1), got ${JSON.stringify(s.lr)}`);
    if (s.freeze !== undefined && (!Array.isArray(s.freeze) || s.freeze.some((p) => typeof p !== "string"))) fail(`stages[${i}].freeze must be a list of path patterns, got ${JSON.stringify(s.freeze)}`);
    if (s.stage === "alignment" && (s.freeze?.length ?? 0) > 0) fail(`stages[${i}].freeze: an alignment stage already freezes everything but the projector; freeze applies to "joint" stages`);
  });
  const { features, featureDim } = encoderShapes(cfg);
  if (cfg.projector !== "resampler") {
    if (cfg.slots !== 0 && cfg.slots !== features) {
      fail(`slots ${cfg.slots}: the ${cfg.projector} projector makes one embedding per feature, and the ${cfg.encoder} encoder makes ${features}: give slots ${features} (or 0), or use the resampler to choose the count`);
    }
    return { features, featureDim, slots: features };
  }
  const r = { ...cfg.resampler, dim: cfg.backbone.dim, featureDim };
  asInputError(() => checkResamplerConfig(r, "continuous config: resampler"));
  const slots = cfg.slots === 0 ? r.queries : cfg.slots;
  asInputError(() => checkResamplerSlots(r, { name: "image", slots }), { prefix: "continuous config" });
  return { features, featureDim, slots };
}

/** `continuousShapes` for its checks alone. */
export function checkContinuousConfig(cfg: ContinuousCaptionConfig): void {
  continuousShapes(cfg);
}

/** The stages a run trains: `only` for `steps` steps, else the config's list, else one joint stage. */
export function stagesOf(cfg: ContinuousCaptionConfig, only?: ContinuousStageKind): readonly ContinuousStage[] {
  if (only !== undefined) {
    if (!CONTINUOUS_STAGES.includes(only)) fail(`stage: expected one of ${CONTINUOUS_STAGES.join(", ")}, got ${JSON.stringify(only)}`);
    return [{ stage: only, steps: cfg.steps }];
  }
  return cfg.stages.length > 0 ? cfg.stages : [{ stage: "joint", steps: cfg.steps }];
}
