/**
 * Two speakers' streams in one model, Moshi-style (Défossez et al. 2024, §3.4): the listener's
 * (A) and the model's own (B) codec streams run side by side, frame by frame, and the model
 * speaks while listening. Every position holds 2K streams (backbone/streams.ts): A's K levels,
 * then B's K levels, B's level k delayed by K + k, so B's frame f is drawn after all of A's frame
 * f has been heard. Silence is part of each stream (the codec's codes of silent samples), so
 * when to speak is learned too.
 *
 * The task the spoken digits make: A says a digit, B answers with the next one ("three" →
 * "four", "nine" → "zero"), from two different speakers. Training takes loss on B's streams
 * only; A's are the input. At inference A's streams come from a clip (its codes, then silence
 * for B's turn) and B's are sampled.
 */
import { hostRng } from "../engine/rng.ts";
import { pick } from "../data/shuffle.ts";
import { compileStreams, levelName, streamVocab, type StreamSequence } from "../backbone/streams.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import { asInputError, InputError } from "../io/errors.ts";
import { checkTransformerConfig, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { StreamDecoder } from "../generate/streams.ts";
import { sampleToken, type SamplingOptions } from "../generate/sampling.ts";
import { bucketLength, byBucket, trainStreamModel } from "../train/streams.ts";

export type DialogueTrainConfig = {
  readonly seed: number;
  readonly steps: number;
  readonly batchSize: number;
  readonly lr: number;
  /** codec levels per speaker (2 × levels streams) */
  readonly levels: number;
  /** frames of B's turn: the gap, B's clip and silence after it (A is silent meanwhile) */
  readonly replyFrames: number;
  /** frames of silence between A's clip and B's */
  readonly gapFrames: number;
  /** B clips drawn per A clip (each from another speaker) */
  readonly partners: number;
  readonly model: Omit<TransformerConfig, "vocabSize">;
};

export const DEFAULT_DIALOGUE_TRAIN: DialogueTrainConfig = {
  seed: 0,
  steps: 1500,
  batchSize: 16,
  lr: 2e-3,
  levels: 4,
  replyFrames: 95,
  gapFrames: 15,
  partners: 2,
  model: { contextLength: 192, dim: 128, layers: 4, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "rope" },
};

export function checkDialogueTrainConfig(cfg: DialogueTrainConfig, where = "dialogue training config"): void {
  for (const key of ["seed", "steps", "batchSize", "levels", "replyFrames", "gapFrames", "partners"] as const) {
    const v = cfg[key];
    const min = key === "seed" || key === "gapFrames" ? 0 : 1;
    if (!Number.isInteger(v) || v < min) throw new InputError(`${where}: ${key} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`, { field: key, value: v });
  }
  if (!(cfg.lr > 0) || !Number.isFinite(cfg.lr)) throw new InputError(`${where}: lr must be a positive number, got ${JSON.stringify(cfg.lr)}`, { field: "lr", value: cfg.lr });
  if (cfg.gapFrames >= cfg.replyFrames) throw new InputError(`${where}: gapFrames (${cfg.gapFrames}) must be less than replyFrames (${cfg.replyFrames})`, { field: "gapFrames", value: cfg.gapFrames });
  asInputError(() => checkTransformerConfig({ ...cfg.model, vocabSize: 1 }, `${where}: model`));
  if (cfg.model.positions === "rope2d") throw new InputError(`${where}: model.positions must be "learned" or "rope", got "rope2d"`, { field: "model.positions", value: "rope2d" });
}

/** 2K "levels": A's K then B's K (text: the pad alone; these sequences hold no text). */
export const dialogueVocab = (levels: number, codebook: number): JointVocab => streamVocab({ size: 1, pad: 0 }, 2 * levels, codebook);

/** A conversation as codes: A's and B's streams [F·K] each (local ids, frame-major), F frames, A's clip the first `turn`. */
export type Dialogue = { readonly a: Int32Array; readonly b: Int32Array; readonly frames: number; readonly turn: number };

/** The frame-major [F·2K] codes of both streams. */
function interleave(d: Pick<Dialogue, "a" | "b" | "frames">, levels: number): Int32Array {
  const out = new Int32Array(d.frames * 2 * levels);
  for (let f = 0; f < d.frames; f++) {
    out.set(d.a.subarray(f * levels, (f + 1) * levels), f * 2 * levels);
    out.set(d.b.subarray(f * levels, (f + 1) * levels), f * 2 * levels + levels);
  }
  return out;
}

/** `<bos>`, then both streams as one audio block, with loss on B's cells only (summing to 1). */
export function compileDialogue(vocab: JointVocab, d: Dialogue, levels: number): StreamSequence {
  const seq = compileStreams(vocab, [{ kind: "special", name: "<bos>" }, { kind: "audio", codes: interleave(d, levels), frames: d.frames, loss: 1 }]);
  const k2 = 2 * levels;
  const weights = seq.weights.map((w, i) => (i % k2 >= levels ? w : 0));
  const total = weights.reduce((a, w) => a + w, 0);
  return { ...seq, weights: weights.map((w) => w / total) };
}

export type DialogueModel = { readonly params: TransformerParams; readonly config: TransformerConfig; readonly vocab: JointVocab; readonly levels: number };

export async function trainDialogue(dialogues: readonly Dialogue[], codebook: number, cfg: DialogueTrainConfig): Promise<DialogueModel> {
  const vocab = dialogueVocab(cfg.levels, codebook);
  const config: TransformerConfig = { ...cfg.model, vocabSize: vocab.size };
  const seqs = dialogues.map((d) => compileDialogue(vocab, d, cfg.levels));
  const long = seqs.findIndex((s) => s.length > config.contextLength);
  if (long >= 0) throw new InputError(`dialogue ${long} (${dialogues[long]!.frames} frames) needs ${seqs[long]!.length} positions, more than model.contextLength ${config.contextLength}`);
  const buckets = byBucket(seqs, config.contextLength);
  const rng = hostRng(cfg.seed + 3);
  const params = await trainStreamModel(vocab, config, { initSeed: cfg.seed + 13, steps: cfg.steps, lr: cfg.lr, label: "dialogue transformer" }, () => {
    const length = bucketLength(pick(seqs, rng).length, config.contextLength);
    const pool = buckets.get(length)!;
    return { rows: Array.from({ length: cfg.batchSize }, () => pick(pool, rng)), length };
  });
  return { params, config, vocab, levels: cfg.levels };
}

/** Rows decoded together. */
const CHUNK = 64;

/**
 * B's streams [F·K] for each of A's (F frames each: A's clip, then its silence for B's turn):
 * at block step j, A's level k of frame j − k is read from the input and B's level k of frame
 * j − K − k is drawn from its softmax.
 */
export async function reply(model: DialogueModel, listener: readonly { codes: Int32Array; frames: number }[], { sampling, seed }: { sampling: SamplingOptions; seed: number }): Promise<Int32Array[]> {
  const { vocab, levels: k } = model;
  const k2 = 2 * k;
  const ranges = Array.from({ length: k2 }, (_, s) => vocab.range(levelName(s)));
  const eoa = vocab.special("<eoa>");
  const rng = hostRng(seed);
  const out: Int32Array[] = [];
  // every row's prompt: <bos>, then <boa> (stream 0; pads elsewhere)
  const prompt = Int32Array.from({ length: 2 * k2 }, (_, i) => (i === 0 ? vocab.special("<bos>") : i === k2 ? vocab.special("<boa>") : vocab.padId));
  const decoder = new StreamDecoder(model.params, model.config, k2, vocab.padId);
  try {
    for (let at = 0; at < listener.length; at += CHUNK) {
      const part = listener.slice(at, at + CHUNK);
      const longest = Math.max(...part.map((l) => l.frames));
      if (2 + longest + k2 - 1 > model.config.contextLength) throw new InputError(`a listener clip of ${longest} frames does not fit the model's context of ${model.config.contextLength} positions with the delays`);
      const b = part.map((l) => new Int32Array(l.frames * k));
      await decoder.run(part.map(() => prompt), Math.min(model.config.contextLength, 2 + longest + k2 - 1), (row, j, logits) => {
        const { codes, frames } = part[row]!;
        if (j >= frames + k2 - 1) return null;
        const c = new Int32Array(k2).fill(vocab.padId);
        if (j === frames) c[0] = eoa;
        for (let s = 0; s < k; s++) {
          const f = j - s;
          if (f >= 0 && f < frames) c[s] = ranges[s]!.start + codes[f * k + s]!;
        }
        for (let s = 0; s < k; s++) {
          const f = j - k - s;
          if (f < 0 || f >= frames) continue;
          const r = ranges[k + s]!;
          const code = sampleToken(logits.slice(r.start, r.end), undefined, sampling, rng);
          b[row]![f * k + s] = code;
          c[k + s] = r.start + code;
        }
        return c;
      });
      out.push(...b);
    }
  } finally {
    decoder.dispose();
  }
  return out;
}
