/**
 * Pictures of sound: log-mel spectrograms as grayscale PNGs (time runs right, frequency up,
 * louder is brighter over an 80 dB range), of one clip or of a grid of clips drawn on one scale.
 * 64 mel bands of 25 ms windows every 6.25 ms (at 16 kHz).
 */
import { writeGrayGrid } from "../io/png.ts";
import { logMels } from "../tokenizers/audio/mel.ts";

export { logMels, spectrogramOptions } from "../tokenizers/audio/mel.ts";

/** Log-mel maps [frames, bands] → one grid PNG, `cols` per row, brightness relative to the loudest bin of all. */
export function writeSpectrogramGrid(file: string, maps: readonly Float32Array[], { bands = 64, cols = maps.length }: { bands?: number; cols?: number } = {}): void {
  const frames = Math.max(...maps.map((m) => m.length / bands));
  const [h, w] = [bands, frames];
  const images = new Float32Array(maps.length * h * w);
  let top = -Infinity;
  for (const m of maps) for (const v of m) top = Math.max(top, v);
  const range = (80 / 10) * Math.LN10; // 80 dB of power, in natural-log units
  maps.forEach((m, i) => {
    const f = m.length / h;
    for (let t = 0; t < f; t++) for (let b = 0; b < h; b++) images[i * h * w + (h - 1 - b) * w + t] = Math.max(0, 1 - (top - m[t * h + b]!) / range);
  });
  writeGrayGrid(file, images, { height: h, width: w, count: maps.length, cols: Math.min(cols, maps.length), scale: 1 });
}

/** One clip's spectrogram as a PNG. */
export async function writeSpectrogram(file: string, samples: Float32Array, sampleRate: number): Promise<void> {
  writeSpectrogramGrid(file, await logMels([samples], sampleRate));
}
