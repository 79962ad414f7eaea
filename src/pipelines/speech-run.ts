/**
 * Speech run folders and their measurements. A folder holds everything `mmntp asr` and
 * `mmntp tts` need, so it can be moved or shipped alone:
 *
 *   speech.json          format, version, the joint vocabulary, levels, how it was trained, eval
 *   model.safetensors    the transformer (config in model.json)
 *   tokenizer.json       the text tokenizer (HF tokenizers format)
 *   codec/               the codec (pipelines/codec.ts), read at the run's levels
 *
 * A run is written whole into a sibling folder and then renamed into place (`saveSpeechRun`).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startEngine, tree } from "../engine/index.ts";
import { paramsOfInit, paramsToTensors } from "../engine/params.ts";
import { loadSpokenDigits, loadSpeechFolder } from "../data/speech.ts";
import { DIGIT_WORDS } from "../data/captions.ts";
import { levelName, vocabLevels } from "../backbone/streams.ts";
import { JointVocab, type VocabJSON } from "../backbone/sequence/vocab.ts";
import { checkTransformerConfig, initTransformerForShapes, type TransformerConfig } from "../backbone/transformer.ts";
import { wordAccuracy } from "../eval/asr.ts";
import { loadCheckpoint, replaceFolder, saveCheckpoint, writeAtomic } from "../io/checkpoint.ts";
import { asInputError, InputError, parseJson } from "../io/errors.ts";
import type { CodecTokenizer } from "../tokenizers/audio/codec-tokenizer.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../tokenizers/text/train.ts";
import { loadCodec, saveCodec } from "./codec.ts";
import { voiceAccuracy, voiceIdentifier } from "../eval/voice.ts";
import { cropFrames, DEFAULT_SYNTHESIS, maxWordsOf, recognize, speechExamples, synthesize, trainSpeech, type SpeechModel, type SpeechTrainConfig, type SynthesisOptions } from "./speech.ts";

export const SPEECH_FORMAT = "mmntp-speech";
export const SPEECH_VERSION = 1;

export type SpeechManifest = {
  format: typeof SPEECH_FORMAT;
  version: number;
  vocab: VocabJSON;
  levels: number;
  /** the longest transcript recognition may write, in words */
  maxWords: number;
  /** synthesis blocks read their text at every audio position (absent in runs before it: false) */
  textCondition?: boolean;
  training?: SpeechTrainConfig & { data: string; clips: number; from?: { run: string; steps: number } };
  eval?: SpeechReport;
  voiceEval?: VoiceReport;
};

export type SpeechRun = { readonly model: SpeechModel; readonly text: TextTokenizer; readonly codec: CodecTokenizer; readonly maxWords: number; readonly manifest: SpeechManifest };

export function disposeSpeechRun(r: SpeechRun): void {
  tree.dispose(r.model.params);
  r.codec.dispose();
}

/**
 * Write the run into a fresh sibling folder, then swap it in with renames: a crash leaves the
 * previous run (or none) at `dir`, never a codec of one run beside the model of another.
 */
