/**
 * A picture of what the audio codec keeps: log-mel spectrograms of held-out clips (speakers the
 * codec never heard), the original in the first column, then decoded from 2, 4 and 7 RVQ levels
 * (1.6, 3.2 and 5.6 kbps with the default codec). One row per clip; time runs right, frequency
 * up, louder is brighter (80 dB). Writes docs/audio/codec.png.
 *
 *   npx tsx scripts/codec-spectrograms.ts [CODEC_DIR]     # default runs/codec (`mmntp codec train`)
 */
import "../src/engine/node.ts";
import { loadSpokenDigits } from "../src/data/speech.ts";
import { loadCodec } from "../src/pipelines/codec.ts";
import { logMels, writeSpectrogramGrid } from "../src/pipelines/spectrogram.ts";

const LEVELS = [2, 4, 7];
const codec = await loadCodec(process.argv[2] ?? "runs/codec");
const { test } = loadSpokenDigits();
const picks = ["en-us_f4_seven_s140_p35", "en_m3_three_s190_p65", "en-gb-scotland_f2_a-handwritten-nine_s165_p50", "en-029_m1_zero_s140_p65"].map((name) => test.clips.find((c) => c.file.includes(name))!);
const columns: Float32Array[][] = [picks.map((c) => c.samples)];
for (const l of LEVELS) {
  const at = codec.withLevels(l);
  const out = await at.decode(await at.encode(picks.map((c) => ({ samples: c.samples, sampleRate: 16000 }))));
  columns.push(out.map((o, i) => o.samples.subarray(0, picks[i]!.samples.length)));
  at.dispose();
}
const maps = await logMels(picks.flatMap((_, row) => columns.map((col) => col[row]!)), 16000);
const file = new URL("../docs/audio/codec.png", import.meta.url).pathname;
writeSpectrogramGrid(file, maps, { cols: columns.length });
console.log(JSON.stringify({ file, clips: picks.map((c) => c.file), columns: ["original", ...LEVELS.map((l) => `${l} levels (${(codec.frameRate * l * Math.log2(codec.vocabSize)) / 1000} kbps)`)] }));
codec.dispose();
