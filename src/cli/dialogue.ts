/**
 * `mmntp dialogue train|reply`: two speakers' streams in one model, Moshi-style
 * (pipelines/dialogue.ts, dialogue-run.ts). Argument handling and output only.
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { InputError } from "../io/errors.ts";
import { applyOverrides, JSON_OPTION, parseArgs, type ArgSpec } from "./args.ts";

const ACTIONS = {
  train: {
    usage: "mmntp dialogue train",
    description:
      "Trains one transformer on two speakers' codec streams side by side (Moshi-style): speaker A says a digit,\n" +
      "speaker B answers with the next one (\"three\" → \"four\"), made from the spoken digits' 12 training speakers.\n" +
      "Then answers every held-out speaker's digit and asks a speech run (--judge) what B said.",
    options: [
      { name: "out", short: "o", type: "string", default: join("runs", "dialogue"), placeholder: "DIR", help: "the dialogue run to write" },
      { name: "codec", type: "string", default: join("runs", "codec"), placeholder: "DIR", help: "the codec folder (`mmntp codec train`)" },
      { name: "judge", type: "string", default: join("runs", "speech"), placeholder: "DIR", help: "the speech run whose recognizer judges the replies (`mmntp speech train`); \"none\" to skip" },
      { name: "steps", type: "number", help: "training steps (default 1500)" },
      { name: "set", type: "string", multiple: true, placeholder: "key=value", help: "override a config value, e.g. --set gapFrames=10 --set model.layers=6" },
      JSON_OPTION,
    ],
  },
  reply: {
    usage: "mmntp dialogue reply",
    description: "Listens to a WAV file (speaker A) and answers in speaker B's stream; writes the conversation (both\nmixed), e.g.\n  mmntp dialogue reply data/speech/clips/en_m3_seven_s140_p35.wav -o answer.wav",
    positionals: [{ name: "file", help: "what A says (a WAV file, any rate)" }],
    options: [
      { name: "run", type: "string", default: join("runs", "dialogue"), placeholder: "DIR", help: "a dialogue run" },
      { name: "out", short: "o", type: "string", required: true, placeholder: "FILE.wav", help: "the conversation; B's reply alone goes to FILE-reply.wav, spectrograms beside them" },
      { name: "seed", type: "number", default: 0, help: "seed of the sampling" },
      { name: "temperature", type: "number", default: 0.8, help: "sampling temperature (0 = greedy)" },
      JSON_OPTION,
    ],
  },
} as const satisfies Record<string, ArgSpec>;

const HELP = [
  "Usage: mmntp dialogue <action> [options]",
  "",
  "Actions:",
  "  train       train a two-speaker model (A says a digit, B answers the next) and measure it",
  "  reply       answer a WAV file in B's stream",
].join("\n");

type Print = (json: boolean, value: unknown, text: string) => void;
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export async function dialogueCommand(rest: string[], print: Print, loadEngine: () => Promise<unknown>): Promise<void> {
  const [action, ...more] = rest;
  if (!action || action === "-h" || action === "--help") return void console.log(HELP);
  if (!Object.hasOwn(ACTIONS, action)) throw new InputError(`unknown dialogue action "${action}"; expected one of: ${Object.keys(ACTIONS).join(", ")}`, { value: action });
  if (action === "train") {
    const args = parseArgs(more, ACTIONS.train);
    if (args.kind === "help") return void console.log(args.text);
    const { checkOutputFolder } = await import("../io/checkpoint.ts");
    await loadEngine();
    const { DEFAULT_DIALOGUE_TRAIN, checkDialogueTrainConfig } = await import("../pipelines/dialogue.ts");
    const cfg = applyOverrides({ ...DEFAULT_DIALOGUE_TRAIN, ...(args.values.steps === undefined ? {} : { steps: args.values.steps }) }, args.values.set);
    checkDialogueTrainConfig(cfg, "--set");
    checkOutputFolder(args.values.out);
    const { loadCodec } = await import("../pipelines/codec.ts");
    const { loadSpeechRun, disposeSpeechRun } = await import("../pipelines/speech-run.ts");
    const { trainDialogueRun, disposeDialogueRun } = await import("../pipelines/dialogue-run.ts");
    const judge = args.values.judge === "none" ? undefined : await loadSpeechRun(args.values.judge);
    const codec = await loadCodec(args.values.codec);
    try {
      const { run, report } = await trainDialogueRun({ out: args.values.out, codec, train: cfg, ...(judge && { judge }) });
      if (run.codec !== codec) disposeDialogueRun(run);
      const line = report ? `replies: ${pct(report.nextDigit)} of ${report.replies} held-out digits answered with the next digit (judged by ${args.values.judge}); ${pct(report.quietWhileListening)} quiet while A speaks; ${(1 / report.rtf).toFixed(1)}× real time\n` : "";
      print(args.values.json, { dir: args.values.out, ...(report && { eval: report }) }, `${line}wrote ${args.values.out}`);
    } finally {
      codec.dispose();
      if (judge) disposeSpeechRun(judge);
    }
    return;
  }
  const args = parseArgs(more, ACTIONS.reply);
  if (args.kind === "help") return void console.log(args.text);
  const { file } = args.positionals;
  const { out, seed, temperature } = args.values;
  if (!existsSync(file) || statSync(file).isDirectory()) throw new InputError(`no such WAV file: ${file}`, { file });
  if (!/\.wav$/i.test(out)) throw new InputError(`--out must name a .wav file, got ${out}`, { field: "out", value: out });
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new InputError(`--temperature must be a finite number ≥ 0, got ${temperature}`, { field: "temperature", value: temperature });
  const replyFile = out.replace(/\.wav$/i, "-reply.wav");
  const { checkOutputPath } = await import("../io/checkpoint.ts");
  [out, replyFile].forEach(checkOutputPath);
  await loadEngine();
  const { readWav, writeWav } = await import("../io/wav.ts");
  const { writeSpectrogram } = await import("../pipelines/spectrogram.ts");
  const { loadDialogueRun, converse, disposeDialogueRun } = await import("../pipelines/dialogue-run.ts");
  const run = await loadDialogueRun(args.values.run);
  try {
    const sr = run.codec.config.sampleRate;
    const a = readWav(file, { sampleRate: sr }).samples;
    const { replies, mixed, turns, rtf } = await converse(run, [a], run.manifest.replyFrames, { temperature, seed });
    const files = [];
    for (const [f, x] of [[out, mixed[0]!], [replyFile, replies[0]!]] as const) {
      writeWav(f, { samples: x, sampleRate: sr });
      const png = join(dirname(f), `${basename(f, extname(f))}.png`);
      await writeSpectrogram(png, x, sr);
      files.push({ wav: f, spectrogram: png, seconds: x.length / sr });
    }
    print(args.values.json, { run: args.values.run, file, files, replyStarts: turns[0]! / sr, realTimeFactor: 1 / rtf }, `${files.map((f) => `${f.wav} (${f.seconds.toFixed(2)} s, spectrogram ${f.spectrogram})`).join("\n")}\nB's turn starts at ${(turns[0]! / sr).toFixed(2)} s; ${(1 / rtf).toFixed(1)}× real time (compiling included)`);
  } finally {
    disposeDialogueRun(run);
  }
}
