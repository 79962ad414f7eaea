/**
 * Dialogue runs (pipelines/dialogue.ts): the spoken digits made into two-speaker conversations,
 * training, measurement with a speech run's recognizer as the judge, and the run folder:
 *
 *   dialogue.json        format, version, the joint vocabulary, levels, frames, training, eval
 *   model.safetensors    the transformer (config in model.json)
 *   codec/               the codec (pipelines/codec.ts), read at the run's levels
 *
 * written whole into a sibling folder, then renamed into place.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startEngine, tree } from "../engine/index.ts";
import { paramsOfInit, paramsToTensors } from "../engine/params.ts";
import { hostRng } from "../engine/rng.ts";
import { DIGIT_WORDS } from "../data/captions.ts";
import { loadSpokenDigits, type DigitClip } from "../data/speech.ts";
import { pick } from "../data/shuffle.ts";
import { JointVocab, type VocabJSON } from "../backbone/sequence/vocab.ts";
import { vocabLevels } from "../backbone/streams.ts";
import { initTransformerForShapes, type TransformerConfig } from "../backbone/transformer.ts";
import { loadCheckpoint, replaceFolder, saveCheckpoint, writeAtomic } from "../io/checkpoint.ts";
import { InputError, parseJson } from "../io/errors.ts";
import type { CodecTokenizer } from "../tokenizers/audio/codec-tokenizer.ts";
import { loadCodec, saveCodec } from "./codec.ts";
import { DEFAULT_DIALOGUE_TRAIN, reply, trainDialogue, type Dialogue, type DialogueModel, type DialogueTrainConfig } from "./dialogue.ts";
import { transcribe, type SpeechRun } from "./speech-run.ts";

export const DIALOGUE_FORMAT = "mmntp-dialogue";

export type DialogueReport = {
  data: string;
  /** held-out listener clips answered */
  replies: number;
  /** replies the judge recognized as the next digit */
  nextDigit: number;
  /** replies whose loudest 10 ms during the listener's clip is ≥ 20 dB below their loudest in their own turn */
  quietWhileListening: number;
  rtf: number;
};

export type DialogueManifest = {
  format: typeof DIALOGUE_FORMAT;
  version: 1;
  vocab: VocabJSON;
  levels: number;
  replyFrames: number;
  training?: DialogueTrainConfig & { data: string; dialogues: number };
  eval?: DialogueReport;
};

export type DialogueRun = { readonly model: DialogueModel; readonly codec: CodecTokenizer; readonly manifest: DialogueManifest };

export const nextDigit = (label: number): number => (label + 1) % 10;

/** A's clip then silence for B's turn, and B's silence then B's clip: equal-length waveforms, `hop`-aligned turns. */
function conversation(a: Float32Array, b: Float32Array | undefined, hop: number, cfg: Pick<DialogueTrainConfig, "gapFrames" | "replyFrames">): { a: Float32Array; b: Float32Array; turn: number } {
  const turn = Math.ceil(a.length / hop);
  const n = (turn + cfg.replyFrames) * hop;
  const wa = new Float32Array(n);
  wa.set(a);
  const wb = new Float32Array(n);
  if (b) wb.set(b.subarray(0, Math.min(b.length, (cfg.replyFrames - cfg.gapFrames) * hop)), (turn + cfg.gapFrames) * hop);
  return { a: wa, b: wb, turn };
}

/** Each single-word clip as A, answered by `partners` clips of the next digit by other speakers, encoded by `codec`. */
export async function makeDialogues(codec: CodecTokenizer, clips: readonly DigitClip[], cfg: DialogueTrainConfig): Promise<Dialogue[]> {
  const words = clips.filter((c) => !c.text.includes(" "));
  const rng = hostRng(cfg.seed + 1);
  const hop = codec.config.sampleRate / codec.frameRate;
  const pairs: { a: Float32Array; b: Float32Array; turn: number }[] = [];
  for (const a of words) {
    const answers = words.filter((b) => b.label === nextDigit(a.label) && b.speaker !== a.speaker);
    for (let p = 0; p < cfg.partners && answers.length > 0; p++) pairs.push(conversation(a.samples, pick(answers, rng).samples, hop, cfg));
  }
  const sr = codec.config.sampleRate;
  const [ia, ib] = [await codec.encode(pairs.map((p) => ({ samples: p.a, sampleRate: sr }))), await codec.encode(pairs.map((p) => ({ samples: p.b, sampleRate: sr })))];
  return pairs.map((p, i) => ({ a: ia[i]!.ids, b: ib[i]!.ids, frames: ia[i]!.shape[0]!, turn: p.turn }));
}

/** B's replies to each listener clip, decoded: the reply alone and the conversation (both mixed), with seconds of work per second of audio. */
export async function converse(run: Omit<DialogueRun, "manifest">, listener: readonly Float32Array[], replyFrames: number, { temperature = 0.8, topK = 40, seed = 0 } = {}): Promise<{ replies: Float32Array[]; mixed: Float32Array[]; turns: number[]; rtf: number }> {
  const t0 = performance.now();
  const sr = run.codec.config.sampleRate;
  const hop = sr / run.codec.frameRate;
  const convs = listener.map((a) => conversation(a, undefined, hop, { gapFrames: 0, replyFrames }));
  const ids = await run.codec.encode(convs.map((c) => ({ samples: c.a, sampleRate: sr })));
  const b = await reply(run.model, ids.map((t) => ({ codes: t.ids, frames: t.shape[0]! })), { sampling: { temperature, topK }, seed });
  const waves = await run.codec.decode(b.map((codes, i) => ({ ids: codes, shape: [ids[i]!.shape[0]!, run.model.levels] })));
  const replies = waves.map((w) => w.samples);
  const mixed = replies.map((r, i) => r.map((v, j) => v + (convs[i]!.a[j] ?? 0)));
  const seconds = replies.reduce((a, r) => a + r.length, 0) / sr;
  return { replies, mixed, turns: convs.map((c) => c.turn * hop), rtf: (performance.now() - t0) / 1000 / seconds };
}

