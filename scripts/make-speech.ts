/**
 * Synthesises the project's speech data with Debian's espeak-ng: the ten digit words, each over
 * 16 speakers (English accents × voice variants), 2 speeds and 2 pitches, and the phrase
 * "a handwritten <digit>" once per speaker. Writes data/speech/: 16 kHz 16-bit mono WAV clips
 * (espeak-ng's 22,050 Hz resampled by wavefile's sinc, leading and trailing silence trimmed),
 * transcript.tsv (file, tab, text: the format `loadSpeechFolder` reads for any folder) and
 * manifest.json (speaker, speed, pitch, word and split of each clip; 4 speakers held out).
 * The clips are committed, so nothing at run time needs espeak-ng.
 *
 *   apt-get install espeak-ng && npx tsx scripts/make-speech.ts
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DIGIT_WORDS } from "../src/data/captions.ts";
import { writeAtomic } from "../src/io/checkpoint.ts";
import { readWav, writeWav } from "../src/io/wav.ts";

const OUT = new URL("../data/speech/", import.meta.url).pathname;
const RATE = 16000;
const ACCENTS = ["en-us", "en", "en-gb-scotland", "en-029"];
const VARIANTS = ["m1", "f2", "m3", "f4"];
/** Speakers whose clips form the test split: one per accent, each variant once. */
const TEST = new Set(["en-us+f4", "en+m3", "en-gb-scotland+f2", "en-029+m1"]);
const SPEEDS = [140, 190];
const PITCHES = [35, 65];

type Clip = { file: string; text: string; word: string; speaker: string; speed: number; pitch: number; seconds: number; split: "train" | "test" };

/** Drop leading and trailing samples quieter than 1% of full scale, keeping 30 ms either side. */
function trimSilence(x: Float32Array): Float32Array {
  const loud = (v: number) => Math.abs(v) > 0.01;
  const first = x.findIndex(loud);
  let last = x.length - 1;
  while (last > first && !loud(x[last]!)) last--;
  const pad = Math.round(0.03 * RATE);
  return first < 0 ? x : x.slice(Math.max(0, first - pad), Math.min(x.length, last + 1 + pad));
}

function main(): void {
  execFileSync("espeak-ng", ["--version"]);
  const version = execFileSync("espeak-ng", ["--version"], { encoding: "utf8" }).trim();
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(join(OUT, "clips"), { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), "mmntp-speech-"));
  const clips: Clip[] = [];
  const say = (speaker: string, text: string, word: string, speed: number, pitch: number) => {
    const raw = join(tmp, "say.wav");
    execFileSync("espeak-ng", ["-v", speaker, "-s", String(speed), "-p", String(pitch), "-w", raw, text]);
    const clip = readWav(raw, { sampleRate: RATE });
    const file = `clips/${speaker.replace("+", "_")}_${text.replace(/ /g, "-")}_s${speed}_p${pitch}.wav`;
    const samples = trimSilence(clip.samples);
    writeWav(join(OUT, file), { samples, sampleRate: RATE });
    clips.push({ file, text, word, speaker, speed, pitch, seconds: samples.length / RATE, split: TEST.has(speaker) ? "test" : "train" });
  };
  for (const accent of ACCENTS) {
    for (const variant of VARIANTS) {
      const speaker = `${accent}+${variant}`;
      for (const word of DIGIT_WORDS) {
        for (const speed of SPEEDS) for (const pitch of PITCHES) say(speaker, word, word, speed, pitch);
        say(speaker, `a handwritten ${word}`, word, 165, 50);
      }
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  writeAtomic(join(OUT, "transcript.tsv"), clips.map((c) => `${c.file}\t${c.text}\n`).join(""));
  const manifest = { sampleRate: RATE, source: `${version}; scripts/make-speech.ts`, speakers: ACCENTS.length * VARIANTS.length, testSpeakers: [...TEST], clips };
  writeAtomic(join(OUT, "manifest.json"), `${JSON.stringify(manifest, null, 1)}\n`);
  const bytes = clips.reduce((n, c) => n + statSync(join(OUT, c.file)).size, 0);
  const seconds = clips.reduce((n, c) => n + c.seconds, 0);
  console.log(JSON.stringify({ clips: clips.length, test: clips.filter((c) => c.split === "test").length, megabytes: bytes / 2 ** 20, seconds }));
}

main();
