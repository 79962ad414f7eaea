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
import { fromHost, startEngine } from "../src/engine/index.ts";
import { DIGIT_WORDS } from "../src/data/captions.ts";
import { loadSpokenDigits, type DigitClip } from "../src/data/speech.ts";
import { writeGrayGrid } from "../src/io/png.ts";
import { logMelSpectrogram } from "../src/tokenizers/audio/mel.ts";

const OPTS = { sampleRate: 16000, nFft: 400, hop: 100, nMels: 64 } as const;
// hop 100 divides nFft 400, as the STFT requires (25 ms windows, 6.25 ms hops at 16 kHz)

await startEngine();
const { train, test } = loadSpokenDigits();
const speakers = [test.clips[0]!.speaker, test.clips.find((c) => c.speaker !== test.clips[0]!.speaker)!.speaker, train.clips[0]!.speaker];
const all = [...train.clips, ...test.clips];
const pick = (speaker: string, word: string): DigitClip => all.find((c) => c.speaker === speaker && c.text === word && c.file.includes("_s140_p35"))!;
const maps: Float32Array[] = [];
let frames = 0;
for (const s of speakers) {
  for (const w of DIGIT_WORDS) {
    const c = pick(s, w);
    const logMel = (await logMelSpectrogram(fromHost(c.samples, [1, c.samples.length]), OPTS).data()) as Float32Array; // [F, M]
    frames = Math.max(frames, logMel.length / OPTS.nMels);
    maps.push(logMel);
  }
}
const [h, w] = [OPTS.nMels, frames];
const images = new Float32Array(maps.length * h * w);
const top = Math.max(...maps.map((m) => Math.max(...m)));
const range = (80 / 10) * Math.LN10; // 80 dB of power, in natural-log units
maps.forEach((m, i) => {
  const f = m.length / h;
  for (let t = 0; t < f; t++) for (let b = 0; b < h; b++) images[i * h * w + (h - 1 - b) * w + t] = Math.max(0, 1 - (top - m[t * h + b]!) / range);
});
mkdirSync(new URL("../docs/audio/", import.meta.url), { recursive: true });
const out = new URL("../docs/audio/spoken-digits.png", import.meta.url).pathname;
writeGrayGrid(out, images, { height: h, width: w, count: maps.length, cols: 10, scale: 1 });
console.log(JSON.stringify({ file: out, speakers, frames, bands: h }));
