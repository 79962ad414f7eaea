/**
 * `mmntp experiment tokenizer-objectives` (survey §2.1): the MNIST tokenizer trained by each of
 * the four objectives (train/objectives.ts) at one budget, and what its tokens are good for:
 * reconstruction (PSNR, rFID on held-out digits), a linear probe of the digit on the token
 * embeddings (the codes the ids stand for, flattened), and the caption accuracy of the demo's
 * unified model trained on those tokens. Each objective's tokenizer is a resumable tokenizer
 * run under the experiment's folder; each finished objective's figures are kept, so a killed
 * experiment picks up where it stopped.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { allCaptions } from "../data/captions.ts";
import { subset } from "../data/shuffle.ts";
import type { Judge } from "../eval/judge.ts";
import { probeAccuracy } from "../eval/probe.ts";
import { writeAtomic } from "../io/checkpoint.ts";
import { stepProgress } from "../io/progress.ts";
import { InputError } from "../io/errors.ts";
import { xyChartSvg } from "../io/svg.ts";
import { DEFAULT_PAIRED } from "../backbone/sequence/presets.ts";
import { Decoder } from "../generate/decode.ts";
import { DEFAULT_DEMO, tokenizeSet } from "../pipelines/demo.ts";
import { trainJudge } from "../pipelines/judge.ts";
import { tokenizerData, tokenizerPreset, type TokenizerData, type TokenizerRunConfig } from "../pipelines/tokenizer-config.ts";
import { finishTokenizerRun, loadImageTokenizer, type TokenizerMetrics } from "../pipelines/tokenizer-run.ts";
import { captionHeldOut } from "../pipelines/evaluate.ts";
import { pairedVocab, trainUnified } from "../pipelines/unified.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../tokenizers/text/train.ts";
import { DEFAULT_OBJECTIVES, OBJECTIVES } from "../train/objectives.ts";
import { tree } from "../engine/index.ts";

export type ObjectiveName = (typeof OBJECTIVES)[number];

export type ObjectivesExperimentConfig = {
  readonly objectives: readonly ObjectiveName[];
  readonly tokenizerSteps: number;
  /** Training steps of the unified model on each tokenizer's tokens. */
  readonly modelSteps: number;
  /** Training images the linear probe is fit on (all held-out digits score it). */
  readonly probeImages: number;
  /** Held-out digits the unified model captions. */
  readonly captionImages: number;
  readonly seed: number;
};

export const DEFAULT_OBJECTIVES_EXPERIMENT: ObjectivesExperimentConfig = { objectives: OBJECTIVES, tokenizerSteps: 800, modelSteps: 1000, probeImages: 3000, captionImages: 500, seed: 0 };

export function checkObjectivesExperimentConfig(cfg: ObjectivesExperimentConfig): void {
  for (const o of cfg.objectives) if (!OBJECTIVES.includes(o)) throw new InputError(`tokenizer-objectives: unknown objective "${o}"; expected some of ${OBJECTIVES.join(", ")}`, { field: "objectives", value: o });
  for (const k of ["tokenizerSteps", "modelSteps", "probeImages", "captionImages"] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw new InputError(`tokenizer-objectives: ${k} must be a positive integer, got ${cfg[k]}`, { field: k, value: cfg[k] });
  }
}

export type ObjectiveRow = TokenizerMetrics & { readonly objective: ObjectiveName; readonly probeAccuracy: number; readonly captionAccuracy: number };

export function objectiveRunConfig(cfg: ObjectivesExperimentConfig, objective: ObjectiveName): TokenizerRunConfig {
  const base = tokenizerPreset("mnist");
  return { ...base, train: { ...base.train, steps: cfg.tokenizerSteps, seed: cfg.seed, objective: DEFAULT_OBJECTIVES[objective] } };
}

