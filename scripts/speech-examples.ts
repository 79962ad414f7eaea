/**
 * Pictures and sounds of the speech model: `mmntp tts` speaks each digit word and one phrase into
 * docs/audio/examples/tts-<word>.wav (+ .png), and docs/audio/speech.png shows those spectrograms
 * beside a held-out speaker saying the same words (left: the held-out clip, right: synthesized;
 * time runs right, frequency up, louder is brighter over 80 dB). Also prints what `mmntp asr`
 * hears in each synthesized file.
 *
 *   npx tsx scripts/speech-examples.ts [SPEECH_RUN]     # default runs/speech (`mmntp speech train`)
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import "../src/engine/node.ts";
import { DIGIT_WORDS } from "../src/data/captions.ts";
import { loadSpokenDigits } from "../src/data/speech.ts";
import { readWav } from "../src/io/wav.ts";
import { logMels, writeSpectrogramGrid } from "../src/pipelines/spectrogram.ts";

const run = process.argv[2] ?? "runs/speech";
const docs = new URL("../docs/audio/", import.meta.url).pathname;
const dir = join(docs, "examples");
mkdirSync(dir, { recursive: true });
const texts = [...DIGIT_WORDS, "a handwritten seven"];
const mmntp = (...args: string[]) => {
  const r = spawnSync(process.execPath, [new URL("../bin/mmntp.js", import.meta.url).pathname, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mmntp ${args.join(" ")} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as { files: { wav: string; recognized: string }[] };
};
const made = texts.map((t) => mmntp("tts", t, "-o", join(dir, `tts-${t.replace(/ /g, "-")}.wav`), "--run", run, "--json").files[0]!);
const { test } = loadSpokenDigits();
const speaker = "en-us_f4"; // a held-out voice
const refs = texts.map((t) => test.clips.find((c) => c.file.includes(`${speaker}_${t.replace(/ /g, "-")}_`))!);
const maps = await logMels(texts.flatMap((_, i) => [refs[i]!.samples, readWav(made[i]!.wav).samples]), 16000);
writeSpectrogramGrid(join(docs, "speech.png"), maps, { cols: 4 });
console.log(JSON.stringify({ picture: join(docs, "speech.png"), heard: made.map((m, i) => ({ asked: texts[i], wav: m.wav, recognized: m.recognized })) }, null, 2));
