/**
 * The audio codec as users run it: train it on the spoken digits or a folder of WAV files, save
 * and load it (a folder: codec.safetensors, then codec.json, each written atomically), measure it
 * level by level on held-out clips, and turn WAV files into token files and back.
 *
 * A token file (`*.codes.safetensors`) holds `ids` (I32 [frames, levels]) and `samples` (I32 [1],
 * the clip's length, so decoding cuts the padding off), with the sample rate and the codec's
 * config digest in its metadata.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fromHost, startEngine } from "../engine/index.ts";
import { loadSpeechFolder, loadSpokenDigits, SPEECH_DIR } from "../data/speech.ts";
import { meanAbsDiff, siSnr } from "../eval/audio.ts";
import { decodeSafetensorsAt, loadCheckpoint, saveCheckpoint, writeAtomic } from "../io/checkpoint.ts";
import { InputError } from "../io/errors.ts";
import { encodeSafetensors } from "../io/safetensors.ts";
import type { Clip } from "../io/wav.ts";
import { bitrate, type CodecConfig } from "../tokenizers/audio/codec.ts";
import { checkCodecConfig, CodecTokenizer, codecExpectations } from "../tokenizers/audio/codec-tokenizer.ts";
import { logMelSpectrogram } from "../tokenizers/audio/mel.ts";
import { DEFAULT_CODEC_TRAIN, trainCodec, type CodecProgress, type CodecTrainConfig } from "../train/codec.ts";
import { paramsToTensors } from "../engine/params.ts";
import { spectrogramOptions } from "./spectrogram.ts";

export const CODEC_FORMAT = "mmntp-codec";
export const CODEC_VERSION = 1;

/** codec.json: the codec's config and how it was trained. */
export type CodecManifest = { format: typeof CODEC_FORMAT; version: number; codec: CodecConfig; training?: CodecTrainConfig & { data: string; clips: number } };

/** The training and held-out clips: a user's WAV folder (all of it trains, nothing is held out) or the spoken digits' speaker split. */
export function codecData(dir: string | undefined, sampleRate: number): { data: string; train: Clip[]; test: Clip[] } {
  if (dir === undefined) {
    const { train, test } = loadSpokenDigits();
    if (train.sampleRate !== sampleRate) throw new InputError(`the spoken digits are at ${train.sampleRate} Hz, the codec config asks for ${sampleRate} Hz`);
    const clip = (c: { samples: Float32Array }) => ({ samples: c.samples, sampleRate });
    return { data: "spoken-digits", train: train.clips.map(clip), test: test.clips.map(clip) };
  }
  const set = loadSpeechFolder(dir, { sampleRate });
  return { data: dir, train: set.clips.map((c) => ({ samples: c.samples, sampleRate })), test: [] };
}

export async function saveCodec(dir: string, codec: CodecTokenizer, training?: CodecManifest["training"]): Promise<void> {
  const manifest: CodecManifest = { format: CODEC_FORMAT, version: CODEC_VERSION, codec: codec.config, ...(training ? { training } : {}) };
  saveCheckpoint(dir, "codec", { tensors: await paramsToTensors(codec.params as never), config: manifest });
}

/** Load a folder written by `saveCodec`, at `levels` RVQ levels (default all). The caller owns it. */
export async function loadCodec(dir: string, { levels }: { levels?: number } = {}): Promise<CodecTokenizer> {
  await startEngine(); // the backend, and in Node the native GEMM, before any array is made
  if (!existsSync(join(dir, "codec.json"))) throw new InputError(`${dir} is not a codec folder: ${join(dir, "codec.json")} is missing (make one with \`mmntp codec train -o ${dir}\`)`, { file: join(dir, "codec.json") });
  const file = join(dir, "codec.json");
  const { config } = loadCheckpoint(dir, "codec");
  const m = config as Partial<CodecManifest> | null;
  if (typeof m !== "object" || m === null || m.format !== CODEC_FORMAT) throw new InputError(`${file}: format is ${JSON.stringify(m?.format)}, expected "${CODEC_FORMAT}"`, { file, field: "format" });
  if (m.version !== CODEC_VERSION) throw new InputError(`${file}: version ${JSON.stringify(m.version)}, this mmntp reads version ${CODEC_VERSION}`, { file, field: "version" });
  checkCodecConfig(m.codec, `${file}: codec`);
  const { tensors } = loadCheckpoint(dir, "codec", { expect: codecExpectations(m.codec) });
  return CodecTokenizer.fromSaved({ kind: "codec", config: m.codec, tensors }, join(dir, "codec.safetensors"), { levels });
}

/** Train a codec of `config` on `data` (a WAV folder; default the spoken digits) and save it to `out`. The caller owns the result. */
export async function trainCodecRun(opts: { out: string; data?: string; config: CodecConfig; train?: CodecTrainConfig; onProgress?: CodecProgress }): Promise<CodecTokenizer> {
  checkCodecConfig(opts.config);
  await startEngine();
  const train = opts.train ?? DEFAULT_CODEC_TRAIN;
  const { data, train: clips } = codecData(opts.data, opts.config.sampleRate);
  const params = await trainCodec(
    clips.map((c) => c.samples),
    opts.config,
    train,
    opts.onProgress,
  );
  const codec = new CodecTokenizer(params, opts.config);
  await saveCodec(opts.out, codec, { ...train, data, clips: clips.length });
  return codec;
}

