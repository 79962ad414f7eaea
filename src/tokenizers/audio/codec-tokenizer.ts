/**
 * The neural codec (codec.ts) behind the one tokenizer contract: clips in, ids [frames, levels]
 * out, and back. `levels` picks the bitrate: a codec trained with quantizer dropout decodes from
 * any prefix of its RVQ levels. Browser-safe.
 */
import { fromHost, tree, type Array, type JsTree, type OwnedFunction } from "../../engine/index.ts";
import { inferenceJit } from "../../engine/lean.ts";
import { expectationsOfInit, paramsFromTensors, paramsToTensors } from "../../engine/params.ts";
import { KeyStream } from "../../engine/rng.ts";
import { InputError } from "../../io/errors.ts";
import { checkIds } from "../../nn/embedding.ts";
import type { Clip } from "../../io/wav.ts";
import { idsOf, type SavedTokenizer, type TokenIds, type Tokenizer } from "../tokenizer.ts";
import { bitrate, decodeIds, encodeIds, frameRate, hopOf, initCodec, padToHop, type CodecConfig, type CodecParams } from "./codec.ts";

export const DEFAULT_CODEC: CodecConfig = {
  sampleRate: 16000,
  channels: 32,
  strides: [8, 5, 4],
  dilations: [1, 3],
  latentDim: 16,
  rvq: { levels: 8, codebookSize: 256, beta: 0.25, dropout: 0.5, minLevels: 1 },
};

const isInt = (v: unknown, lo: number, hi: number): v is number => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;

/** Throws an InputError naming the field when `cfg` (e.g. read from JSON) is not a codec config. */
export function checkCodecConfig(cfg: unknown, where = "codec config"): asserts cfg is CodecConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null) throw new InputError(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  const bad = (field: string, expected: string) => {
    throw new InputError(`${where}.${field}: expected ${expected}, got ${JSON.stringify(c[field] ?? (field.includes(".") ? (c.rvq as Record<string, unknown> | undefined)?.[field.split(".")[1]!] : undefined))}`, { field, expected });
  };
  if (!isInt(c.sampleRate, 1000, 384_000)) bad("sampleRate", "an integer in [1000, 384000] (Hz)");
  if (!isInt(c.channels, 1, 1024)) bad("channels", "an integer in [1, 1024]");
  const strides = c.strides;
  if (!globalThis.Array.isArray(strides) || strides.length < 1 || strides.length > 6 || !strides.every((s) => isInt(s, 1, 64))) bad("strides", "1 to 6 integers in [1, 64]");
  if ((c.channels as number) * 2 ** ((strides as number[]).length - 1) > 4096) bad("channels", "at most 4096 channels at the last stage (channels · 2^(stages − 1))");
  const dil = c.dilations;
  if (!globalThis.Array.isArray(dil) || dil.length > 8 || !dil.every((d) => isInt(d, 1, 64))) bad("dilations", "up to 8 integers in [1, 64]");
  if (!isInt(c.latentDim, 1, 1024)) bad("latentDim", "an integer in [1, 1024]");
  const r = c.rvq as Record<string, unknown> | null;
  if (typeof r !== "object" || r === null) bad("rvq", "an object {levels, codebookSize, beta, dropout, minLevels}");
  if (!isInt(r!.levels, 1, 64)) bad("rvq.levels", "an integer in [1, 64]");
  if (!isInt(r!.codebookSize, 2, 65536)) bad("rvq.codebookSize", "an integer in [2, 65536]");
  if (!(typeof r!.beta === "number" && r!.beta >= 0 && r!.beta <= 10)) bad("rvq.beta", "a number in [0, 10]");
  if (!(typeof r!.dropout === "number" && r!.dropout >= 0 && r!.dropout <= 1)) bad("rvq.dropout", "a probability in [0, 1]");
  if (!isInt(r!.minLevels, 1, r!.levels as number)) bad("rvq.minLevels", `an integer in [1, rvq.levels = ${r!.levels}]`);
}

/** What the saved tensors of `cfg` must be, by tracing the initialization (nothing allocated). */
export const codecExpectations = (cfg: CodecConfig) => expectationsOfInit(() => initCodec(new KeyStream(0), cfg) as unknown as JsTree<Array>);

/** Clips at most this long go through the codec in one piece; longer ones in windows of it (a few seconds bound the memory). */
const MAX_CHUNK_SECONDS = 8;
/** Lengths are padded to whole half-seconds, so a few compiled shapes serve every clip. */
const BUCKET_SECONDS = 0.5;
/** Pieces encoded or decoded in one call. */
const BATCH = 16;