/** Loudest 10 ms window (mean square, dB) of x[from, to). */
function loudest(x: Float32Array, from: number, to: number, win: number): number {
  let best = 1e-12;
  for (let s = from; s + win <= to; s += win) {
    let e = 0;
    for (let i = s; i < s + win; i++) e += x[i]! * x[i]!;
    best = Math.max(best, e / win);
  }
  return 10 * Math.log10(best);
}

/** Replies to held-out listener clips, judged by a speech run's recognizer. */
export async function evaluateDialogue(run: Omit<DialogueRun, "manifest">, judge: SpeechRun, clips: readonly DigitClip[], replyFrames: number, data = "clips"): Promise<DialogueReport> {
  const words = clips.filter((c) => !c.text.includes(" "));
  const { replies, turns, rtf } = await converse(run, words.map((c) => c.samples), replyFrames);
  const sr = run.codec.config.sampleRate;
  const heard = (await transcribe(judge, replies.map((samples, i) => ({ samples: samples.subarray(turns[i]!) })))).texts;
  const win = Math.round(sr / 100);
  return {
    data,
    replies: words.length,
    nextDigit: words.filter((c, i) => heard[i]!.split(/\s+/).includes(DIGIT_WORDS[nextDigit(c.label)]!)).length / words.length,
    quietWhileListening: replies.filter((r, i) => loudest(r, 0, turns[i]!, win) <= loudest(r, turns[i]!, r.length, win) - 20).length / words.length,
    rtf,
  };
}

export async function trainDialogueRun(opts: { out: string; codec: CodecTokenizer; judge?: SpeechRun; train?: DialogueTrainConfig }): Promise<{ run: DialogueRun; report?: DialogueReport }> {
  await startEngine();
  const cfg = opts.train ?? DEFAULT_DIALOGUE_TRAIN;
  if (cfg.levels > opts.codec.levels) throw new InputError(`levels ${cfg.levels} is more than the codec's ${opts.codec.levels}`, { field: "levels", value: cfg.levels });
  const codec = opts.codec.levels === cfg.levels ? opts.codec : opts.codec.withLevels(cfg.levels);
  const { train, test } = loadSpokenDigits();
  const dialogues = await makeDialogues(codec, train.clips, cfg);
  const model = await trainDialogue(dialogues, codec.vocabSize, cfg);
  const run = { model, codec };
  const report = opts.judge ? await evaluateDialogue(run, opts.judge, test.clips, cfg.replyFrames, "spoken-digits (held-out speakers)") : undefined;
  const manifest = await saveDialogueRun(opts.out, run, cfg.replyFrames, { training: { ...cfg, data: "spoken-digits", dialogues: dialogues.length }, ...(report && { eval: report }) });
  return { run: { ...run, manifest }, ...(report && { report }) };
}

export async function saveDialogueRun(dir: string, r: Omit<DialogueRun, "manifest">, replyFrames: number, extra: Pick<DialogueManifest, "training" | "eval"> = {}): Promise<DialogueManifest> {
  return replaceFolder(dir, async (tmp) => {
    await saveCodec(join(tmp, "codec"), r.codec);
    saveCheckpoint(tmp, "model", { tensors: await paramsToTensors(r.model.params as never), config: r.model.config });
    const manifest: DialogueManifest = { format: DIALOGUE_FORMAT, version: 1, vocab: r.model.vocab.toJSON(), levels: r.model.levels, replyFrames, ...extra };
    writeAtomic(join(tmp, "dialogue.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  });
}

export async function loadDialogueRun(dir: string): Promise<DialogueRun> {
  await startEngine();
  const file = join(dir, "dialogue.json");
  if (!existsSync(file)) throw new InputError(`${dir} is not a dialogue run: ${file} is missing (make one with \`mmntp dialogue train -o ${dir}\`)`, { file });
  const m = parseJson(readFileSync(file, "utf8"), file) as DialogueManifest;
  if (m?.format !== DIALOGUE_FORMAT || m.version !== 1) throw new InputError(`${file}: expected format "${DIALOGUE_FORMAT}" version 1, got ${JSON.stringify(m?.format)} version ${JSON.stringify(m?.version)}`, { file, field: "format" });
  const vocab = JointVocab.fromJSON(m.vocab);
  const levels = vocabLevels(vocab) / 2;
  if (m.levels !== levels) throw new InputError(`${file}: levels is ${JSON.stringify(m.levels)}, but the vocabulary holds ${2 * levels} streams`, { file, field: "levels" });
  const { tensors, config } = loadCheckpoint(dir, "model");
  const cfg = config as TransformerConfig;
  if (cfg.vocabSize !== vocab.size) throw new InputError(`${join(dir, "model.json")}: vocabSize is ${cfg.vocabSize}, the joint vocabulary has ${vocab.size} ids`, { file: join(dir, "model.json"), field: "vocabSize" });
  const codec = await loadCodec(join(dir, "codec"), { levels });
  return { model: { params: paramsOfInit(tensors, () => initTransformerForShapes(cfg), join(dir, "model.safetensors")), config: cfg, vocab, levels }, codec, manifest: m };
}

export function disposeDialogueRun(r: DialogueRun): void {
  tree.dispose(r.model.params);
  r.codec.dispose();
}