export async function saveSpeechRun(dir: string, r: Omit<SpeechRun, "manifest">, extra: Pick<SpeechManifest, "training" | "eval" | "voiceEval"> = {}): Promise<SpeechManifest> {
  return replaceFolder(dir, async (tmp) => {
    await saveCodec(join(tmp, "codec"), r.codec);
    saveCheckpoint(tmp, "model", { tensors: await paramsToTensors(r.model.params as never), config: r.model.config });
    writeAtomic(join(tmp, "tokenizer.json"), r.text.toJSON());
    const manifest: SpeechManifest = { format: SPEECH_FORMAT, version: SPEECH_VERSION, vocab: r.model.vocab.toJSON(), levels: r.model.levels, maxWords: r.maxWords, textCondition: r.model.textCondition, ...extra };
    writeAtomic(join(tmp, "speech.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  });
}

/** Load a folder written by `saveSpeechRun`, checking each part against the others. The caller disposes it. */
export async function loadSpeechRun(dir: string): Promise<SpeechRun> {
  await startEngine();
  const file = join(dir, "speech.json");
  if (!existsSync(file)) throw new InputError(`${dir} is not a speech run: ${file} is missing (make one with \`mmntp speech train -o ${dir}\`)`, { file });
  const m = parseJson(readFileSync(file, "utf8"), file) as Partial<SpeechManifest> | null;
  if (typeof m !== "object" || m === null || m.format !== SPEECH_FORMAT) throw new InputError(`${file}: format is ${JSON.stringify(m?.format)}, expected "${SPEECH_FORMAT}"`, { file, field: "format" });
  if (m.version !== SPEECH_VERSION) throw new InputError(`${file}: version ${JSON.stringify(m.version)}, this mmntp reads version ${SPEECH_VERSION}`, { file, field: "version" });
  const inFile = <T>(f: () => T): T => asInputError(f, { file });
  const vocab = inFile(() => JointVocab.fromJSON(m.vocab));
  const levels = inFile(() => vocabLevels(vocab));
  if (m.levels !== levels) throw new InputError(`${file}: levels is ${JSON.stringify(m.levels)}, but the vocabulary holds ${levels} audio levels`, { file, field: "levels" });
  if (!Number.isInteger(m.maxWords) || m.maxWords! < 1) throw new InputError(`${file}: maxWords must be an integer ≥ 1, got ${JSON.stringify(m.maxWords)}`, { file, field: "maxWords" });
  if (m.textCondition !== undefined && typeof m.textCondition !== "boolean") throw new InputError(`${file}: textCondition must be true or false, got ${JSON.stringify(m.textCondition)}`, { file, field: "textCondition" });
  const textFile = join(dir, "tokenizer.json");
  if (!existsSync(textFile)) throw new InputError(`${textFile} is missing (the run is incomplete)`, { file: textFile });
  const text = asInputError(() => TextTokenizer.fromJSON(readFileSync(textFile, "utf8")), { file: textFile });
  const textRange = vocab.range("text");
  if (text.vocabSize !== textRange.end - textRange.start) throw new InputError(`${file}: the text tokenizer has ${text.vocabSize} tokens, the vocabulary reserves ${textRange.end - textRange.start}`, { file, field: "vocab.text" });
  const { tensors, config } = loadCheckpoint(dir, "model");
  const modelFile = join(dir, "model.json");
  asInputError(() => checkTransformerConfig(config, modelFile), { file: modelFile });
  const cfg = config as TransformerConfig;
  if (cfg.vocabSize !== vocab.size) throw new InputError(`${modelFile}: vocabSize is ${cfg.vocabSize}, the joint vocabulary has ${vocab.size} ids`, { file: modelFile, field: "vocabSize" });
  const codec = await loadCodec(join(dir, "codec"), { levels });
  try {
    const codes = vocab.modality(levelName(0)).size;
    if (codec.vocabSize !== codes) throw new InputError(`${file}: the codec has ${codec.vocabSize} codes per level, the vocabulary ${codes}`, { file, field: "vocab" });
    const params = paramsOfInit(tensors, () => initTransformerForShapes(cfg), join(dir, "model.safetensors"));
    return { model: { params, config: cfg, vocab, levels, textCondition: m.textCondition === true }, text, codec, maxWords: m.maxWords!, manifest: m as SpeechManifest };
  } catch (e) {
    codec.dispose();
    throw e;
  }
}

export type SpeechReport = {
  data: string;
  /** held-out clips recognized */
  clips: number;
  /** 1 − word error rate over the held-out clips */
  asrWordAccuracy: number;
  /** clips whose digit word was recognized */
  asrDigitAccuracy: number;
  /** synthesized clips (each transcript × samples) */
  synthesized: number;
  /** synthesized clips whose digit word the ASR model recognized in the decoded, re-encoded audio */
  ttsRecognized: number;
  /** word accuracy of those recognitions against the requested transcripts */
  ttsWordAccuracy: number;
  /** per requested transcript, the share of its syntheses whose digit word came back */
  ttsByTranscript: Record<string, number>;
  /** seconds of work per second of audio */
  rtf: { recognize: number; synthesize: number; decode: number };
};

export type VoiceReport = {
  data: string;
  /** voices (the spoken digits': speakers) and continuations, one per target clip */
  voices: number;
  requests: number;
  /** continuations the voice identifier (eval/voice.ts) assigns to their prompt's voice */
  voiceMatch: number;
  /** the same texts synthesized without a prompt, assigned to the voice a prompt would have given */
  voiceMatchWithoutPrompt: number;
  /** the real target clips assigned to their own voice: what the identifier can tell apart at best */
  realClipMatch: number;
  chance: number;
  /** continuations whose digit word the ASR model recognized */
  recognized: number;
};

const digitOf = (s: string): string | undefined => s.toLowerCase().split(/\s+/).find((w) => (DIGIT_WORDS as readonly string[]).includes(w));

/**
 * Train text tokenizer and model on the spoken digits' training speakers (or a folder), save to
 * `out`, measure on the held-out speakers. `from` (its weights consumed): continue that run's
 * model, with its tokenizer and codec (`opts.codec` is then its codec), for `train.steps` more.
 */
export async function trainSpeechRun(opts: { out: string; codec: CodecTokenizer; data?: string; train: SpeechTrainConfig; evalSamples?: number; from?: { dir: string; run: SpeechRun } }): Promise<{ run: SpeechRun; report?: SpeechReport; voiceReport?: VoiceReport }> {
  await startEngine();
  const sr = opts.codec.config.sampleRate;
  const { train, test, data } = opts.data === undefined ? { ...loadSpokenDigits(), data: "spoken-digits" } : { train: loadSpeechFolder(opts.data, { sampleRate: sr }), test: undefined, data: opts.data };
  if (train.sampleRate !== sr) throw new InputError(`the clips are at ${train.sampleRate} Hz, the codec at ${sr} Hz`);
  const from = opts.from;
  if (from) checkContinuable(from.dir, from.run, opts.train);
  const text = from?.run.text ?? TextTokenizer.fromJSON(await trainTextTokenizer([...train.clips.map((c) => c.text), ...(test?.clips.map((c) => c.text) ?? [])]));
  const codec = opts.codec.levels === opts.train.levels ? opts.codec : opts.codec.withLevels(opts.train.levels);
  const examples = await speechExamples(codec, text, train.clips, opts.train.shifts);
  const model = await trainSpeech(examples, text, codec.vocabSize, opts.train, from?.run.model.params);
  const run = { model, text, codec, maxWords: maxWordsOf(examples) };
  const report = test ? await evaluateSpeech(run, test.clips, { samples: opts.evalSamples ?? 5, data: "spoken-digits (held-out speakers)" }) : undefined;
  const voiceReport = test && opts.train.voicePrompt > 0 ? await evaluateVoice(run, opts.train.voicePrompt, test.clips.map((c) => ({ ...c, voice: c.speaker })), { data: "spoken-digits (held-out speakers)" }) : undefined;
  const before = from && { run: from.dir, steps: (from.run.manifest.training?.from?.steps ?? 0) + (from.run.manifest.training?.steps ?? 0) };
  const manifest = await saveSpeechRun(opts.out, run, { training: { ...opts.train, data, clips: train.clips.length, ...(before && { from: before }) }, ...(report && { eval: report }), ...(voiceReport && { voiceEval: voiceReport }) });
  return { run: { ...run, manifest }, ...(report && { report }), ...(voiceReport && { voiceReport }) };
}

/** Throws, naming the field and both values, unless training `cfg` can continue the model of the run in `dir`. */
function checkContinuable(dir: string, run: SpeechRun, cfg: SpeechTrainConfig): void {
  const differs = (field: string, theirs: unknown, ours: unknown) => {
    if (JSON.stringify(theirs) !== JSON.stringify(ours)) throw new InputError(`--from ${dir}: its ${field} is ${JSON.stringify(theirs)}, the training's ${JSON.stringify(ours)}; a model continues with its own`, { field, value: ours });
  };
  differs("levels", run.model.levels, cfg.levels);
  differs("textCondition", run.model.textCondition, cfg.textCondition);
  const { vocabSize: _, ...model } = run.model.config;
  for (const key of new Set([...Object.keys(model), ...Object.keys(cfg.model)])) differs(`model.${key}`, (model as Record<string, unknown>)[key], (cfg.model as Record<string, unknown>)[key]);
}

/**
 * Recognition on `clips` (word accuracy against their transcripts), then synthesis of each
 * distinct transcript `samples` times: decoded to audio, encoded again, recognized, and counted
 * when the digit word comes back.
 */
export async function evaluateSpeech(run: Omit<SpeechRun, "manifest">, clips: readonly { samples: Float32Array; text: string }[], { samples = 5, data = "clips", synthesis = DEFAULT_SYNTHESIS }: { samples?: number; data?: string; synthesis?: SynthesisOptions } = {}): Promise<SpeechReport> {
  const { texts: heard, rtf: recognizeRtf } = await transcribe(run, clips);
  const refs = clips.map((c) => c.text);
  const transcripts = [...new Set(refs)].sort();
  const requests = transcripts.flatMap((t) => Array.from({ length: samples }, () => t));
  const made = await drawAndDecode(run, requests.map((t) => run.text.encodeText(t)), synthesis);
  const back = (await transcribe(run, made.clips.map((samples) => ({ samples })))).texts;
  const heardAsAsked = requests.map((r, i) => digitOf(r) !== undefined && digitOf(r) === digitOf(back[i]!));
  const ttsByTranscript = Object.fromEntries(transcripts.map((t) => [t, heardAsAsked.filter((ok, i) => ok && requests[i] === t).length / samples]));
  return {
    data,
    clips: clips.length,
    asrWordAccuracy: wordAccuracy(refs, heard),
    asrDigitAccuracy: refs.filter((r, i) => digitOf(r) === digitOf(heard[i]!)).length / refs.length,
    synthesized: requests.length,
    ttsWordAccuracy: wordAccuracy(requests, back),
    ttsRecognized: heardAsAsked.filter(Boolean).length / requests.length,
    ttsByTranscript,
    rtf: { recognize: recognizeRtf, ...made.rtf },
  };
}

/** Transcripts of clips (any rate: resampled to the codec's), and the seconds of work per second of audio. */
export async function transcribe(run: Omit<SpeechRun, "manifest">, clips: readonly { samples: Float32Array }[]): Promise<{ texts: string[]; rtf: number }> {
  const t0 = performance.now();
  const examples = await speechExamples(run.codec, run.text, clips.map((c) => ({ samples: c.samples, text: "" })));
  const texts = await recognize(run.model, run.text, examples, { maxWords: run.maxWords });
  const seconds = clips.reduce((a, c) => a + c.samples.length, 0) / run.codec.config.sampleRate;
  return { texts, rtf: (performance.now() - t0) / 1000 / seconds };
}

/**
 * Speech for each text: codes drawn by the model, decoded by the codec. Refuses words the text
 * tokenizer does not know (they would be read as <unk>, which no clip was transcribed with).
 */
export async function speak(run: SpeechRun, texts: readonly string[], opts: SynthesisOptions = DEFAULT_SYNTHESIS, voice?: Float32Array): Promise<{ clips: Float32Array[]; rtf: { synthesize: number; decode: number } }> {
  const promptFrames = run.manifest.training?.voicePrompt ?? 0;
  if (voice && !(promptFrames > 0)) throw new InputError("this speech run was trained without voice prompts (training.voicePrompt is 0); train one with --set voicePrompt=40");
  const ids = texts.map((t) => {
    const words = run.text.encodeText(t);
    if (words.length === 0) throw new InputError(`nothing to say: ${JSON.stringify(t)} has no words`, { value: t });
    const unk = words.indexOf(run.text.unkId);
    if (unk >= 0) {
      const known = [...Array(run.text.vocabSize).keys()].map((i) => run.text.idToToken(i)!).filter((w) => !w.startsWith("<"));
      throw new InputError(`the speech model does not know the word ${JSON.stringify(t.split(/\s+/)[unk])} in ${JSON.stringify(t)}; it knows: ${known.join(", ")}`, { value: t });
    }
    return words;
  });
  let prompt: { codes: Int32Array; frames: number } | undefined;
  if (voice) {
    const e = (await speechExamples(run.codec, run.text, [{ samples: voice, text: "" }]))[0]!;
    if (e.frames < promptFrames) throw new InputError(`the voice prompt is ${(voice.length / run.codec.config.sampleRate).toFixed(2)} s long; this run's prompts are ${(promptFrames / run.codec.frameRate).toFixed(2)} s (${promptFrames} frames)`, { field: "voice", value: voice.length });
    prompt = cropFrames(e, promptFrames, run.model.levels);
  }
  return drawAndDecode(run, ids, opts, prompt && ids.map(() => prompt));
}

/**
 * Voice-prompt continuation on `clips` of several voices: within each voice, every other clip
 * (in file order) is a prompt and a reference of the voice identifier; each remaining clip's
 * transcript is spoken after the first prompt of its voice with another transcript (and at least
 * `promptFrames` frames, the prompt's length in training). Counts how
 * often the result is identified as the prompt's voice, against the same texts without prompt.
 * undefined when no clip has such a prompt.
 */
export async function evaluateVoice(run: Omit<SpeechRun, "manifest">, promptFrames: number, clips: readonly { samples: Float32Array; text: string; voice: string }[], { data = "clips", synthesis = DEFAULT_SYNTHESIS }: { data?: string; synthesis?: SynthesisOptions } = {}): Promise<VoiceReport | undefined> {
  const sr = run.codec.config.sampleRate;
  const hop = sr / run.codec.frameRate;
  const voices = [...new Set(clips.map((c) => c.voice))].sort();
  const refs: typeof clips[number][] = [];
  const targets: { clip: typeof clips[number]; prompt: typeof clips[number] }[] = [];
  for (const v of voices) {
    const own = clips.filter((c) => c.voice === v);
    const prompts = own.filter((_, i) => i % 2 === 0);
    refs.push(...prompts);
    for (const c of own.filter((_, i) => i % 2 === 1)) {
      const prompt = prompts.find((p) => p.text !== c.text && p.samples.length >= promptFrames * hop);
      if (prompt) targets.push({ clip: c, prompt });
    }
  }
  if (targets.length === 0) return undefined;
  const identify = await voiceIdentifier(refs, sr);
  const texts = targets.map((t) => run.text.encodeText(t.clip.text));
  const prompts = (await speechExamples(run.codec, run.text, targets.map((t) => t.prompt))).map((e) => cropFrames(e, promptFrames, run.model.levels));
  const continued = (await drawAndDecode(run, texts, synthesis, prompts)).clips;
  const plain = (await drawAndDecode(run, texts, synthesis)).clips;
  const expected = (xs: Float32Array[]) => xs.map((samples, i) => ({ samples, voice: targets[i]!.prompt.voice }));
  const heard = (await transcribe(run, continued.map((samples) => ({ samples })))).texts;
  return {
    data,
    voices: voices.length,
    requests: targets.length,
    voiceMatch: await voiceAccuracy(identify, expected(continued)),
    voiceMatchWithoutPrompt: await voiceAccuracy(identify, expected(plain)),
    realClipMatch: await voiceAccuracy(identify, targets.map((t) => t.clip)),
    chance: 1 / voices.length,
    recognized: targets.filter((t, i) => digitOf(t.clip.text) === digitOf(heard[i]!)).length / targets.length,
  };
}

/** Codes drawn for each text (ids), decoded to waveforms (frames × hop samples each), with the seconds of work per second of audio. */
async function drawAndDecode(run: Omit<SpeechRun, "manifest">, texts: readonly (readonly number[])[], opts: SynthesisOptions, voices?: readonly { codes: Int32Array; frames: number }[]): Promise<{ clips: Float32Array[]; rtf: { synthesize: number; decode: number } }> {
  let t0 = performance.now();
  const made = await synthesize(run.model, texts, opts, voices);
  const synthSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const waves = await run.codec.decode(made.map((m) => ({ ids: m.codes, shape: [m.frames, run.model.levels] })));
  const decodeSeconds = (performance.now() - t0) / 1000;
  const audio = made.reduce((a, m) => a + m.frames, 0) / run.codec.frameRate;
  return { clips: waves.map((w) => w.samples), rtf: { synthesize: synthSeconds / audio, decode: decodeSeconds / audio } };
}
