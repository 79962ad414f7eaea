/**
 * Pipeline stage: speech in the unified model. One decoder-only transformer over text ids and K
 * levels of the neural codec's RVQ ids (backbone/streams.ts, the MusicGen delay pattern), trained
 * by next-token prediction on both directions mixed in every batch:
 *
 *   recognition (ASR)  <bos> <boa> codes… <eoa> text… <eos>     loss on the text
 *   synthesis (TTS)    <bos> text… <boa> codes… <eoa>           loss on the codes
 *   voice prompt       <bos> <boa> prompt… <eoa> text… <boa> codes… <eoa>
 *                      (another clip of the same voice first: VALL-E's continuation; loss on the codes)
 *
 * as the image demo trains captioning and drawing in one model. The codec (pipelines/codec.ts)
 * turns clips into ids and synthesized ids back into waveforms.
 */
import { hostRng } from "../engine/rng.ts";
import { pick, type Rng } from "../data/shuffle.ts";
import { compileStreams, levelName, streamLength, streamVocab, type StreamSegment, type StreamSequence } from "../backbone/streams.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import { asInputError, InputError } from "../io/errors.ts";
import { checkTransformerConfig, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { StreamDecoder } from "../generate/streams.ts";
import { GREEDY, sampleToken, type SamplingOptions } from "../generate/sampling.ts";
import { bucketLength, byBucket, trainStreamModel } from "../train/streams.ts";
import type { CodecTokenizer } from "../tokenizers/audio/codec-tokenizer.ts";
import type { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";

export type SpeechTrainConfig = {
  readonly seed: number;
  readonly steps: number;
  readonly batchSize: number;
  /** Peak learning rate (warm-up 50 steps, then cosine). */
  readonly lr: number;
  /** Codec levels the model reads and writes (≤ the codec's): 4 levels of the default codec are 3.2 kbps. */
  readonly levels: number;
  /**
   * Sample offsets at which every training clip is also encoded (zeros prepended): the codec's
   * frames fall on other samples, so the model sees other ids for the same speech.
   */
  readonly shifts: readonly number[];
  /**
   * Fraction of synthesis rows whose text is replaced by pads (Ho & Salimans 2022): the model
   * also learns p(codes) without text, the unconditional half of classifier-free guidance.
   */
  readonly textDropout: number;
  /**
   * How each batch's length bucket is drawn: by the bucket of a clip ("clips", any clip alike) or
   * of a clip of a transcript drawn first ("transcripts"), so rare sentences (the digits' phrases
   * are 1 clip in 5, and alone in their buckets) are trained as often as common ones. Clips with
   * unique transcripts are drawn alike either way.
   */
  readonly balance: "clips" | "transcripts";
  /**
   * Frames of the voice prompt (the start of another clip of the same voice, then the text, then
   * the clip: the model learns to continue a voice); 0 = no voice-prompt rows. Needs each
   * example's `voice`.
   */
  readonly voicePrompt: number;
  /**
   * Share of batches drawn from concatenations: each example's codes followed by another's of the
   * same voice (if known), transcribed as both texts one after the other, for both tasks. They
   * train what phrases need and single words do not teach: finding the text of a word spoken
   * late in a clip. 0 = none.
   */
  readonly concat: number;
  /**
   * Synthesis blocks also add their text's embeddings at every audio position (backbone/streams.ts,
   * conditions), so a word spoken late in a clip reads its text where it is spoken.
   */
  readonly textCondition: boolean;
  /**
   * Share of each batch's rows that speak (synthesis and voice-prompt rows); the rest recognize.
   * Recognition saturates early on the digits, synthesis does not.
   */
  readonly synthesisShare: number;
  readonly model: Omit<TransformerConfig, "vocabSize">;
};

export const DEFAULT_SPEECH_TRAIN: SpeechTrainConfig = {
  seed: 0,
  steps: 2000,
  batchSize: 16,
  lr: 2e-3,
  levels: 4,
  shifts: [0, 80],
  textDropout: 0.1,
  balance: "clips",
  voicePrompt: 0,
  concat: 0,
  textCondition: true,
  synthesisShare: 0.5,
  model: { contextLength: 192, dim: 128, layers: 4, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "rope" },
};

/** Throws, naming the field, the value and what is allowed, unless `cfg` is a valid training config. */
export function checkSpeechTrainConfig(cfg: SpeechTrainConfig, where = "speech training config"): void {
  const int = (key: "seed" | "steps" | "batchSize" | "levels", min: number) => {
    const v = cfg[key];
    if (!Number.isInteger(v) || v < min) throw new InputError(`${where}: ${key} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`, { field: key, value: v });
  };
  int("seed", 0);
  int("steps", 1);
  int("batchSize", 1);
  int("levels", 1);
  if (!Number.isInteger(cfg.voicePrompt) || cfg.voicePrompt < 0) throw new InputError(`${where}: voicePrompt must be an integer ≥ 0 (frames; 0 = off), got ${JSON.stringify(cfg.voicePrompt)}`, { field: "voicePrompt", value: cfg.voicePrompt });
  if (!(cfg.lr > 0) || !Number.isFinite(cfg.lr)) throw new InputError(`${where}: lr must be a positive number, got ${JSON.stringify(cfg.lr)}`, { field: "lr", value: cfg.lr });
  if (!(cfg.concat >= 0 && cfg.concat < 1)) throw new InputError(`${where}: concat must be a number in [0, 1), got ${JSON.stringify(cfg.concat)}`, { field: "concat", value: cfg.concat });
  if (!(cfg.textDropout >= 0 && cfg.textDropout < 1)) throw new InputError(`${where}: textDropout must be a number in [0, 1), got ${JSON.stringify(cfg.textDropout)}`, { field: "textDropout", value: cfg.textDropout });
  if (!(cfg.synthesisShare >= 0 && cfg.synthesisShare <= 1)) throw new InputError(`${where}: synthesisShare must be a number in [0, 1], got ${JSON.stringify(cfg.synthesisShare)}`, { field: "synthesisShare", value: cfg.synthesisShare });
  if (typeof cfg.textCondition !== "boolean") throw new InputError(`${where}: textCondition must be true or false, got ${JSON.stringify(cfg.textCondition)}`, { field: "textCondition", value: cfg.textCondition });
  if (cfg.balance !== "clips" && cfg.balance !== "transcripts") throw new InputError(`${where}: balance must be "clips" or "transcripts", got ${JSON.stringify(cfg.balance)}`, { field: "balance", value: cfg.balance });
  if (!Array.isArray(cfg.shifts) || cfg.shifts.length === 0 || cfg.shifts.some((x) => !Number.isInteger(x) || x < 0)) throw new InputError(`${where}: shifts must be a non-empty list of sample offsets ≥ 0, got ${JSON.stringify(cfg.shifts)}`, { field: "shifts", value: cfg.shifts });
  asInputError(() => checkTransformerConfig({ ...cfg.model, vocabSize: 1 }, `${where}: model`));
  if (cfg.model.positions === "rope2d") throw new InputError(`${where}: model.positions must be "learned" or "rope" (speech streams are 1-D), got "rope2d"`, { field: "model.positions", value: "rope2d" });
}

/** A clip as the model sees it: codes [F·K] (local ids, frame-major), its transcript's text ids, and who spoke it how, where known. */
export type SpeechExample = { readonly codes: Int32Array; readonly frames: number; readonly text: readonly number[]; readonly transcript: string; readonly voice?: string };

/** The most words a recognized transcript may have (the longest training transcript + 4). */
export const maxWordsOf = (examples: readonly SpeechExample[]): number => Math.max(...examples.map((e) => e.text.length)) + 4;

/** Encode clips with `codec` (at its levels) into examples, each clip also at every sample offset of `shifts`. */
export async function speechExamples(codec: CodecTokenizer, text: TextTokenizer, clips: readonly { samples: Float32Array; text: string; voice?: string }[], shifts: readonly number[] = [0]): Promise<SpeechExample[]> {
  const sr = codec.config.sampleRate;
  const out: SpeechExample[] = [];
  for (const shift of shifts) {
    const shifted = clips.map((c) => {
      const s = new Float32Array(c.samples.length + shift);
      s.set(c.samples, shift);
      return { samples: s, sampleRate: sr };
    });
    const ids = await codec.encode(shifted);
    ids.forEach((t, i) => {
      const c = clips[i]!;
      out.push({ codes: t.ids, frames: t.shape[0]!, text: text.encodeText(c.text), transcript: c.text, ...(c.voice !== undefined && { voice: c.voice }) });
    });
  }
  return out;
}

/** The recognition document; without `text`, the prompt up to the text. */
export const asrSegments = (e: { codes: Int32Array; frames: number; text?: readonly number[] }): StreamSegment[] => [
  { kind: "special", name: "<bos>" },
  { kind: "audio", codes: e.codes, frames: e.frames, loss: 0 },
  ...(e.text ? [{ kind: "text" as const, ids: e.text, end: "<eos>", loss: 1 }] : []),
];

/** How a synthesis document is laid out: `blank`, the text's positions hold pads (guidance's unconditional document, as long as the conditional one); `condition`, the audio block is conditioned on the text (unless blank). */
export type TtsLayout = { readonly blank?: boolean; readonly condition?: boolean };

/** The synthesis document; without codes, the prompt `<bos> text <boa>`. */
export const ttsSegments = (e: { text: readonly number[]; codes?: Int32Array; frames?: number }, { blank = false, condition = false }: TtsLayout = {}): StreamSegment[] => {
  const cond = condition && !blank ? { condition: e.text } : {};
  return [
    { kind: "special", name: "<bos>" },
    blank ? { kind: "pads", count: e.text.length } : { kind: "text", ids: e.text, loss: 0 },
    e.codes ? { kind: "audio", codes: e.codes, frames: e.frames!, loss: 1, ...cond } : { kind: "special", name: "<boa>", ...cond },
  ];
};

/** The first `frames` frames of a clip: what a voice prompt holds. */
export function cropFrames(e: { codes: Int32Array; frames: number }, frames: number, levels: number): { codes: Int32Array; frames: number } {
  const f = Math.min(frames, e.frames);
  return { codes: e.codes.subarray(0, f * levels), frames: f };
}

/** The voice-prompt document: the prompt clip, the text (or pads), then the clip, or `<boa>` to be continued. */
export const voiceSegments = (prompt: { codes: Int32Array; frames: number }, e: { text: readonly number[]; codes?: Int32Array; frames?: number }, layout: TtsLayout = {}): StreamSegment[] => [
  { kind: "special", name: "<bos>" },
  { kind: "audio", codes: prompt.codes, frames: prompt.frames, loss: 0 },
  ...ttsSegments(e, layout).slice(1),
];

/** `textCondition`: synthesis reads its text at every audio position too (`SpeechTrainConfig.textCondition`). */
export type SpeechModel = { readonly params: TransformerParams; readonly config: TransformerConfig; readonly vocab: JointVocab; readonly levels: number; readonly textCondition: boolean };

/** A training row: its length, its clip, and how to draw it (the sequence, and for synthesis its text-free twin of the same length, which also marks a row that speaks). */
type Row = { readonly length: number; readonly example: SpeechExample; readonly speaks: boolean; readonly draw: (r: Rng) => { seq: StreamSequence; twin?: StreamSequence } };

const fixedRow = (seq: StreamSequence, example: SpeechExample, twin?: StreamSequence): Row => ({ length: seq.length, example, speaks: twin !== undefined, draw: () => ({ seq, ...(twin && { twin }) }) });

/**
 * Train on the tasks: recognition and synthesis of every example, and with `voicePrompt` > 0
 * continuation after a prompt drawn afresh each time from the voice's other clips. Batches are
 * drawn from one length bucket (positions rounded up to 32, so a handful of compiled step shapes
 * serve every clip): a random (example, task) pair picks the bucket, the rest of the batch is
 * drawn from that bucket. `init` (consumed): continue from these weights, of a model of the same
 * config, vocabulary and conditioning.
 */
export async function trainSpeech(examples: readonly SpeechExample[], text: TextTokenizer, codebook: number, cfg: SpeechTrainConfig, init?: TransformerParams): Promise<SpeechModel> {
  const pad = text.tokenToId("<pad>");
  if (pad === undefined) throw new Error("trainSpeech: the text tokenizer has no <pad> token");
  const vocab = streamVocab({ size: text.vocabSize, pad }, cfg.levels, codebook);
  const config: TransformerConfig = { ...cfg.model, vocabSize: vocab.size };
  const rows: Row[] = [];
  const compile = (segments: StreamSegment[]) => compileStreams(vocab, segments);
  const condition = cfg.textCondition;
  for (const e of examples) {
    rows.push(fixedRow(compile(asrSegments(e)), e));
    rows.push(fixedRow(compile(ttsSegments(e, { condition })), e, compile(ttsSegments(e, { blank: true }))));
  }
  if (cfg.voicePrompt > 0) {
    // prompts of exactly voicePrompt frames, so a row's length does not depend on the prompt drawn
    const partners = new Map<string, SpeechExample[]>();
    for (const e of examples) if (e.voice !== undefined && e.frames >= cfg.voicePrompt) partners.set(e.voice, [...(partners.get(e.voice) ?? []), e]);
    for (const e of examples) {
      const others = (partners.get(e.voice ?? "") ?? []).filter((o) => o.transcript !== e.transcript);
      if (others.length === 0) continue;
      const promptOf = (r: Rng) => cropFrames(pick(others, r), cfg.voicePrompt, cfg.levels);
      const length = streamLength(voiceSegments(promptOf(() => 0), e), cfg.levels);
      if (length > config.contextLength) continue; // a clip too long to follow a prompt is trained without one
      rows.push({
        length,
        example: e,
        speaks: true,
        draw: (r) => {
          const prompt = promptOf(r);
          return { seq: compile(voiceSegments(prompt, e, { condition })), twin: compile(voiceSegments(prompt, e, { blank: true })) };
        },
      });
    }
  }
  if (cfg.voicePrompt > 0 && rows.length === 2 * examples.length) {
    throw new InputError(`voicePrompt is ${cfg.voicePrompt}, but no clip has another clip of its voice with another transcript and at least ${cfg.voicePrompt} frames (voices come from the spoken digits' manifest or a transcript's third column)`, { field: "voicePrompt", value: cfg.voicePrompt });
  }
  const joined: Row[] = [];
  if (cfg.concat > 0) {
    const partner = hostRng(cfg.seed + 9);
    const room = config.contextLength - 2 * (1 + Math.max(1, cfg.levels - 1)) - 2 * maxWordsOf(examples);
    for (const e of examples) {
      const others = examples.filter((o) => o !== e && o.voice === e.voice && o.frames + e.frames <= room);
      if (others.length === 0) continue;
      const o = pick(others, partner);
      const codes = new Int32Array(e.codes.length + o.codes.length);
      codes.set(e.codes);
      codes.set(o.codes, e.codes.length);
      const both = { codes, frames: e.frames + o.frames, text: [...e.text, ...o.text], transcript: `${e.transcript} ${o.transcript}`, ...(e.voice !== undefined && { voice: e.voice }) };
      joined.push(fixedRow(compile(asrSegments(both)), both));
      joined.push(fixedRow(compile(ttsSegments(both, { condition })), both, compile(ttsSegments(both, { blank: true }))));
    }
  }
  const tooLong = [...rows, ...joined].find((r) => r.length > config.contextLength);
  if (tooLong) {
    const e = tooLong.example;
    throw new Error(`trainSpeech: "${e.transcript}" (${e.frames} frames) needs ${tooLong.length} positions, more than model.contextLength ${config.contextLength}`);
  }
  // concatenations have their own buckets, so they do not crowd out the long clips in theirs
  // each bucket's rows that speak, and those that recognize (synthesisShare draws between them)
  const byTask = (items: Row[]) => new Map([...byBucket(items, config.contextLength)].map(([length, pool]) => [length, [pool.filter((r) => r.speaks), pool.filter((r) => !r.speaks)] as const]));
  const [buckets, joinedBuckets] = [byTask(rows), byTask(joined)];
  // the rng draws buckets and rows (the model's initialization has its own seed)
  const rng = hostRng(cfg.seed + 5);
  const byTranscript = new Map<string, Row[]>();
  for (const r of rows) byTranscript.set(r.example.transcript, [...(byTranscript.get(r.example.transcript) ?? []), r]);
  const groups = [...byTranscript.values()];
  const first = cfg.balance === "transcripts" ? () => pick(pick(groups, rng), rng) : () => pick(rows, rng);
  const conditionWidth = condition ? Math.max(...[...examples, ...joined.map((r) => r.example)].map((e) => e.text.length)) : 0;
  const params = await trainStreamModel(vocab, config, { initSeed: cfg.seed + 11, steps: cfg.steps, lr: cfg.lr, label: "speech transformer", conditionWidth, ...(init && { init }) }, () => {
    const fromJoined = joined.length > 0 && rng() < cfg.concat;
    const length = bucketLength((fromJoined ? pick(joined, rng) : first()).length, config.contextLength);
    const [speaking, hearing] = (fromJoined ? joinedBuckets : buckets).get(length)!;
    const batch = Array.from({ length: cfg.batchSize }, () => {
      const from = hearing.length === 0 || (speaking.length > 0 && rng() < cfg.synthesisShare) ? speaking : hearing;
      const { seq, twin } = pick(from, rng).draw(rng);
      return twin && rng() < cfg.textDropout ? twin : seq;
    });
    return { rows: batch, length };
  });
  return { params, config, vocab, levels: cfg.levels, textCondition: condition };
}

/** Rows decoded together (the KV caches are [rows, context, …]). */
const CHUNK = 64;

/** Speech → transcripts (greedy text after each clip's codes). */
export async function recognize(model: SpeechModel, text: TextTokenizer, clips: readonly { codes: Int32Array; frames: number }[], { maxWords = 8 }: { maxWords?: number } = {}): Promise<string[]> {
  const { vocab, levels } = model;
  const allowed = vocab.allowedMask({ modalities: ["text"], specials: ["<eos>"] });
  const eos = vocab.special("<eos>");
  const out: string[] = [];
  const decoder = new StreamDecoder(model.params, model.config, levels, vocab.padId);
  try {
    for (let at = 0; at < clips.length; at += CHUNK) {
      const part = clips.slice(at, at + CHUNK);
      const prompts = part.map((c) => compileStreams(vocab, asrSegments({ codes: c.codes, frames: c.frames })).ids);
      const words: number[][] = part.map(() => []);
      const longest = Math.max(...prompts.map((p) => p.length / levels));
      await decoder.run(prompts, Math.min(model.config.contextLength, longest + maxWords + 1), (row, j, logits) => {
        if (j > maxWords) return null;
        const id = sampleToken(logits, allowed, GREEDY, () => 0);
        if (id === eos) return null;
        words[row]!.push(id);
        return cell(levels, vocab.padId, id);
      });
      out.push(...words.map((w) => text.decodeText(w)));
    }
  } finally {
    decoder.dispose();
  }
  return out;
}

/** K ids: `first` in stream 0, pads elsewhere. */
function cell(levels: number, pad: number, first: number): Int32Array {
  const c = new Int32Array(levels).fill(pad);
  c[0] = first;
  return c;
}

export type SynthesisOptions = {
  readonly sampling: SamplingOptions;
  readonly seed: number;
  readonly maxFrames: number;
  /** `<eoa>` may not be drawn before this many frames (1 = a clip of one frame may end there): a sampled early `<eoa>` otherwise leaves a clip of a few milliseconds. */
  readonly minFrames: number;
  /**
   * And not before this many frames per text token (0 = no such floor): a text of several words
   * may not end after one word's length. The digits' training clips run 25 frames per word or
   * more.
   */
  readonly minFramesPerToken: number;
  /** Classifier-free guidance scale s: codes drawn from ℓ_u + s·(ℓ_c − ℓ_u), ℓ_u without the text; 1 = off. */
  readonly guidance: number;
};

export const DEFAULT_SYNTHESIS: SynthesisOptions = { sampling: { temperature: 0.8, topK: 40 }, seed: 0, maxFrames: 150, minFrames: 20, minFramesPerToken: 0, guidance: 2 };

/**
 * Text ids → codes [F·K] (local ids, frame-major) per text, in the voice of `voices[i]` if given
 * (a prompt clip's codes, `cropFrames` to the training's voicePrompt), under the delay pattern: at block
 * step j, stream 0 draws level 0 of frame j or `<eoa>` (forced at `maxFrames`), stream k ≥ 1
 * level k of frame j − k while that frame exists; the rest are pads.
 */
export async function synthesize(model: SpeechModel, texts: readonly (readonly number[])[], opts: SynthesisOptions = DEFAULT_SYNTHESIS, voices?: readonly { codes: Int32Array; frames: number }[]): Promise<{ codes: Int32Array; frames: number }[]> {
  if (voices && voices.length !== texts.length) throw new Error(`synthesize: ${voices.length} voice prompts for ${texts.length} texts`);
  const { vocab, levels } = model;
  const eoa = vocab.special("<eoa>");
  const first = vocab.allowedMask({ modalities: [levelName(0)], specials: ["<eoa>"] });
  const opening = vocab.allowedMask({ modalities: [levelName(0)] }); // a clip has at least one frame
  const ranges = Array.from({ length: levels }, (_, k) => vocab.range(levelName(k)));
  const rng = hostRng(opts.seed);
  const out: { codes: Int32Array; frames: number }[] = [];
  const decoder = new StreamDecoder(model.params, model.config, levels, vocab.padId);
  try {
    for (let at = 0; at < texts.length; at += CHUNK) {
      const part = texts.slice(at, at + CHUNK);
      const n = part.length;
      const guided = opts.guidance !== 1;
      // guidance: rows n..2n−1 decode each text's blank twin in lockstep with it
      const promptOf = (t: readonly number[], i: number, blank: boolean) => {
        const v = voices?.[at + i];
        const layout = { blank, condition: model.textCondition };
        return compileStreams(vocab, v ? voiceSegments(v, { text: t }, layout) : ttsSegments({ text: t }, layout));
      };
      const compiled = [...part.map((t, i) => promptOf(t, i, false)), ...(guided ? part.map((t, i) => promptOf(t, i, true)) : [])];
      const prompts = compiled.map((c) => c.ids);
      const chosen: (Int32Array | null)[] = part.map(() => null);
      const longest = Math.max(...prompts.map((p) => p.length / levels));
      const maxFrames = Math.min(opts.maxFrames, model.config.contextLength - longest - levels);
      if (maxFrames < 1) throw new Error(`synthesize: a prompt of ${longest} positions leaves no room for audio in the context of ${model.config.contextLength}`);
      const floors = part.map((t) => Math.max(opts.minFrames, opts.minFramesPerToken * t.length));
      const frames = part.map(() => -1); // F once <eoa> is drawn
      const codes = part.map(() => [] as number[][]); // per frame, K local codes
      await decoder.run(prompts, Math.min(model.config.contextLength, longest + maxFrames + levels), (row, j, cond, logitsOf) => {
        if (row >= n) return chosen[row - n]!; // the twin reads what its text row drew (asked after it)
        const free = guided ? logitsOf(row + n) : undefined;
        const logits = free ? cond.map((c, i) => free[i]! + opts.guidance * (c - free[i]!)) : cond;
        const f = frames[row]!;
        if (f >= 0 && j >= f + Math.max(1, levels - 1)) return (chosen[row] = null);
        const c = new Int32Array(levels).fill(vocab.padId);
        if (f < 0) {
          const id = j >= maxFrames ? eoa : sampleToken(logits.slice(), j < floors[row]! ? opening : first, opts.sampling, rng);
          if (id === eoa) {
            frames[row] = j;
            c[0] = eoa;
          } else {
            c[0] = id;
            codes[row]!.push(new Array(levels).fill(0));
            codes[row]![j]![0] = id - ranges[0]!.start;
          }
        }
        const known = frames[row]!;
        for (let k = 1; k < levels; k++) {
          const fr = j - k;
          if (fr < 0 || (known >= 0 && fr >= known)) continue;
          const r = ranges[k]!;
          const local = logits.slice(r.start, r.end);
          const code = sampleToken(local, undefined, opts.sampling, rng);
          codes[row]![fr]![k] = code;
          c[k] = r.start + code;
        }
        return (chosen[row] = c);
      }, compiled.map((c) => c.conditions));
      part.forEach((_, i) => out.push({ codes: Int32Array.from(codes[i]!.flat()), frames: codes[i]!.length }));
    }
  } finally {
    decoder.dispose();
  }
  return out;
}
