/**
 * `mmntp codec <action>`: train, measure and run the neural audio codec (pipelines/codec.ts).
 * Argument handling and output only, as in main.ts, which hands `codec …` here.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../io/errors.ts";
import { applyOverrides, JSON_OPTION, parseArgs, type ArgSpec } from "./args.ts";


const CODEC_OPTION = { name: "codec", type: "string", default: join("runs", "codec"), placeholder: "DIR", help: "a codec folder written by `mmntp codec train`" } as const;
const LEVELS_OPTION = { name: "levels", type: "number", help: "RVQ levels to keep (the bitrate; default: all of the codec's)" } as const;

/** `mmntp codec <action>`: one spec per action. */
const CODEC_ACTIONS = {
  train: {
    usage: "mmntp codec train",
    description:
      "Trains the neural audio codec (conv encoder/decoder + residual VQ, waveform L1 + multi-resolution STFT loss,\n" +
      "quantizer dropout) on the spoken digits (or --data, a WAV folder with transcript.tsv), saves it to --out, then\n" +
      "measures it on the held-out speakers at every number of levels: kbps, SI-SNR, mel distance, real-time factors.",
    options: [
      { name: "out", short: "o", type: "string", default: join("runs", "codec"), placeholder: "DIR", help: "the codec folder to write" },
      { name: "data", type: "string", placeholder: "DIR", help: "train on a folder of WAV files with transcript.tsv instead (nothing held out)" },
      { name: "steps", type: "number", help: "training steps (default 2000; about 12 min on 2 cores)" },
      { name: "set", type: "string", multiple: true, placeholder: "key=value", help: "override a config value, e.g. --set codec.rvq.levels=6 --set train.lr=0.002" },
      JSON_OPTION,
    ],
  },
  encode: {
    usage: "mmntp codec encode",
    description: "Turns WAV files into token files OUT/<name>.codes.safetensors (ids [frames, levels]), e.g.\n  mmntp codec encode data/speech/clips/en-us_m1_seven_s140_p35.wav -o tokens/",
    positionals: [{ name: "files", rest: true, help: "WAV files (any rate: resampled to the codec's)" }],
    options: [CODEC_OPTION, LEVELS_OPTION, { name: "out", short: "o", type: "string", required: true, placeholder: "DIR", help: "folder for the token files" }, JSON_OPTION],
  },
  decode: {
    usage: "mmntp codec decode",
    description: "Turns token files written by `mmntp codec encode` back into WAV files OUT/<name>.wav, with a log-mel\nspectrogram OUT/<name>.png beside each.",
    positionals: [{ name: "files", rest: true, help: "token files (*.codes.safetensors)" }],
    options: [CODEC_OPTION, { name: "levels", type: "number", help: "decode only the first L levels of each file (a lower bitrate; default: all it holds)" }, { name: "out", short: "o", type: "string", required: true, placeholder: "DIR", help: "folder for the WAV files" }, JSON_OPTION],
  },
  eval: {
    usage: "mmntp codec eval",
    description: "Measures a codec at every number of levels on the spoken digits' held-out speakers (or --data): kbps,\nSI-SNR, mel distance and real-time factors of encoding and decoding.",
    options: [CODEC_OPTION, { name: "data", type: "string", placeholder: "DIR", help: "measure on a folder of WAV files with transcript.tsv instead" }, JSON_OPTION],
  },
} as const satisfies Record<string, ArgSpec>;

const CODEC_HELP = [
  "Usage: mmntp codec <action> [options]",
  "",
  "Actions:",
  "  train       train the audio codec on the spoken digits (or a WAV folder) and measure it",
  "  encode      WAV files → token files",
  "  decode      token files → WAV files (and spectrogram PNGs)",
  "  eval        bitrate, SI-SNR, mel distance and speed at every number of levels",
  "",
  "Run `mmntp codec <action> --help` for its options.",
].join("\n");


/** Paths of the files named, each of which must exist and be a file. */
function existingFiles(files: readonly string[], what: string): string[] {
  if (files.length === 0) throw new InputError(`expected at least one ${what}`);
  for (const f of files) if (!existsSync(f) || statSync(f).isDirectory()) throw new InputError(`no such ${what}: ${f}`, { file: f });
  return [...files];
}

