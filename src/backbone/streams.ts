/**
 * Multi-stream sequences: K token streams that advance together, one position per step, the
 * layout MusicGen uses for the K levels of an RVQ codec (Copet et al. 2023, §2.2, the "delay"
 * interleaving pattern). Level k of frame f sits at position p0 + f + k of stream k, so one
 * forward pass predicts all K levels of a position and level k of frame f is conditioned on
 * levels < k of the same frame (they came one or more positions earlier). A clip of F frames
 * takes F + K − 1 positions, not the F·K of a flattened sequence.
 *
 * Stream 0 carries everything that is not a lower-level code: text ids, specials, level 0, and
 * the `<eoa>` that ends a block (at p0 + F, alongside the last delayed levels). Where a stream has
 * nothing to say it holds the pad id; such cells carry no loss and the decoder fills them itself.
 *
 *   stream 0: <bos> <boa> a0₀ a0₁ … a0_F−1 <eoa>  (pad …)  text …  <eos>
 *   stream 1:  pad   pad  pad  a1₀ …       a1_F−1  (pad …)
 *   stream k:  pad   pad  (k pads) ak₀ …           ak_F−1
 *
 * The embedding of a position is the sum of its K streams' token embeddings; one LM head serves
 * every stream, stream k ≥ 1 reading its softmax over level k's codes alone (`streamLoss`).
 *
 * An audio block may carry a *condition*: ids (its text) whose embeddings are added at every
 * position of the block, from its `<boa>` to its last delayed level. A block then reads its text
 * where it speaks it, not only by attending back to the prefix: small speech models trained on
 * little data learn that lookup poorly for words spoken late in a clip (docs/audio/speech.md).
 * In a batch the conditions are C more streams (`conditionStreams`) of ids or −1 (none), whose
 * one-hot rows are zeros; they are inputs only, never targets.
 */
import { fromHost, np, type Array } from "../engine/index.ts";
import { oneHot, type EmbeddingParams } from "../nn/embedding.ts";
import { describeRange } from "./sequence/checks.ts";
import { JointVocab, type IdRange } from "./sequence/vocab.ts";

/** The specials of a speech layout. */
export const STREAM_SPECIALS = ["<bos>", "<boa>", "<eoa>", "<eos>"] as const;

/** The joint vocabulary of text and K codec levels: text ids, specials, then level 0..K−1's codes ("audio0", …). */
export function streamVocab(text: { size: number; pad: number }, levels: number, codebook: number): JointVocab {
  if (!Number.isInteger(levels) || levels < 1) throw new Error(`streamVocab: levels must be an integer ≥ 1, got ${levels}`);
  return JointVocab.build({
    text,
    specials: STREAM_SPECIALS,
    modalities: globalThis.Array.from({ length: levels }, (_, k) => ({ name: levelName(k), size: codebook, ...(k === 0 && { begin: "<boa>", end: "<eoa>" }) })),
  });
}

export const levelName = (k: number): string => `audio${k}`;

/** How many codec levels a vocabulary built by `streamVocab` holds. */
export function vocabLevels(vocab: JointVocab): number {
  let k = 0;
  while (vocab.hasModality(levelName(k))) k++;
  if (k === 0) throw new Error(`vocabulary has no audio levels (modalities: ${vocab.modalities.map((m) => m.name).join(", ")})`);
  return k;
}

/** Segments of a multi-stream sequence. `loss` is the total weight the segment's covered tokens share. */
export type StreamSegment =
  /** with `condition`, the condition starts at this position (a prompt's `<boa>`: the decoder keeps it on for what it generates) */
  | { readonly kind: "special"; readonly name: string; readonly loss?: number; readonly condition?: readonly number[] }
  /** `count` pad ids in stream 0, no loss: a text left out (the unconditional prompt of classifier-free guidance) */
  | { readonly kind: "pads"; readonly count: number }
  /** text ids (without the pad id), then `end` if given; covered: the ids and `end` */
  | { readonly kind: "text"; readonly ids: readonly number[]; readonly end?: string; readonly loss?: number }
  /** `<boa>`, F frames of K levels (codes [F·K] row-major, local ids), `<eoa>`; covered: the codes and `<eoa>` */
  | { readonly kind: "audio"; readonly codes: Int32Array; readonly frames: number; readonly loss?: number; readonly condition?: readonly number[] };

/** Ids whose embeddings are added at positions [from, to). */
export type StreamCondition = { readonly from: number; readonly to: number; readonly ids: readonly number[] };

