/**
 * Audio features against reference/audio_features.py (torch.stft / torch.istft, torchaudio's
 * formulas in float64; test/fixtures/audio/features.json): μ-law and A-law codes exactly, STFT,
 * iSTFT, the mel filterbank, log-mel and MFCC to float32 accuracy; the STFT's gradient by finite
 * differences; companding round trips.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fromHost, np, type Array as JaxArray } from "../../src/engine/index.ts";
import { compand, expandCodes } from "../../src/tokenizers/audio/companding.ts";
import { istft, stft, stftFrames } from "../../src/tokenizers/audio/stft.ts";
import { dctMatrix, logMelSpectrogram, melFilterbank, melSpectrogram, mfcc, powerSpectrum } from "../../src/tokenizers/audio/mel.ts";
import { gradCheck } from "../helpers/gradcheck.ts";
import { relativeError } from "../helpers/values.ts";

type Fixture = {
  sampleRate: number; nFft: number; hop: number; nMels: number; nMfcc: number;
  x: number[]; shape: [number, number];
  stftReal: number[]; stftImag: number[]; stftShape: [number, number, number];
  istft: number[]; melFilterbank: number[]; mel: number[]; logMel: number[]; mfcc: number[];
  companding: { x: number[]; muLaw: number[]; muLawDecoded: number[]; aLaw: number[]; aLawDecoded: number[] };
};
const fx = JSON.parse(readFileSync(new URL("../fixtures/audio/features.json", import.meta.url), "utf8")) as Fixture;
const opts = { nFft: fx.nFft, hop: fx.hop, sampleRate: fx.sampleRate, nMels: fx.nMels };
const signal = () => fromHost(Float32Array.from(fx.x), fx.shape);
const values = async (a: JaxArray) => Array.from((await a.data()) as Float32Array);

describe("companding (μ-law, A-law) against the reference", () => {
  it.each([["mu-law", "muLaw"], ["a-law", "aLaw"]] as const)("%s gives the reference's 8-bit codes and decoded values", (law, key) => {
    const codes = compand(law, fx.companding.x);
    expect(Array.from(codes)).toEqual(fx.companding[key]);
    expect(relativeError(expandCodes(law, codes), fx.companding[`${key}Decoded`])).toBeLessThan(1e-6);
  });

  it.each(["mu-law", "a-law"] as const)("%s: every code round-trips, and decoding loses least near zero", (law) => {
    const all = Int32Array.from({ length: 256 }, (_, i) => i);
    expect(Array.from(compand(law, expandCodes(law, all)))).toEqual(Array.from(all));
    const x = Float32Array.from({ length: 2001 }, (_, i) => -1 + i / 1000);
    const back = expandCodes(law, compand(law, x));
    const errAt = (lo: number, hi: number) => Math.max(...Array.from(x).map((v, i) => (Math.abs(v) >= lo && Math.abs(v) < hi ? Math.abs(back[i]! - v) : 0)));
    expect(errAt(0, 0.05)).toBeLessThan(errAt(0.5, 1.01) / 5); // finer steps at small amplitude
    expect(errAt(0.5, 1.01)).toBeLessThan(0.05);
  });

  it("refuses NaN samples, codes out of range, and bad bit widths", () => {
    expect(() => compand("mu-law", [0, Number.NaN])).toThrow("sample 1 is NaN");
    expect(() => expandCodes("a-law", [3, 256])).toThrow("code 256 at position 1 is not an integer in [0, 255]");
    expect(() => compand("mu-law", [0], 1)).toThrow("bits must be an integer in [2, 16], got 1");
  });
});

describe("STFT, iSTFT and mel features against torch", () => {
  it("stft matches torch.stft (center, reflect, periodic Hann), frames first", async () => {
    const s = stft(signal(), opts);
    expect(s.real.shape).toEqual(fx.stftShape);
    expect(fx.stftShape[1]).toBe(stftFrames(fx.shape[1], fx.hop));
    expect(relativeError(await values(s.real), fx.stftReal)).toBeLessThan(1e-5);
    expect(relativeError(await values(s.imag), fx.stftImag)).toBeLessThan(1e-5);
  });

  it("istft inverts it as torch.istft does, and reconstructs the signal", async () => {
    const y = await values(istft(stft(signal(), opts), { ...opts, length: fx.shape[1] }));
    expect(relativeError(y, fx.istft)).toBeLessThan(1e-5);
    expect(relativeError(y, fx.x)).toBeLessThan(1e-5);
  });

  it("the mel filterbank, log-mel and MFCC match torchaudio's formulas", async () => {
    const k = fx.nFft / 2 + 1;
    expect(relativeError(melFilterbank(k, fx.nMels, fx.sampleRate), fx.melFilterbank)).toBeLessThan(1e-6);
    expect(relativeError(await values(melSpectrogram(powerSpectrum(stft(signal(), opts)), opts)), fx.mel)).toBeLessThan(2e-5);
    expect(relativeError(await values(logMelSpectrogram(signal(), opts)), fx.logMel)).toBeLessThan(1e-4);
    expect(relativeError(await values(mfcc(signal(), { ...opts, nMfcc: fx.nMfcc })), fx.mfcc)).toBeLessThan(1e-4);
  });

  it("the DCT is orthonormal", () => {
    const m = 12;
    const d = dctMatrix(m, m);
    for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) {
      let dot = 0;
      for (let n = 0; n < m; n++) dot += d[n * m + a]! * d[n * m + b]!;
      expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-6);
    }
  });

  it("the STFT is differentiable: Σ|X|² against finite differences, in float64", () => {
    const x = np.array(Float64Array.from(fx.x.slice(0, 200)), { dtype: np.float64 }).reshape([1, 200]);
    const f = (v: JaxArray) => powerSpectrum(stft(v, { nFft: 32, hop: 8 })).sum();
    expect(gradCheck(f as never, [x], { perLeaf: 8, eps: 1e-4 })).toBeLessThan(1e-5);
    x.dispose();
  });

  it("refuses what it cannot frame", () => {
    expect(() => stft(signal(), { nFft: 64, hop: 24 })).toThrow("hop must be a positive divisor of nFft (64), got 24");
    expect(() => stft(fromHost(new Float32Array(20), [1, 20]), { nFft: 64, hop: 16 })).toThrow("expected x [B, N] with N > nFft/2 = 32");
    expect(() => melFilterbank(33, 12, 16000, 0, 9000)).toThrow("need 0 ≤ fMin < fMax ≤ sampleRate / 2 = 8000");
  });
});