/** [start, frames] windows of at most `size` frames covering `total`. */
function windows(total: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let at = 0; at < total; at += size) out.push([at, Math.min(size, total - at)]);
  return out;
}

export class CodecTokenizer implements Tokenizer<Clip> {
  readonly modality = "audio";
  /** RVQ levels that encode writes (and decode expects at most): the bitrate. */
  readonly levels: number;
  readonly #encode: OwnedFunction<(p: CodecParams, x: Array) => Array>;
  readonly #decode: OwnedFunction<(p: CodecParams, ids: Array) => Array>;

  /** Takes ownership of `params`, laid out for `config`. */
  constructor(
    public params: CodecParams,
    readonly config: CodecConfig,
    { levels = config.rvq.levels }: { levels?: number } = {},
  ) {
    checkCodecConfig(config);
    if (!isInt(levels, 1, config.rvq.levels)) throw new InputError(`codec levels: expected an integer in [1, ${config.rvq.levels}], got ${levels}`, { field: "levels", value: levels });
    this.levels = levels;
    this.#encode = inferenceJit((p: CodecParams, x: Array) => encodeIds(p, x, config, levels));
    this.#decode = inferenceJit((p: CodecParams, ids: Array) => decodeIds(p, ids, config));
  }

  static init(config: CodecConfig, seed: number): CodecTokenizer {
    checkCodecConfig(config);
    const keys = new KeyStream(seed);
    const params = initCodec(keys, config);
    keys.dispose();
    return new CodecTokenizer(params, config);
  }

  /** Rebuild from `save()`'s output; checks the config, every tensor's name and shape, and that weights are finite. */
  static fromSaved(saved: SavedTokenizer, what = "audio codec", opts: { levels?: number } = {}): CodecTokenizer {
    if (saved.kind !== "codec") throw new InputError(`${what}: kind is ${JSON.stringify(saved.kind)}, expected "codec"`);
    const config = saved.config as unknown;
    checkCodecConfig(config, `${what} config`);
    return new CodecTokenizer(paramsFromTensors(saved.tensors, codecExpectations(config), what), config, opts);
  }

  /** The same weights at another bitrate (shares nothing: the params are copied). */
  withLevels(levels: number): CodecTokenizer {
    return new CodecTokenizer(tree.map((a: Array) => a.ref.add(0), this.params as never) as unknown as CodecParams, this.config, { levels });
  }

  get vocabSize(): number {
    return this.config.rvq.codebookSize;
  }
  /** Clips vary in length: one item's ids are [frames, levels]. */
  get tokenShape(): undefined {
    return undefined;
  }
  get tokensPerItem(): undefined {
    return undefined;
  }
  get hop(): number {
    return hopOf(this.config);
  }
  get frameRate(): number {
    return frameRate(this.config);
  }
  /** Bits per second at this tokenizer's levels. */
  get bitrate(): number {
    return bitrate(this.config, this.levels);
  }
  /** Token frames for a clip of `samples` samples: ⌈samples / hop⌉ (at least 1). */
  framesOf(samples: number): number {
    return Math.max(1, Math.ceil(samples / this.hop));
  }

