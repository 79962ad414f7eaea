/**
 * `mmntp speech train|eval`, `mmntp asr` and `mmntp tts`: speech recognition and synthesis with
 * the unified model over codec tokens (pipelines/speech.ts, speech-run.ts). Argument handling
 * and output only, as in main.ts, which hands these commands here.
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { InputError } from "../io/errors.ts";
import { applyOverrides, JSON_OPTION, parseArgs, type ArgSpec } from "./args.ts";

const RUN_OPTION = { name: "run", type: "string", default: join("runs", "speech"), placeholder: "DIR", help: "a speech run written by `mmntp speech train`" } as const;

/** How synthesis draws codes (the defaults are DEFAULT_SYNTHESIS's), for `tts` and `speech eval`. */
const SYNTHESIS_OPTIONS = [
  { name: "temperature", type: "number", default: 0.8, help: "sampling temperature of the codes (0 = greedy)" },
  { name: "top-k", type: "number", default: 40, help: "keep the k most likely codes per level" },
  { name: "seed", type: "number", default: 0, help: "seed of the sampling" },
  { name: "guidance", type: "number", default: 2, help: "classifier-free guidance scale (1 = off)" },
  { name: "min-frames", type: "number", default: 20, help: "codec frames before the clip may end (20: 0.2 s at the default codec's 100 frames/s, shorter than any spoken digit)" },
  { name: "min-frames-per-token", type: "number", default: 0, help: "and not before this many frames per word of the text (0 = off)" },
] as const;

const SPEECH_ACTIONS = {
  train: {
    usage: "mmntp speech train",
    description:
      "Trains one transformer to recognize and to speak (ASR and TTS in one model, next-token prediction over text\n" +
      "and 4 levels of codec tokens in the MusicGen delay pattern) on the spoken digits' 12 training speakers (or\n" +
      "--data), saves it to --out with its codec, then measures it on the 4 held-out speakers: word accuracy of\n" +
      "recognition, and how often synthesized speech is recognized as the word asked for. Needs a codec\n" +
      "(`mmntp codec train`).",
    options: [
      { name: "out", short: "o", type: "string", default: join("runs", "speech"), placeholder: "DIR", help: "the speech run to write" },
      { name: "codec", type: "string", default: join("runs", "codec"), placeholder: "DIR", help: "the codec folder (written by `mmntp codec train`)" },
      { name: "data", type: "string", placeholder: "DIR", help: "train on a folder of WAV files with transcript.tsv instead (nothing held out)" },
      { name: "steps", type: "number", help: "training steps (default 2000)" },
      { name: "from", type: "string", placeholder: "RUN", help: "continue RUN's model for --steps more (a fresh warm-up and cosine), with its codec, tokenizer and training config; --set overrides it (e.g. lr, seed)" },
      { name: "set", type: "string", multiple: true, placeholder: "key=value", help: "override a config value, e.g. --set levels=2 --set model.layers=6 --set lr=0.001" },
      JSON_OPTION,
    ],
  },
  eval: {
    usage: "mmntp speech eval",
    description: "Measures a speech run on the spoken digits' held-out speakers (or --data): recognition word accuracy,\nsynthesized speech recognized as asked, real-time factors.",
    options: [
      RUN_OPTION,
      { name: "data", type: "string", placeholder: "DIR", help: "measure on a folder of WAV files with transcript.tsv instead" },
      { name: "samples", type: "number", default: 5, help: "syntheses per distinct transcript" },
      ...SYNTHESIS_OPTIONS,
      JSON_OPTION,
    ],
  },
} as const satisfies Record<string, ArgSpec>;

const SPEECH_HELP = [
  "Usage: mmntp speech <action> [options]",
  "",
  "Actions:",
  "  train       train recognition and synthesis in one model, and measure it",
  "  eval        recognition word accuracy and synthesis intelligibility on held-out speakers",
  "",
  "Run `mmntp speech <action> --help` for its options; `mmntp asr` and `mmntp tts` use the trained run.",
].join("\n");

export const ASR = {
  usage: "mmntp asr",
  description: "Writes what is said in each WAV file (any rate: resampled), e.g.\n  mmntp asr data/speech/clips/en_m3_seven_s140_p35.wav",
  positionals: [{ name: "files", rest: true, help: "WAV files" }],
  options: [RUN_OPTION, { name: "spectrograms", type: "string", placeholder: "DIR", help: "also write a log-mel spectrogram PNG of each input into DIR" }, JSON_OPTION],
} as const satisfies ArgSpec;

