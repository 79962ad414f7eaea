/**
 * Next-position training of a multi-stream model (backbone/streams.ts) with `streamLoss`: the
 * loop that the speech and dialogue pipelines share. The caller draws each step's rows (all of
 * one length bucket, `byBucket`); warm-up 50 steps, then cosine, AdamW. `conditionWidth`: the
 * condition streams of every batch (fixed, so the step compiles once per bucket). `init`: start
 * from these weights (consumed) rather than from `initSeed`, to continue a trained model.
 */
import { during } from "../engine/out-of-memory.ts";
import { KeyStream } from "../engine/rng.ts";
import { levelRanges, streamBatch, type StreamSequence } from "../backbone/streams.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import { describeTransformer, initTransformer, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { Progress } from "../io/progress.ts";
import { streamLoss } from "./losses.ts";
import { DEFAULT_ADAMW, warmupCosine } from "./optim.ts";
import { Trainer } from "./step.ts";

/** A sequence of `positions` trains in a batch of this length: rounded up to 32 (so a handful of compiled step shapes serve every length), at most the context. */
export const bucketLength = (positions: number, contextLength: number): number => Math.min(contextLength, Math.ceil((positions - 1) / 32) * 32);

/** `items` grouped by the bucket of their length. */
export function byBucket<T extends { readonly length: number }>(items: readonly T[], contextLength: number): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const x of items) {
    const b = bucketLength(x.length, contextLength);
    out.set(b, [...(out.get(b) ?? []), x]);
  }
  return out;
}

export type StreamTrainingOptions = { initSeed: number; steps: number; lr: number; label: string; conditionWidth?: number; init?: TransformerParams };

export function trainStreamModel(
  vocab: JointVocab,
  config: TransformerConfig,
  opts: StreamTrainingOptions,
  nextBatch: (step: number) => { rows: StreamSequence[]; length: number },
): Promise<TransformerParams> {
  return during(`training the ${opts.label} (${describeTransformer(config)})`, () => streamTraining(vocab, config, opts, nextBatch));
}

async function streamTraining(
  vocab: JointVocab,
  config: TransformerConfig,
  { initSeed, steps, lr, label, conditionWidth = 0, init }: StreamTrainingOptions,
  nextBatch: (step: number) => { rows: StreamSequence[]; length: number },
): Promise<TransformerParams> {
  const keys = new KeyStream(initSeed);
  const ranges = levelRanges(vocab);
  const trainer = new Trainer(init ?? initTransformer(keys, config), (p, b) => streamLoss(p as TransformerParams, b as never, config, ranges), DEFAULT_ADAMW, { label: `the ${label} (${describeTransformer(config)})` });
  keys.dispose();
  const progress = new Progress({ label, total: steps });
  for (let step = 0; step < steps; step++) {
    const { rows, length } = nextBatch(step);
    const r = await trainer.step(streamBatch(vocab, rows, length, conditionWidth) as never, warmupCosine(step, { peak: lr, warmup: 50, total: steps }));
    progress.tick(1, { loss: r.loss, ...(r.metrics.level1 !== undefined && { level1: r.metrics.level1 }) });
  }
  progress.done();
  const params = trainer.params as TransformerParams;
  trainer.params = {};
  trainer.dispose();
  return params;
}