/** Runs `mmntp codec …`; `loadEngine` loads the Node engine before any module that uses jax-js. */
export async function codecCommand(rest: string[], print: (json: boolean, value: unknown, text: string) => void, loadEngine: () => Promise<unknown>): Promise<void> {
  const [action, ...more] = rest;
  if (!action || action === "-h" || action === "--help") return void console.log(CODEC_HELP);
  if (!Object.hasOwn(CODEC_ACTIONS, action)) throw new InputError(`unknown codec action "${action}"; expected one of: ${Object.keys(CODEC_ACTIONS).join(", ")}`, { value: action });
  const { checkOutputFolder } = await import("../io/checkpoint.ts");
  const table = (rows: { levels: number; kbps: number; siSnr: number; melDistance: number; encodeRtf: number; decodeRtf: number }[]) =>
    ["levels  kbps   SI-SNR dB  mel dist  encode ×RT  decode ×RT", ...rows.map((r) => `${String(r.levels).padStart(6)}  ${r.kbps.toFixed(1).padStart(4)}  ${r.siSnr.toFixed(2).padStart(9)}  ${r.melDistance.toFixed(3).padStart(8)}  ${r.encodeRtf.toFixed(0).padStart(10)}  ${r.decodeRtf.toFixed(0).padStart(10)}`)].join("\n");

  if (action === "train") {
    const args = parseArgs(more, CODEC_ACTIONS.train);
    if (args.kind === "help") return void console.log(args.text);
    await loadEngine(); // before any module that imports jax-js
    const { DEFAULT_CODEC } = await import("../tokenizers/audio/codec-tokenizer.ts");
    const { DEFAULT_CODEC_TRAIN } = await import("../train/codec.ts");
    const base = { codec: DEFAULT_CODEC, train: { ...DEFAULT_CODEC_TRAIN, ...(args.values.steps === undefined ? {} : { steps: args.values.steps }) } };
    const cfg = applyOverrides(base, args.values.set);
    const audio: typeof import("../tokenizers/audio/codec-tokenizer.ts") = await import("../tokenizers/audio/codec-tokenizer.ts");
    audio.checkCodecConfig(cfg.codec, "--set codec");
    if (!Number.isInteger(cfg.train.steps) || cfg.train.steps < 1) throw new InputError(`--steps must be a positive integer, got ${cfg.train.steps}`, { field: "steps", value: cfg.train.steps });
    checkOutputFolder(args.values.out);
    const { trainCodecRun, evaluateCodec, codecData } = await import("../pipelines/codec.ts");
    const { Progress } = await import("../io/progress.ts");
    const progress = new Progress({ label: "audio codec", total: cfg.train.steps });
    const codec = await trainCodecRun({
      out: args.values.out,
      ...(args.values.data === undefined ? {} : { data: args.values.data }),
      config: cfg.codec,
      train: cfg.train,
      onProgress: (_, f) => progress.tick(1, { loss: f.loss!, l1: f.l1!, usage: f.usage!, ...(f.unitAccuracy !== undefined && { units: f.unitAccuracy }) }),
    });
    progress.done();
    try {
      const { test } = codecData(args.values.data, cfg.codec.sampleRate);
      const rows = test.length > 0 ? await evaluateCodec(codec, test) : [];
      if (rows.length > 0) {
        const { writeAtomic } = await import("../io/checkpoint.ts");
        writeAtomic(join(args.values.out, "eval.json"), `${JSON.stringify({ data: "spoken-digits (held-out speakers)", clips: test.length, rows }, null, 2)}\n`);
      }
      print(args.values.json, { dir: args.values.out, eval: rows }, `${rows.length > 0 ? `${table(rows)}\n` : ""}wrote ${args.values.out}/codec.safetensors, codec.json${rows.length > 0 ? ", eval.json" : ""}`);
    } finally {
      codec.dispose();
    }
    return;
  }

  if (action === "eval") {
    const args = parseArgs(more, CODEC_ACTIONS.eval);
    if (args.kind === "help") return void console.log(args.text);
    await loadEngine();
    const { loadCodec, evaluateCodec, codecData } = await import("../pipelines/codec.ts");
    const codec = await loadCodec(args.values.codec);
    try {
      const d = codecData(args.values.data, codec.config.sampleRate);
      const clips = args.values.data === undefined ? d.test : d.train;
      const rows = await evaluateCodec(codec, clips);
      print(args.values.json, { codec: args.values.codec, data: d.data, clips: clips.length, rows }, table(rows));
    } finally {
      codec.dispose();
    }
    return;
  }

  const spec = action === "encode" ? CODEC_ACTIONS.encode : CODEC_ACTIONS.decode;
  const args = parseArgs(more, spec);
  if (args.kind === "help") return void console.log(args.text);
  const files = existingFiles(args.positionals.files, action === "encode" ? "WAV file" : "token file");
  checkOutputFolder(args.values.out);
  await loadEngine();
  const { mkdirSync } = await import("node:fs");
  const { basename } = await import("node:path");
  const { loadCodec, readCodes, writeCodes } = await import("../pipelines/codec.ts");
  const codec = await loadCodec(args.values.codec, args.values.levels === undefined ? {} : { levels: args.values.levels });
  try {
    mkdirSync(args.values.out, { recursive: true });
    const stem = (f: string, ext: RegExp) => basename(f).replace(ext, "");
    const written: string[] = [];
    const t0 = performance.now();
    let seconds = 0;
    let levels = codec.levels;
    if (action === "encode") {
      const { readWav } = await import("../io/wav.ts");
      const clips = files.map((f) => readWav(f, { sampleRate: codec.config.sampleRate }));
      seconds = clips.reduce((a, c) => a + c.samples.length, 0) / codec.config.sampleRate;
      const ids = await codec.encode(clips);
      files.forEach((f, i) => {
        const out = join(args.values.out, `${stem(f, /\.wav$/i)}.codes.safetensors`);
        writeCodes(out, codec, ids[i]!, clips[i]!.samples.length);
        written.push(out);
      });
    } else {
      const { writeWav } = await import("../io/wav.ts");
      const { writeSpectrogram } = await import("../pipelines/spectrogram.ts");
      const codes = files.map((f) => {
        const c = readCodes(f, codec);
        const keep = args.values.levels ?? c.shape[1];
        if (keep > c.shape[1]) throw new InputError(`${f} holds ${c.shape[1]} levels; --levels ${keep} asks for more`, { file: f, field: "levels", value: keep });
        // the first `keep` levels of each frame: the same clip at a lower bitrate
        const ids = keep === c.shape[1] ? c.ids : c.ids.filter((_, i) => i % c.shape[1] < keep);
        return { ...c, ids, shape: [c.shape[0], keep] as [number, number] };
      });
      levels = codes[0]!.shape[1];
      const clips = await codec.decode(codes.map((c) => ({ ids: c.ids, shape: c.shape })));
      for (const [i, f] of files.entries()) {
        const samples = clips[i]!.samples.subarray(0, codes[i]!.samples);
        seconds += samples.length / codec.config.sampleRate;
        const out = join(args.values.out, `${stem(f, /\.codes\.safetensors$/i)}.wav`);
        writeWav(out, { samples, sampleRate: codec.config.sampleRate });
        await writeSpectrogram(out.replace(/\.wav$/, ".png"), samples, codec.config.sampleRate);
        written.push(out);
      }
    }
    const wall = (performance.now() - t0) / 1000;
    const kbps = (codec.frameRate * levels * Math.log2(codec.vocabSize)) / 1000;
    const summary = { codec: args.values.codec, levels, kbps, frameRate: codec.frameRate, seconds, realTimeFactor: seconds / wall, files: written };
    print(args.values.json, summary, `${written.join("\n")}\n${action}d ${seconds.toFixed(2)} s of audio at ${kbps.toFixed(1)} kbps (${levels} levels × ${codec.frameRate} frames/s) in ${wall.toFixed(2)} s: ${(seconds / wall).toFixed(1)}× real time (compiling included)`);
  } finally {
    codec.dispose();
  }
}