export async function runObjectivesExperiment(dir: string, cfg: ObjectivesExperimentConfig = DEFAULT_OBJECTIVES_EXPERIMENT, log: (line: string) => void = console.error): Promise<ObjectiveRow[]> {
  checkObjectivesExperimentConfig(cfg);
  const data = await tokenizerData(objectiveRunConfig(cfg, "autoencode"));
  let features: Judge | undefined;
  const rows: ObjectiveRow[] = [];
  try {
    for (const objective of cfg.objectives) {
      const sub = join(dir, objective);
      const file = join(sub, "objective.json");
      if (!existsSync(file)) {
        const run = objectiveRunConfig(cfg, objective);
        const shared = async () => (features ??= await trainJudge(data.train, data.info, run.featureSteps, cfg.seed));
        const metrics = await finishTokenizerRun(sub, run, { features: shared, log, onStep: stepProgress(`tokenizer ${objective}`) });
        log(`${objective}: PSNR ${metrics.psnr.toFixed(2)} dB; the linear probe and the unified model (${cfg.modelSteps} steps)`);
        const uses = await tokenUses(sub, data, cfg);
        writeAtomic(file, `${JSON.stringify({ objective, ...metrics, ...uses }, null, 2)}\n`);
      }
      const row = JSON.parse(readFileSync(file, "utf8")) as ObjectiveRow;
      rows.push(row);
      log(`${objective}: PSNR ${row.psnr.toFixed(2)} dB, probe ${(100 * row.probeAccuracy).toFixed(1)}%, captions ${(100 * row.captionAccuracy).toFixed(1)}%`);
    }
  } finally {
    features?.dispose();
  }
  writeAtomic(join(dir, "results.json"), `${JSON.stringify({ config: cfg, rows }, null, 2)}\n`);
  writeAtomic(join(dir, "results.md"), `${objectivesTable(rows)}\n`);
  const point = (r: ObjectiveRow, y: number) => ({ name: r.objective, xs: [r.psnr], ys: [y] });
  writeAtomic(join(dir, "psnr-vs-probe.svg"), xyChartSvg(rows.map((r) => point(r, 100 * r.probeAccuracy)), { title: "What each objective's tokens are good for: reconstruction vs linear probe", xLabel: "held-out PSNR (dB)", yLabel: "linear-probe accuracy (%)" }));
  writeAtomic(join(dir, "psnr-vs-captions.svg"), xyChartSvg(rows.map((r) => point(r, 100 * r.captionAccuracy)), { title: "Reconstruction vs the unified model's caption accuracy", xLabel: "held-out PSNR (dB)", yLabel: "caption accuracy (%)" }));
  return rows;
}

/** The linear probe's and the unified model's accuracy on the tokens of the run in `sub`. */
async function tokenUses(sub: string, data: TokenizerData, cfg: ObjectivesExperimentConfig): Promise<{ probeAccuracy: number; captionAccuracy: number }> {
  const tok = loadImageTokenizer(sub);
  try {
    const probeTrain = subset(data.train, Array.from({ length: Math.min(cfg.probeImages, data.train.n) }, (_, i) => i));
    const features = async (set: typeof data.test) => {
      const codes = await tok.codesOf(await tok.encodeImages(set.images, set.n), set.n);
      const per = codes.length / set.n;
      return Array.from({ length: set.n }, (_, i) => codes.subarray(i * per, (i + 1) * per));
    };
    const classes = data.info.classes.length;
    const probe = probeAccuracy({ bags: await features(probeTrain), labels: Array.from(probeTrain.labels) }, { bags: await features(data.test), labels: Array.from(data.test.labels) }, classes, { iters: 300, lr: 0.5 });

    const text = TextTokenizer.fromJSON(await trainTextTokenizer(allCaptions()));
    const vocab = pairedVocab(text, tok.codebookSize);
    const model = await trainUnified(await tokenizeSet(tok, data.train), text, vocab, { seed: cfg.seed, steps: cfg.modelSteps, batchSize: DEFAULT_DEMO.batchSize, lr: DEFAULT_DEMO.lr, model: DEFAULT_DEMO.model, layout: DEFAULT_PAIRED });
    const decoder = new Decoder(model.params, model.config);
    try {
      const { captionAccuracy } = await captionHeldOut(decoder, vocab, text, await tokenizeSet(tok, data.test), cfg.captionImages, DEFAULT_PAIRED);
      return { probeAccuracy: probe, captionAccuracy };
    } finally {
      decoder.dispose();
      tree.dispose(model.params);
    }
  } finally {
    tok.dispose();
  }
}

export function objectivesTable(rows: readonly ObjectiveRow[]): string {
  return [
    "| objective | PSNR (dB) | SSIM | rFID | codebook usage | linear probe (digit) | unified model's captions |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) => `| ${r.objective} | ${r.psnr.toFixed(2)} | ${r.ssim.toFixed(3)} | ${r.rfid.toFixed(3)} | ${(100 * r.usage).toFixed(1)}% | ${(100 * r.probeAccuracy).toFixed(1)}% | ${(100 * r.captionAccuracy).toFixed(1)}% |`),
  ].join("\n");
}