export type StreamSequence = {
  /** T positions */
  readonly length: number;
  readonly levels: number;
  /** ids: [T·K] joint ids, position-major */
  readonly ids: Int32Array;
  /** weights: [T·K] loss weight of predicting cell (t, k) from position t − 1 */
  readonly weights: Float32Array;
  /** per audio segment: the position of its first frame (after `<boa>`) and its frames */
  readonly audio: readonly { readonly start: number; readonly frames: number }[];
  /** the conditions of its audio blocks (and of a prompt's `<boa>`), in order */
  readonly conditions: readonly StreamCondition[];
};

/** Positions an audio block of F frames takes after its `<boa>`: the delayed levels and the `<eoa>`. */
export const audioSpan = (frames: number, levels: number): number => frames + Math.max(1, levels - 1);

/** Positions `segments` compile to. */
export function streamLength(segments: readonly StreamSegment[], levels: number): number {
  return segments.reduce((n, s) => n + (s.kind === "special" ? 1 : s.kind === "pads" ? s.count : s.kind === "text" ? s.ids.length + (s.end ? 1 : 0) : 1 + audioSpan(s.frames, levels)), 0);
}

/** Compile segments into K streams (see the file header). Throws naming the segment on a bad id or shape. */
export function compileStreams(vocab: JointVocab, segments: readonly StreamSegment[]): StreamSequence {
  const levels = vocabLevels(vocab);
  const t = streamLength(segments, levels);
  const ids = new Int32Array(t * levels).fill(vocab.padId);
  const weights = new Float32Array(t * levels);
  const audio: { start: number; frames: number }[] = [];
  const conditions: StreamCondition[] = [];
  let at = 0;
  const put = (pos: number, k: number, id: number, w: number) => {
    ids[pos * levels + k] = id;
    weights[pos * levels + k] = w;
  };
  segments.forEach((s, i) => {
    const where = `stream segment ${i} (${s.kind})`;
    const condition = (from: number, to: number) => {
      if (s.kind !== "special" && s.kind !== "audio") return;
      if (!s.condition) return;
      checkTextIds(vocab, s.condition, `${where} condition`);
      conditions.push({ from, to, ids: s.condition });
    };
    if (s.kind === "special") {
      condition(at, at + 1);
      put(at++, 0, vocab.special(s.name), s.loss ?? 0);
    } else if (s.kind === "pads") {
      if (!Number.isInteger(s.count) || s.count < 0) throw new Error(`${where}: count must be an integer ≥ 0, got ${s.count}`);
      at += s.count; // the grid is filled with pads already
    } else if (s.kind === "text") {
      const w = (s.loss ?? 0) / Math.max(1, s.ids.length + (s.end ? 1 : 0));
      checkTextIds(vocab, s.ids, where);
      for (const id of s.ids) put(at++, 0, id, w);
      if (s.end) put(at++, 0, vocab.special(s.end), w);
    } else {
      const f = s.frames;
      if (!Number.isInteger(f) || f < 1 || s.codes.length !== f * levels) throw new Error(`${where}: expected codes [${f} frames · ${levels} levels] = ${f * levels}, got ${s.codes.length}`);
      condition(at, at + 1 + audioSpan(f, levels));
      put(at++, 0, vocab.special("<boa>"), 0);
      const w = (s.loss ?? 0) / (f * levels + 1);
      for (let fr = 0; fr < f; fr++) {
        for (let k = 0; k < levels; k++) {
          const code = s.codes[fr * levels + k]!;
          const r = vocab.range(levelName(k));
          if (!Number.isInteger(code) || code < 0 || code >= r.end - r.start) throw new Error(`${where}: frame ${fr} level ${k} code ${code} is outside [0, ${r.end - r.start - 1}]`);
          put(at + fr + k, k, r.start + code, w);
        }
      }
      put(at + f, 0, vocab.special("<eoa>"), w);
      audio.push({ start: at, frames: f });
      at += audioSpan(f, levels);
    }
  });
  return { length: t, levels, ids, weights, audio, conditions };
}

function checkTextIds(vocab: JointVocab, ids: readonly number[], where: string): void {
  const textRange = vocab.range("text");
  for (const id of ids) {
    if (!Number.isInteger(id) || id < textRange.start || id >= textRange.end || id === vocab.padId) throw new Error(`${where}: text id ${id} is not a text id in ${describeRange(textRange)} other than the pad id ${vocab.padId}`);
  }
}

/**
 * The C condition streams of `rows` over positions [0, length): per stream [B·length] ids, −1 where
 * a position has no condition (or fewer than C ids). A row's condition open at position `open[i]`
 * − 1 (a prompt that ends at its `<boa>`) stays on from there to the end.
 */
