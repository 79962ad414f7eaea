/**
 * A picture of the spoken digits: log-mel spectrograms (64 mel bands, 25 ms windows every 6.25 ms
 * at 16 kHz) of the ten words, one row per speaker, for the first two held-out speakers and one
 * training speaker; time runs right, frequency up, louder is brighter (an 80 dB range). Writes
 * docs/audio/spoken-digits.png.
 *
 *   npx tsx scripts/speech-spectrograms.ts
 */
import "../src/engine/node.ts";
import { mkdirSync } from "node:fs";
import { startEngine } from "../src/engine/index.ts";
import { DIGIT_WORDS } from "../src/data/captions.ts";
import { loadSpokenDigits, type DigitClip } from "../src/data/speech.ts";
import { logMels, writeSpectrogramGrid } from "../src/pipelines/spectrogram.ts";

await startEngine();
const { train, test } = loadSpokenDigits();
const speakers = [test.clips[0]!.speaker, test.clips.find((c) => c.speaker !== test.clips[0]!.speaker)!.speaker, train.clips[0]!.speaker];
const all = [...train.clips, ...test.clips];
const pick = (speaker: string, word: string): DigitClip => all.find((c) => c.speaker === speaker && c.text === word && c.file.includes("_s140_p35"))!;
const maps = await logMels(
  speakers.flatMap((s) => DIGIT_WORDS.map((w) => pick(s, w).samples)),
  train.sampleRate,
);
mkdirSync(new URL("../docs/audio/", import.meta.url), { recursive: true });
const out = new URL("../docs/audio/spoken-digits.png", import.meta.url).pathname;
writeSpectrogramGrid(out, maps, { cols: 10 });
console.log(JSON.stringify({ file: out, speakers, frames: Math.max(...maps.map((m) => m.length / 64)), bands: 64 }));
