/**
 * WAV reading and writing (io/wav.ts over wavefile): round trips, stereo mixed down, resampling
 * that keeps a tone's pitch, μ-law files decoded, and the refusals the audio issue lists: a
 * non-WAV file, an empty or 1-sample clip, an unsupported encoding.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import wavefile from "wavefile";
import { afterAll, describe, expect, it } from "vitest";
import { InputError } from "../../src/io/errors.ts";
import { readWav, writeWav } from "../../src/io/wav.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-wav-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tone = (hz: number, rate: number, seconds: number, amp = 0.5) => Float32Array.from({ length: Math.round(rate * seconds) }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / rate));
/** Upward zero crossings per second: the tone's frequency. */
const frequency = (x: Float32Array, rate: number) => {
  let n = 0;
  for (let i = 1; i < x.length; i++) if (x[i - 1]! < 0 && x[i]! >= 0) n++;
  return (n * rate) / x.length;
};
/** A WAV file made by wavefile itself (the encodings mmntp does not write). */
function made(name: string, channels: number, rate: number, depth: string, samples: number[] | number[][], then?: (w: InstanceType<typeof wavefile.WaveFile>) => void): string {
  const w = new wavefile.WaveFile();
  w.fromScratch(channels, rate, depth, samples);
  then?.(w);
  const file = join(dir, name);
  writeFileSync(file, w.toBuffer());
  return file;
}
const refusal = (file: string, opts = {}) => {
  try {
    readWav(file, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return (e as InputError).message;
  }
  throw new Error(`${file} was read`);
};

describe("readWav / writeWav", () => {
  it("round-trips 16-bit PCM to within one quantization step", () => {
    const x = tone(440, 16000, 0.25);
    writeWav(join(dir, "a.wav"), { samples: x, sampleRate: 16000 });
    const back = readWav(join(dir, "a.wav"));
    expect(back.sampleRate).toBe(16000);
    expect(back.samples.length).toBe(x.length);
    expect(Math.max(...back.samples.map((v, i) => Math.abs(v - x[i]!)))).toBeLessThan(1 / 32767 + 1e-7);
  });

  it("mixes stereo down to the mean of its channels", () => {
    const l = Array.from(tone(300, 8000, 0.1, 0.4), (v) => Math.round(v * 32767));
    const r = l.map(() => 8192); // a constant quarter-scale right channel
    const back = readWav(made("stereo.wav", 2, 8000, "16", [l, r]));
    expect(back.samples.length).toBe(l.length);
    l.forEach((v, i) => expect(Math.abs(back.samples[i]! - (v / 32768 + 0.25) / 2)).toBeLessThan(1e-3));
  });

  it("resamples 8 kHz to 16 kHz: twice the samples, the same pitch", () => {
    const back = readWav(made("8k.wav", 1, 8000, "32f", Array.from(tone(500, 8000, 0.5))), { sampleRate: 16000 });
    expect(back.sampleRate).toBe(16000);
    expect(Math.abs(back.samples.length - 8000)).toBeLessThanOrEqual(2);
    expect(Math.abs(frequency(back.samples, 16000) - 500)).toBeLessThan(5);
  });

  it("decodes G.711 μ-law and A-law files", () => {
    const x = Array.from(tone(200, 8000, 0.1, 0.6), (v) => Math.round(v * 32767));
    for (const [law, convert] of [["mu", (w: InstanceType<typeof wavefile.WaveFile>) => w.toMuLaw()], ["a", (w: InstanceType<typeof wavefile.WaveFile>) => w.toALaw()]] as const) {
      const back = readWav(made(`${law}.wav`, 1, 8000, "16", x, convert));
      expect(back.samples.length).toBe(x.length);
      x.forEach((v, i) => expect(Math.abs(back.samples[i]! - v / 32768)).toBeLessThan(0.02));
    }
  });
});

describe("readWav refuses, naming the file and what was expected", () => {
  it("a file that is not a WAV", () => {
    const f = join(dir, "notes.wav");
    writeFileSync(f, "just some text, not audio");
    expect(refusal(f)).toBe(`${f} is not a WAV file: expected a RIFF/WAVE header, got "just some te"`);
  });

  it("an empty and a 1-sample clip", () => {
    expect(refusal(made("one.wav", 1, 16000, "16", [100]))).toContain("one.wav holds 1 sample; a clip needs at least 2");
    expect(refusal(made("empty.wav", 1, 16000, "16", []))).toContain("empty.wav holds 0 samples; a clip needs at least 2");
    expect(refusal(made("short.wav", 1, 16000, "16", [1, 2, 3]), { minSamples: 400 })).toContain("short.wav holds 3 samples; a clip needs at least 400");
  });

  it("an encoding it cannot decode", () => {
    const f = made("adpcm.wav", 1, 8000, "16", [1, 2, 3, 4]);
    const bytes = readFileSync(f);
    bytes.writeUInt16LE(2, 20); // fmt's audioFormat: 2 = Microsoft ADPCM
    writeFileSync(f, bytes);
    expect(refusal(f)).toContain("adpcm.wav: unsupported WAV encoding (format code 2); expected PCM, IEEE float, A-law, μ-law");
  });

  it("a truncated header", () => {
    const f = join(dir, "cut.wav");
    writeFileSync(f, Buffer.from("RIFF\x10\x00\x00\x00WAVEfmt ", "latin1"));
    expect(refusal(f)).toMatch(/cut\.wav is not a readable WAV file|cut\.wav: /);
  });
});