export function conditionStreams(rows: readonly (readonly StreamCondition[])[], length: number, width: number, open?: readonly number[]): Int32Array[] {
  const out = globalThis.Array.from({ length: width }, () => new Int32Array(rows.length * length).fill(-1));
  rows.forEach((conds, i) => {
    for (const c of conds) {
      if (c.ids.length > width) throw new Error(`conditionStreams: row ${i} has a condition of ${c.ids.length} ids, more than the ${width} condition streams`);
      const to = open && c.to === open[i] ? length : Math.min(c.to, length);
      for (let p = c.from; p < to; p++) c.ids.forEach((id, s) => (out[s]![i * length + p] = id));
    }
  });
  return out;
}

/** The most ids any of the sequences' conditions holds (the condition streams a batch of them needs). */
export const conditionWidth = (seqs: readonly { conditions: readonly StreamCondition[] }[]): number => Math.max(0, ...seqs.flatMap((s) => s.conditions.map((c) => c.ids.length)));

/** Undo the delay: the codes [F·K] (local ids) of the audio block whose first frame sits at `start`. ids: [T·K]. */
export function readAudio(vocab: JointVocab, ids: Int32Array, start: number, frames: number): Int32Array {
  const levels = vocabLevels(vocab);
  const codes = new Int32Array(frames * levels);
  for (let f = 0; f < frames; f++) {
    for (let k = 0; k < levels; k++) {
      const id = ids[(start + f + k) * levels + k]!;
      codes[f * levels + k] = vocab.fromJoint(levelName(k), id);
    }
  }
  return codes;
}

/** The joint-id ranges of level 1..K−1 (stream k reads its softmax over range k − 1 of this list). */
export function levelRanges(vocab: JointVocab): IdRange[] {
  return globalThis.Array.from({ length: vocabLevels(vocab) - 1 }, (_, k) => vocab.range(levelName(k + 1)));
}

/**
 * A device batch of multi-stream sequences for next-position training, one [B, L] array per
 * stream: inputs (cells 0..L−1), targets (cells 1..L), weights. Rows shorter than L + 1 are
 * padded with the pad id and weight 0. Level-k targets (k ≥ 1) are local codes of level k (the
 * index into its softmax); cells without a weight hold 0. `conditions`: the C condition streams
 * [B, L] (`conditionStreams`; C = `width`, by default what the rows need), inputs only.
 */
export type StreamBatch = { inputs: Array[]; targets: Array[]; weights: Array[]; conditions: Array[] };

export function streamBatch(vocab: JointVocab, seqs: readonly StreamSequence[], length: number, width = conditionWidth(seqs)): StreamBatch {
  const levels = vocabLevels(vocab);
  const b = seqs.length;
  if (b === 0) throw new Error("streamBatch: no sequences");
  const ranges = [vocab.range("text"), ...levelRanges(vocab)];
  const make = () => globalThis.Array.from({ length: levels }, () => ({ inputs: new Int32Array(b * length).fill(vocab.padId), targets: new Int32Array(b * length), weights: new Float32Array(b * length) }));
  const host = make();
  seqs.forEach((s, i) => {
    if (s.levels !== levels) throw new Error(`streamBatch: sequence ${i} has ${s.levels} streams, the vocabulary ${levels}`);
    if (s.length > length + 1) throw new Error(`streamBatch: sequence ${i} has ${s.length} positions, more than the batch length ${length} + 1`);
    for (let t = 0; t < length; t++) {
      for (let k = 0; k < levels; k++) {
        const h = host[k]!;
        if (t < s.length) h.inputs[i * length + t] = s.ids[t * levels + k]!;
        if (t + 1 < s.length && s.weights[(t + 1) * levels + k]! > 0) {
          h.targets[i * length + t] = s.ids[(t + 1) * levels + k]! - (k === 0 ? 0 : ranges[k]!.start);
          h.weights[i * length + t] = s.weights[(t + 1) * levels + k]!;
        }
      }
    }
  });
  return {
    inputs: host.map((h) => fromHost(h.inputs, [b, length])),
    targets: host.map((h) => fromHost(h.targets, [b, length])),
    weights: host.map((h) => fromHost(h.weights, [b, length])),
    conditions: conditionStreams(seqs.map((s) => s.conditions), length, width).map((c) => fromHost(c, [b, length])),
  };
}

/**
 * Σ_k embed(stream k): ids K × [B, T] → x [B, T, D], as one matmul of the K-hot rows [B, T, V]
 * with the table (differentiable; K one-hot matmuls would cost K× the forward and backward).
 * Condition streams go in the same list: their −1 cells one-hot to zeros. Consumes tok and ids.
 */
export function embedStreams(tok: EmbeddingParams, ids: readonly Array[]): Array {
  const v = tok.table.shape[0];
  let hot = oneHot(ids[0]!, v, tok.table.dtype);
  for (const s of ids.slice(1)) hot = hot.add(oneHot(s, v, tok.table.dtype));
  return np.matmul(hot, tok.table);
}