export const TTS = {
  usage: "mmntp tts",
  description:
    'Speaks a text with the speech run\'s model and codec, writing a WAV file and its log-mel spectrogram\n(PNG, beside it), then recognizes the result with the same model, e.g.\n  mmntp tts "a handwritten seven" -o seven.wav',
  positionals: [{ name: "text", help: "what to say, in words the model was trained on" }],
  options: [
    RUN_OPTION,
    { name: "out", short: "o", type: "string", required: true, placeholder: "FILE.wav", help: "the WAV file to write (with --count N: FILE-1.wav … FILE-N.wav)" },
    { name: "count", type: "number", default: 1, help: "how many versions to draw" },
    ...SYNTHESIS_OPTIONS,
    { name: "max-seconds", type: "number", default: 1.5, help: "longest clip to draw" },
    { name: "voice", type: "string", placeholder: "FILE.wav", help: "speak in the voice of this clip (its start is the prompt; runs trained with voicePrompt > 0)" },
    JSON_OPTION,
  ],
} as const satisfies ArgSpec;

type Print = (json: boolean, value: unknown, text: string) => void;
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function voiceTable(v: import("../pipelines/speech-run.ts").VoiceReport): string {
  return `voice prompts: ${pct(v.voiceMatch)} of ${v.requests} continuations identified as the prompt's voice (without the prompt ${pct(v.voiceMatchWithoutPrompt)}, real clips ${pct(v.realClipMatch)}, chance ${pct(v.chance)} over ${v.voices} voices); digit recognized in ${pct(v.recognized)}`;
}

function table(r: import("../pipelines/speech-run.ts").SpeechReport, v?: import("../pipelines/speech-run.ts").VoiceReport): string {
  return [
    `recognition: word accuracy ${pct(r.asrWordAccuracy)}, digit ${pct(r.asrDigitAccuracy)} on ${r.clips} clips (${r.data}); ${(1 / r.rtf.recognize).toFixed(0)}× real time`,
    `synthesis:   ${pct(r.ttsRecognized)} of ${r.synthesized} clips recognized as the digit asked for (word accuracy ${pct(r.ttsWordAccuracy)}); drawing ${(1 / r.rtf.synthesize).toFixed(1)}× and decoding ${(1 / r.rtf.decode).toFixed(0)}× real time`,
    `  by text:   ${Object.entries(r.ttsByTranscript).map(([t, x]) => `${t} ${pct(x)}`).join(", ")}`,
    ...(v ? [voiceTable(v)] : []),
  ].join("\n");
}