  #checkClip(c: Clip, i: number): void {
    if (c.sampleRate !== this.config.sampleRate) throw new InputError(`codec encode: clip ${i} is at ${c.sampleRate} Hz, the codec at ${this.config.sampleRate} Hz (readWav resamples: pass { sampleRate: ${this.config.sampleRate} })`, { value: c.sampleRate, expected: `${this.config.sampleRate} Hz` });
    if (c.samples.length < 1) throw new InputError(`codec encode: clip ${i} is empty`);
  }

  /** Frames per bucket: clips are padded to a whole number of buckets, so that a handful of shapes (each compiled once) serve every length. */
  get #bucketFrames(): number {
    return Math.max(1, Math.round((BUCKET_SECONDS * this.config.sampleRate) / this.hop));
  }

  /**
   * Clips → ids [frames, levels] each (level fastest), frames = ⌈samples / hop⌉. Clips are padded
   * with silence to whole buckets and encoded up to BATCH at a time; clips longer than
   * MAX_CHUNK_SECONDS go through in windows of that length.
   */
  async encode(items: readonly Clip[]): Promise<TokenIds[]> {
    items.forEach((c, i) => this.#checkClip(c, i));
    const hop = this.hop;
    const out = items.map((c) => ({ ids: new Int32Array(this.framesOf(c.samples.length) * this.levels), shape: [this.framesOf(c.samples.length), this.levels] }));
    const pieces = items.flatMap((c, item) => windows(this.framesOf(c.samples.length), this.#windowFrames).map(([start, frames]) => ({ item, start, frames })));
    await this.#inBuckets(pieces, async (group, frames) => {
      const wave = new Float32Array(group.length * frames * hop);
      group.forEach((g, row) => wave.set(items[g.item]!.samples.subarray(g.start * hop, (g.start + g.frames) * hop), row * frames * hop));
      const ids = (await this.#encode(tree.ref(this.params), fromHost(wave, [group.length, frames * hop])).data()) as Int32Array;
      group.forEach((g, row) => out[g.item]!.ids.set(ids.subarray(row * frames * this.levels, (row * frames + g.frames) * this.levels), g.start * this.levels));
    });
    return out;
  }

  /** Ids [frames, L'] (1 ≤ L' ≤ the codec's levels; a bare array is read at this tokenizer's levels) → clips of frames·hop samples. */
  async decode(ids: readonly (TokenIds | Int32Array)[]): Promise<Clip[]> {
    const k = this.config.rvq.codebookSize;
    const items = ids.map((item, i) => {
      const flat = idsOf(item);
      const levels = item instanceof Int32Array ? this.levels : item.shape[1]!;
      if (!(item instanceof Int32Array) && (item.shape.length !== 2 || !isInt(levels, 1, this.config.rvq.levels) || item.shape[0]! * levels !== flat.length)) {
        throw new InputError(`codec decode: item ${i} has shape ${JSON.stringify(item.shape)} with ${flat.length} ids; expected [frames, levels] with 1 ≤ levels ≤ ${this.config.rvq.levels}`);
      }
      if (flat.length === 0 || flat.length % levels !== 0) throw new InputError(`codec decode: item ${i} has ${flat.length} ids, expected a positive multiple of ${levels} levels`);
      checkIds(flat, k, "codec token id");
      return { flat, levels, frames: flat.length / levels };
    });
    const hop = this.hop;
    const out = items.map((it) => ({ samples: new Float32Array(it.frames * hop), sampleRate: this.config.sampleRate }));
    // one batch holds one number of levels: group by it first
    for (const levels of new Set(items.map((it) => it.levels))) {
      const pieces = items.flatMap((it, item) => (it.levels === levels ? windows(it.frames, this.#windowFrames).map(([start, frames]) => ({ item, start, frames })) : []));
      await this.#inBuckets(pieces, async (group, frames) => {
        const batch = new Int32Array(group.length * frames * levels);
        group.forEach((g, row) => {
          const src = items[g.item]!.flat;
          batch.set(src.subarray(g.start * levels, (g.start + g.frames) * levels), row * frames * levels);
          // padding repeats the last frame (a code of silence is not known): the extra samples are cut off
          for (let f = g.frames; f < frames; f++) batch.copyWithin((row * frames + f) * levels, (row * frames + g.frames - 1) * levels, (row * frames + g.frames) * levels);
        });
        const wave = (await this.#decode(tree.ref(this.params), fromHost(batch, [group.length, frames, levels])).data()) as Float32Array;
        group.forEach((g, row) => out[g.item]!.samples.set(wave.subarray(row * frames * hop, (row * frames + g.frames) * hop), g.start * hop));
      });
    }
    return out;
  }

  get #windowFrames(): number {
    return Math.max(1, Math.floor((MAX_CHUNK_SECONDS * this.config.sampleRate) / this.hop / this.#bucketFrames)) * this.#bucketFrames;
  }

  /** Run `f` on the pieces grouped by padded length (whole buckets), at most BATCH at a time. */
  async #inBuckets<P extends { frames: number }>(pieces: readonly P[], f: (group: P[], frames: number) => Promise<void>): Promise<void> {
    const b = this.#bucketFrames;
    const byLength = new Map<number, P[]>();
    for (const p of pieces) {
      const frames = Math.ceil(p.frames / b) * b;
      byLength.set(frames, [...(byLength.get(frames) ?? []), p]);
    }
    for (const [frames, group] of byLength) for (let i = 0; i < group.length; i += BATCH) await f(group.slice(i, i + BATCH), frames);
  }

  async save(): Promise<SavedTokenizer> {
    return { kind: "codec", config: { ...this.config }, tensors: await paramsToTensors(this.params as unknown as JsTree<Array>) };
  }

  dispose(): void {
    this.#encode.dispose();
    this.#decode.dispose();
    tree.dispose(this.params as unknown as JsTree<Array>);
  }
}
