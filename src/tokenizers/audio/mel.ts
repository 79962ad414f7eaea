/**
 * Mel features of a spectrogram (stft.ts), as torchaudio computes them
 * (reference/audio_features.py is the oracle):
 *
 *   power    |X|² [B, F, K]
 *   mel      power · fb,   fb [K, M]: triangles on the HTK mel scale m = 2595·log10(1 + f/700)
 *            between fMin and fMax, unnormalized (torchaudio's melscale_fbanks, norm=None)
 *   log-mel  ln(mel + 1e-6)   (torchaudio MFCC's `log_mels=True`)
 *   MFCC     log-mel · D,  D [M, C]: the orthonormal DCT-II (create_dct(norm="ortho"))
 *
 * The filterbank and the DCT are built on the host in float64; the products run on the engine,
 * differentiable. Browser-safe.
 */
import { fromHost, np, type Array } from "../../engine/index.ts";
import { stft, type Complex, type StftOptions } from "./stft.ts";

export type MelOptions = StftOptions & {
  readonly sampleRate: number;
  readonly nMels: number;
  /** Lowest and highest filter edges, Hz (default 0 and sampleRate / 2). */
  readonly fMin?: number;
  readonly fMax?: number;
};

const hzToMel = (f: number) => 2595 * Math.log10(1 + f / 700);
const melToHz = (m: number) => 700 * (10 ** (m / 2595) - 1);

/** The mel filterbank [nFreqs, nMels], row-major (torchaudio's melscale_fbanks, HTK scale, no normalization). */
export function melFilterbank(nFreqs: number, nMels: number, sampleRate: number, fMin = 0, fMax = sampleRate / 2): Float32Array {
  if (!Number.isInteger(nFreqs) || nFreqs < 2) throw new Error(`melFilterbank: nFreqs must be an integer ≥ 2, got ${nFreqs}`);
  if (!Number.isInteger(nMels) || nMels < 1) throw new Error(`melFilterbank: nMels must be a positive integer, got ${nMels}`);
  if (!(sampleRate > 0)) throw new Error(`melFilterbank: sampleRate must be positive, got ${sampleRate}`);
  if (!(fMin >= 0 && fMin < fMax && fMax <= sampleRate / 2)) throw new Error(`melFilterbank: need 0 ≤ fMin < fMax ≤ sampleRate / 2 = ${sampleRate / 2}, got fMin ${fMin}, fMax ${fMax}`);
  const top = Math.floor(sampleRate / 2);
  const freqs = globalThis.Array.from({ length: nFreqs }, (_, i) => (top * i) / (nFreqs - 1));
  const [m0, m1] = [hzToMel(fMin), hzToMel(fMax)];
  const pts = globalThis.Array.from({ length: nMels + 2 }, (_, i) => melToHz(m0 + ((m1 - m0) * i) / (nMels + 1)));
  const fb = new Float32Array(nFreqs * nMels);
  for (let k = 0; k < nFreqs; k++) {
    for (let m = 0; m < nMels; m++) {
      const down = (freqs[k]! - pts[m]!) / (pts[m + 1]! - pts[m]!);
      const up = (pts[m + 2]! - freqs[k]!) / (pts[m + 2]! - pts[m + 1]!);
      fb[k * nMels + m] = Math.max(0, Math.min(down, up));
    }
  }
  return fb;
}

/** The orthonormal DCT-II as a matrix [nMels, nMfcc] (torchaudio's create_dct(norm="ortho")). */
export function dctMatrix(nMfcc: number, nMels: number): Float32Array {
  if (!Number.isInteger(nMfcc) || nMfcc < 1 || nMfcc > nMels) throw new Error(`dctMatrix: nMfcc must be an integer in [1, nMels = ${nMels}], got ${nMfcc}`);
  const d = new Float32Array(nMels * nMfcc);
  for (let n = 0; n < nMels; n++) {
    for (let k = 0; k < nMfcc; k++) d[n * nMfcc + k] = Math.cos((Math.PI / nMels) * (n + 0.5) * k) * Math.sqrt(2 / nMels) * (k === 0 ? Math.SQRT1_2 : 1);
  }
  return d;
}

/** |X|² [B, F, K]. Consumes X. */
export function powerSpectrum(spec: Complex): Array {
  return np.square(spec.real).add(np.square(spec.imag));
}

/** Power spectrogram [B, F, K] → mel spectrogram [B, F, nMels]. Consumes power. */
export function melSpectrogram(power: Array, opts: MelOptions): Array {
  const k = opts.nFft / 2 + 1;
  const fb = melFilterbank(k, opts.nMels, opts.sampleRate, opts.fMin, opts.fMax);
  return np.matmul(power, fromHost(fb, [k, opts.nMels]));
}

/** ln(mel + 1e-6). Consumes mel. */
export const logOf = (mel: Array): Array => np.log(mel.add(1e-6));

/** Waveforms x [B, N] → log-mel [B, F, nMels]. Consumes x. */
export function logMelSpectrogram(x: Array, opts: MelOptions): Array {
  return logOf(melSpectrogram(powerSpectrum(stft(x, opts)), opts));
}

/** Waveforms x [B, N] → MFCC [B, F, nMfcc]. Consumes x. */
export function mfcc(x: Array, opts: MelOptions & { readonly nMfcc: number }): Array {
  const d = dctMatrix(opts.nMfcc, opts.nMels);
  return np.matmul(logMelSpectrogram(x, opts), fromHost(d, [opts.nMels, opts.nMfcc]));
}

/** The pictures' and voice measures' log-mel: 64 bands of 25 ms windows every 6.25 ms (at 16 kHz; hop divides nFft, as the STFT requires). */
export const spectrogramOptions = (sampleRate: number) => {
  const hop = Math.round(sampleRate / 160);
  return { sampleRate, nFft: 4 * hop, hop, nMels: 64 };
};

/** Log-mel [frames, bands] of each clip (natural log of power). */
export async function logMels(clips: readonly Float32Array[], sampleRate: number): Promise<Float32Array[]> {
  const opts = spectrogramOptions(sampleRate);
  const out: Float32Array[] = [];
  for (const c of clips) {
    const x = c.length > opts.nFft / 2 ? c : Float32Array.from({ length: opts.nFft / 2 + 1 }, (_, i) => c[i] ?? 0);
    out.push((await logMelSpectrogram(fromHost(x, [1, x.length]), opts).data()) as Float32Array);
  }
  return out;
}