/** Runs `mmntp speech …`. */
export async function speechCommand(rest: string[], print: Print, loadEngine: () => Promise<unknown>): Promise<void> {
  const [action, ...more] = rest;
  if (!action || action === "-h" || action === "--help") return void console.log(SPEECH_HELP);
  if (!Object.hasOwn(SPEECH_ACTIONS, action)) throw new InputError(`unknown speech action "${action}"; expected one of: ${Object.keys(SPEECH_ACTIONS).join(", ")}`, { value: action });
  if (action === "train") {
    const args = parseArgs(more, SPEECH_ACTIONS.train);
    if (args.kind === "help") return void console.log(args.text);
    const { checkOutputFolder } = await import("../io/checkpoint.ts");
    await loadEngine();
    const { DEFAULT_SPEECH_TRAIN, checkSpeechTrainConfig } = await import("../pipelines/speech.ts");
    const { loadCodec } = await import("../pipelines/codec.ts");
    const { trainSpeechRun, disposeSpeechRun, loadSpeechRun } = await import("../pipelines/speech-run.ts");
    const fromDir = args.values.from;
    if (fromDir !== undefined && resolve(fromDir) === resolve(args.values.out)) throw new InputError(`--from ${fromDir} is also --out: write the continued run to another folder`, { field: "from", value: fromDir });
    const from = fromDir === undefined ? undefined : { dir: fromDir, run: await loadSpeechRun(fromDir) };
    // a continued run starts from its source's training config (the defaults it was trained with filled in)
    const { data: sourceData, clips: _c, from: _f, ...before } = from?.run.manifest.training ?? { data: "spoken-digits", clips: 0 };
    const data = args.values.data ?? (sourceData === "spoken-digits" ? undefined : sourceData);
    const cfg = applyOverrides({ ...DEFAULT_SPEECH_TRAIN, ...before, ...(args.values.steps === undefined ? {} : { steps: args.values.steps }) }, args.values.set);
    checkSpeechTrainConfig(cfg, "--set");
    checkOutputFolder(args.values.out);
    const codec = from?.run.codec ?? (await loadCodec(args.values.codec));
    if (cfg.levels > codec.levels) throw new InputError(`levels ${cfg.levels} is more than the codec's ${codec.levels}`, { field: "levels", value: cfg.levels });
    const { run, report, voiceReport } = await trainSpeechRun({ out: args.values.out, codec, train: cfg, ...(data === undefined ? {} : { data }), ...(from && { from }) });
    if (run.codec !== codec) codec.dispose();
    disposeSpeechRun(run);
    print(args.values.json, { dir: args.values.out, ...(report && { eval: report }), ...(voiceReport && { voiceEval: voiceReport }) }, `${report ? `${table(report, voiceReport)}\n` : ""}wrote ${args.values.out}`);
    return;
  }
  const args = parseArgs(more, SPEECH_ACTIONS.eval);
  if (args.kind === "help") return void console.log(args.text);
  await loadEngine();
  const { loadSpeechRun, evaluateSpeech, evaluateVoice, disposeSpeechRun } = await import("../pipelines/speech-run.ts");
  const { DEFAULT_SYNTHESIS } = await import("../pipelines/speech.ts");
  const { loadSpokenDigits, loadSpeechFolder } = await import("../data/speech.ts");
  const run = await loadSpeechRun(args.values.run);
  try {
    const sr = run.codec.config.sampleRate;
    const digits = args.values.data === undefined ? loadSpokenDigits().test.clips : undefined;
    const clips = digits ?? loadSpeechFolder(args.values.data!, { sampleRate: sr }).clips;
    const data = args.values.data ?? "spoken-digits (held-out speakers)";
    const report = await evaluateSpeech(run, clips, { samples: args.values.samples, data, synthesis: { ...DEFAULT_SYNTHESIS, ...synthesisOf(args.values) } });
    const promptFrames = run.manifest.training?.voicePrompt ?? 0;
    // the spoken digits' voices are told apart by speaker; a folder's by its transcript's third column
    const voiced = digits ? digits.map((c) => ({ ...c, voice: c.speaker })) : clips.every((c) => c.voice !== undefined) ? clips.map((c) => ({ ...c, voice: c.voice! })) : undefined;
    const voice = voiced && promptFrames > 0 ? await evaluateVoice(run, promptFrames, voiced, { data }) : undefined;
    print(args.values.json, { run: args.values.run, ...report, ...(voice && { voice }) }, table(report, voice));
  } finally {
    disposeSpeechRun(run);
  }
}

/** Runs `mmntp asr …`. */
export async function asrCommand(rest: string[], print: Print, loadEngine: () => Promise<unknown>): Promise<void> {
  const args = parseArgs(rest, ASR);
  if (args.kind === "help") return void console.log(args.text);
  const files = args.positionals.files;
  if (files.length === 0) throw new InputError("expected at least one WAV file");
  for (const f of files) if (!existsSync(f) || statSync(f).isDirectory()) throw new InputError(`no such WAV file: ${f}`, { file: f });
  const { checkOutputFolder } = await import("../io/checkpoint.ts");
  if (args.values.spectrograms !== undefined) checkOutputFolder(args.values.spectrograms);
  await loadEngine();
  const { readWav } = await import("../io/wav.ts");
  const { loadSpeechRun, transcribe, disposeSpeechRun } = await import("../pipelines/speech-run.ts");
  const run = await loadSpeechRun(args.values.run);
  try {
    const sr = run.codec.config.sampleRate;
    const clips = files.map((f) => readWav(f, { sampleRate: sr }));
    const { texts, rtf } = await transcribe(run, clips);
    const pictures: string[] = [];
    if (args.values.spectrograms !== undefined) {
      const { mkdirSync } = await import("node:fs");
      const { writeSpectrogram } = await import("../pipelines/spectrogram.ts");
      mkdirSync(args.values.spectrograms, { recursive: true });
      for (const [i, f] of files.entries()) {
        const png = join(args.values.spectrograms, `${basename(f, extname(f))}.png`);
        await writeSpectrogram(png, clips[i]!.samples, sr);
        pictures.push(png);
      }
    }
    const rows = files.map((file, i) => ({ file, text: texts[i]!, ...(pictures[i] ? { spectrogram: pictures[i] } : {}) }));
    print(args.values.json, { run: args.values.run, files: rows, realTimeFactor: 1 / rtf }, `${rows.map((r) => `${r.file}\t${r.text}`).join("\n")}\nrecognized ${files.length} file${files.length > 1 ? "s" : ""} at ${(1 / rtf).toFixed(1)}× real time (compiling included)`);
  } finally {
    disposeSpeechRun(run);
  }
}

