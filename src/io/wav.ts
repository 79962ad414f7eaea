/**
 * WAV files ↔ mono float samples in [−1, 1], through the maintained `wavefile` library (RIFF
 * parsing, every PCM depth, IEEE float, G.711 μ-law and A-law, sinc resampling). On top of it:
 * input is bounded and checked, and every refusal is an InputError naming the file and what was
 * expected; channels are mixed down to mono (their mean); other sample rates are resampled to the
 * one asked for; writes are atomic (16-bit PCM).
 */
import wavefile from "wavefile";
import { readRegularFile, writeAtomic } from "./checkpoint.ts";
import { InputError } from "./errors.ts";

// wavefile is CommonJS: its class comes off the default export under Node's ESM loader.
const { WaveFile } = wavefile;

/** One clip: mono samples in [−1, 1] at `sampleRate` Hz. */
export type Clip = { readonly samples: Float32Array; readonly sampleRate: number };

/** WAVE format codes `wavefile` decodes: PCM, IEEE float, A-law, μ-law, and WAVE_FORMAT_EXTENSIBLE (of PCM or float). */
const FORMATS: Readonly<Record<number, string>> = { 1: "PCM", 3: "IEEE float", 6: "A-law", 7: "μ-law", 0xfffe: "extensible" };
/** 512 MiB: over 2 hours of 16-bit mono at 16 kHz. */
const MAX_WAV_BYTES = 2 ** 29;
/** Fewer samples than this is not a clip anything can be learned from or framed (one STFT needs more). */
export const MIN_CLIP_SAMPLES = 2;

export type ReadWavOptions = {
  /** Resample to this rate (Hz) when the file's differs; default: keep the file's. */
  readonly sampleRate?: number;
  /** Refuse clips shorter than this many samples (after resampling; default MIN_CLIP_SAMPLES). */
  readonly minSamples?: number;
};

/** Read `file` as one mono clip (see the file comment). */
export function readWav(file: string, opts: ReadWavOptions = {}): Clip {
  const bytes = readRegularFile(file, MAX_WAV_BYTES);
  if (bytes.length < 12 || bytes.toString("latin1", 0, 4) !== "RIFF" || bytes.toString("latin1", 8, 12) !== "WAVE") {
    throw new InputError(`${file} is not a WAV file: expected a RIFF/WAVE header, got ${JSON.stringify(bytes.toString("latin1", 0, Math.min(12, bytes.length)).replace(/[^\x20-\x7e]/g, "."))}`, { file, expected: "RIFF....WAVE" });
  }
  const wav = new WaveFile();
  try {
    wav.fromBuffer(new Uint8Array(bytes));
  } catch (e) {
    throw new InputError(`${file} is not a readable WAV file: ${(e as Error).message}`, { file, cause: e });
  }
  // A copy: wavefile clears and rebuilds its own `fmt` when it converts.
  const fmt = { ...(wav.fmt as { audioFormat: number; numChannels: number; sampleRate: number; bitsPerSample: number }) };
  if (!Object.hasOwn(FORMATS, fmt.audioFormat)) {
    throw new InputError(`${file}: unsupported WAV encoding (format code ${fmt.audioFormat}); expected ${Object.values(FORMATS).slice(0, 4).join(", ")}`, { file, field: "audioFormat", value: fmt.audioFormat });
  }
  if (!(fmt.numChannels >= 1 && fmt.numChannels <= 64)) throw new InputError(`${file}: ${fmt.numChannels} channels; expected 1 to 64`, { file, field: "numChannels", value: fmt.numChannels });
  if (!(fmt.sampleRate >= 1000 && fmt.sampleRate <= 384_000)) throw new InputError(`${file}: sample rate ${fmt.sampleRate} Hz; expected 1,000 to 384,000`, { file, field: "sampleRate", value: fmt.sampleRate });
  try {
    if (fmt.audioFormat === 7) wav.fromMuLaw();
    else if (fmt.audioFormat === 6) wav.fromALaw();
    wav.toBitDepth("32f");
    if (opts.sampleRate !== undefined && opts.sampleRate !== fmt.sampleRate) wav.toSampleRate(opts.sampleRate, { method: "sinc" });
  } catch (e) {
    throw new InputError(`${file}: could not decode its ${fmt.bitsPerSample}-bit ${FORMATS[fmt.audioFormat]} samples: ${(e as Error).message}`, { file, cause: e });
  }
  const raw = wav.getSamples(false, Float64Array) as unknown as Float64Array | Float64Array[];
  const channels = fmt.numChannels === 1 ? [raw as Float64Array] : (raw as Float64Array[]);
  const n = channels[0]?.length ?? 0;
  const min = opts.minSamples ?? MIN_CLIP_SAMPLES;
  if (n < min) throw new InputError(`${file} holds ${n} sample${n === 1 ? "" : "s"}; a clip needs at least ${min}`, { file, value: n, expected: `≥ ${min} samples` });
  const samples = new Float32Array(n);
  for (const ch of channels) for (let i = 0; i < n; i++) samples[i]! += ch[i]! / channels.length;
  for (let i = 0; i < n; i++) if (!Number.isFinite(samples[i]!)) throw new InputError(`${file}: sample ${i} is not finite`, { file });
  return { samples, sampleRate: opts.sampleRate ?? fmt.sampleRate };
}

/** Write `clip` to `file` as 16-bit PCM mono, atomically (samples clipped to [−1, 1]). */
export function writeWav(file: string, clip: Clip): void {
  const ints = Int16Array.from(clip.samples, (v) => Math.round(Math.max(-1, Math.min(1, v)) * 32767));
  const wav = new WaveFile();
  wav.fromScratch(1, clip.sampleRate, "16", ints);
  writeAtomic(file, wav.toBuffer());
}