/** Mean |ln mel(a) − ln mel(b)| per clip, over the frames each clip covers. */
async function melDistances(refs: readonly Float32Array[], ests: readonly Float32Array[], sampleRate: number): Promise<number[]> {
  const opts = spectrogramOptions(sampleRate);
  const out: number[] = [];
  const bucket = Math.round(sampleRate / 2);
  for (let i = 0; i < refs.length; i += 16) {
    const part = refs.slice(i, i + 16);
    const len = Math.ceil(Math.max(...part.map((r) => r.length)) / bucket) * bucket;
    const pack = (xs: readonly Float32Array[]) => {
      const a = new Float32Array(part.length * len);
      xs.forEach((x, j) => a.set(x.subarray(0, part[j]!.length), j * len));
      return fromHost(a, [part.length, len]);
    };
    const ma = (await logMelSpectrogram(pack(part), opts).data()) as Float32Array;
    const mb = (await logMelSpectrogram(pack(ests.slice(i, i + 16)), opts).data()) as Float32Array;
    const perRow = ma.length / part.length;
    part.forEach((r, j) => {
      const frames = 1 + Math.floor(r.length / opts.hop);
      const at = j * perRow;
      out.push(meanAbsDiff(ma.subarray(at, at + frames * opts.nMels), mb.subarray(at, at + frames * opts.nMels)));
    });
  }
  return out;
}

export type CodecLevelReport = {
  levels: number;
  kbps: number;
  /** Mean SI-SNR over the clips, dB. */
  siSnr: number;
  /** Mean log-mel L1 distance (natural log of power, 64 bands; spectrogram.ts's features). */
  melDistance: number;
  /** Audio seconds per wall second, encoding and decoding (≥ 1 is faster than real time). */
  encodeRtf: number;
  decodeRtf: number;
};

/**
 * The codec at every number of levels on `clips`: bitrate, SI-SNR, mel distance, and speed as
 * times real time (after one warm-up pass, so compiling is not counted). Borrows `codec`.
 */
export async function evaluateCodec(codec: CodecTokenizer, clips: readonly Clip[], { levels }: { levels?: readonly number[] } = {}): Promise<CodecLevelReport[]> {
  if (clips.length === 0) throw new InputError("evaluateCodec: no clips to measure on");
  await startEngine();
  const seconds = clips.reduce((a, c) => a + c.samples.length, 0) / codec.config.sampleRate;
  const rows: CodecLevelReport[] = [];
  for (const l of levels ?? Array.from({ length: codec.config.rvq.levels }, (_, i) => i + 1)) {
    const at = l === codec.levels ? codec : codec.withLevels(l);
    try {
      await at.decode(await at.encode(clips)); // compile every bucket's shapes
      const t0 = performance.now();
      const ids = await at.encode(clips);
      const t1 = performance.now();
      const out = await at.decode(ids);
      const t2 = performance.now();
      const ests = out.map((o, i) => o.samples.subarray(0, clips[i]!.samples.length));
      const snr = clips.reduce((a, c, i) => a + siSnr(c.samples, ests[i]!), 0) / clips.length;
      const mel = (await melDistances(clips.map((c) => c.samples), ests, codec.config.sampleRate)).reduce((a, b) => a + b, 0) / clips.length;
      rows.push({ levels: l, kbps: bitrate(codec.config, l) / 1000, siSnr: snr, melDistance: mel, encodeRtf: seconds / ((t1 - t0) / 1000), decodeRtf: seconds / ((t2 - t1) / 1000) });
    } finally {
      if (at !== codec) at.dispose();
    }
  }
  return rows;
}

const digest = (config: CodecConfig) => createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 16);

/** Write a clip's ids as a token file (see the file comment). */
export function writeCodes(file: string, codec: CodecTokenizer, ids: { ids: Int32Array; shape: readonly number[] }, samples: number): void {
  const bytes = encodeSafetensors(
    { ids: { dtype: "I32", shape: [...ids.shape], data: ids.ids }, samples: { dtype: "I32", shape: [1], data: Int32Array.of(samples) } },
    { format: "mmntp-codes", sampleRate: String(codec.config.sampleRate), codec: digest(codec.config) },
  );
  writeAtomic(file, bytes);
}

/** Read a token file written by `writeCodes` for `codec`: its ids [frames, levels] and clip length, checked. */
export function readCodes(file: string, codec: CodecTokenizer): { ids: Int32Array; shape: [number, number]; samples: number } {
  const tensors = decodeSafetensorsAt(file);
  const ids = tensors.ids;
  const n = tensors.samples;
  if (!ids || ids.dtype !== "I32" || ids.shape.length !== 2) throw new InputError(`${file}: expected a tensor "ids" of I32 [frames, levels] (a file written by \`mmntp codec encode\`)`, { file, field: "ids" });
  if (!n || n.dtype !== "I32" || n.data.length !== 1) throw new InputError(`${file}: expected a tensor "samples" of I32 [1]`, { file, field: "samples" });
  const [frames, levels] = ids.shape as [number, number];
  if (levels < 1 || levels > codec.config.rvq.levels) throw new InputError(`${file}: ${levels} levels, the codec has ${codec.config.rvq.levels}`, { file, field: "ids", value: levels });
  const samples = n.data[0]!;
  if (!(samples >= 1 && samples <= frames * codec.hop)) throw new InputError(`${file}: samples ${samples} does not fit ${frames} frames of ${codec.hop}`, { file, field: "samples", value: samples });
  return { ids: ids.data as Int32Array, shape: [frames, levels], samples };
}

export { SPEECH_DIR };