/** The synthesis flags, checked: how codes are drawn (without the clip length). */
function synthesisOf(v: { temperature: number; "top-k": number; seed: number; guidance: number; "min-frames": number; "min-frames-per-token": number }) {
  const { temperature, seed, guidance } = v;
  const [topK, minFrames, minFramesPerToken] = [v["top-k"], v["min-frames"], v["min-frames-per-token"]];
  if (!Number.isInteger(minFrames) || minFrames < 1) throw new InputError(`--min-frames must be an integer ≥ 1, got ${minFrames}`, { field: "min-frames", value: minFrames });
  if (!(minFramesPerToken >= 0) || !Number.isFinite(minFramesPerToken)) throw new InputError(`--min-frames-per-token must be a finite number ≥ 0 (0 = off), got ${minFramesPerToken}`, { field: "min-frames-per-token", value: minFramesPerToken });
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new InputError(`--temperature must be a finite number ≥ 0, got ${temperature}`, { field: "temperature", value: temperature });
  if (!Number.isInteger(topK) || topK < 0) throw new InputError(`--top-k must be an integer ≥ 0 (0 = all codes), got ${topK}`, { field: "top-k", value: topK });
  if (!(guidance >= 0) || !Number.isFinite(guidance)) throw new InputError(`--guidance must be a finite number ≥ 0 (1 = off), got ${guidance}`, { field: "guidance", value: guidance });
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new InputError(`--seed must be an integer in [0, 4294967295], got ${seed}`, { field: "seed", value: seed });
  return { sampling: { temperature, topK }, seed, guidance, minFrames, minFramesPerToken };
}

/** Runs `mmntp tts …`. */
export async function ttsCommand(rest: string[], print: Print, loadEngine: () => Promise<unknown>): Promise<void> {
  const args = parseArgs(rest, TTS);
  if (args.kind === "help") return void console.log(args.text);
  const { count, out } = args.values;
  const drawing = synthesisOf(args.values);
  const maxSeconds = args.values["max-seconds"];
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new InputError(`--count must be an integer in [1, 64], got ${count}`, { field: "count", value: count });
  if (!(maxSeconds > 0)) throw new InputError(`--max-seconds must be a positive number, got ${maxSeconds}`, { field: "max-seconds", value: maxSeconds });
  if (!/\.wav$/i.test(out)) throw new InputError(`--out must name a .wav file, got ${out}`, { field: "out", value: out });
  const outs = count === 1 ? [out] : Array.from({ length: count }, (_, i) => out.replace(/\.wav$/i, `-${i + 1}.wav`));
  const voiceFile = args.values.voice;
  if (voiceFile !== undefined && (!existsSync(voiceFile) || statSync(voiceFile).isDirectory())) throw new InputError(`no such WAV file: ${voiceFile} (--voice)`, { file: voiceFile, field: "voice" });
  const { checkOutputPath } = await import("../io/checkpoint.ts");
  outs.forEach(checkOutputPath);
  await loadEngine();
  const { readWav, writeWav } = await import("../io/wav.ts");
  const { writeSpectrogram } = await import("../pipelines/spectrogram.ts");
  const { loadSpeechRun, speak, transcribe, disposeSpeechRun } = await import("../pipelines/speech-run.ts");
  const run = await loadSpeechRun(args.values.run);
  try {
    const sr = run.codec.config.sampleRate;
    const maxFrames = Math.max(1, Math.round(maxSeconds * run.codec.frameRate));
    const voice = voiceFile === undefined ? undefined : readWav(voiceFile, { sampleRate: sr }).samples;
    const { clips, rtf } = await speak(run, outs.map(() => args.positionals.text), { ...drawing, maxFrames }, voice);
    const heard = (await transcribe(run, clips.map((samples) => ({ samples })))).texts;
    const files = [];
    for (const [i, f] of outs.entries()) {
      writeWav(f, { samples: clips[i]!, sampleRate: sr });
      const png = join(dirname(f), `${basename(f, extname(f))}.png`);
      await writeSpectrogram(png, clips[i]!, sr);
      files.push({ wav: f, spectrogram: png, seconds: clips[i]!.length / sr, recognized: heard[i]! });
    }
    const speed = `drawn at ${(1 / rtf.synthesize).toFixed(1)}× and decoded at ${(1 / rtf.decode).toFixed(0)}× real time (compiling included)`;
    print(args.values.json, { run: args.values.run, text: args.positionals.text, files, realTimeFactor: { synthesize: 1 / rtf.synthesize, decode: 1 / rtf.decode } }, `${files.map((f) => `${f.wav} (${f.seconds.toFixed(2)} s, spectrogram ${f.spectrogram}): recognized as "${f.recognized}"`).join("\n")}\n${speed}`);
  } finally {
    disposeSpeechRun(run);
  }
}
