/**
 * A neural audio codec in the manner of SoundStream (Zeghidour et al. 2021) and EnCodec (Défossez
 * et al. 2022): a 1-D conv encoder turns a waveform into one latent vector per `hop` samples, a
 * residual VQ (quantizers/rvq.ts) turns each into `levels` token ids, and a mirrored conv decoder
 * turns the summed codes back into a waveform.
 *
 *   wave [B, T] → encoder → latents [B, T/hop, D] → RVQ → ids [B, T/hop, L] → codes → decoder → [B, T]
 *
 * Encoder: a conv of k = 2s₀, stride s₀ straight from the waveform (1 → C channels), then per
 * stage i: residual units at C·2^i channels, ELU and a conv of k = 2s_{i+1}, stride s_{i+1} to
 * twice the channels; ELU, conv k3 → D. The decoder mirrors it with transposed convs, ending in
 * one of stride s₀ back to a single channel. Nothing runs at the full sample rate but the first
 * and last (single-channel) convs: SoundStream's full-rate residual stage made the training step
 * ~3× slower here (jax-js's elementwise kernels, not the matmuls, dominate there). Non-causal
 * ("same") padding throughout: T must be a multiple of hop (`padToHop` pads with silence).
 * Channels last ([B, T, C]) inside, as nn/conv1d.ts explains; weights in PyTorch's layouts.
 *
 * Frame rate = sampleRate / hop; bitrate = frame rate · levels · log₂ K. Under quantizer dropout
 * (SoundStream §3.3) one model decodes from any prefix of its levels, so the bitrate is chosen at
 * encode time.
 */
import { lax, nn, np, tree, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { conv1d, convTranspose1d, initConv1d, initConvTranspose1d, type Conv1dParams, type ConvTranspose1dParams } from "../../nn/conv1d.ts";
import { fmt } from "../../nn/shapes.ts";
import { DEFAULT_RVQ, indicesToCodes, initRVQ, quantize, type RVQOptions, type RVQParams } from "../quantizers/rvq.ts";

export type CodecConfig = {
  readonly sampleRate: number;
  /** C, the first conv's channels; each downsampling doubles them. */
  readonly channels: number;
  /** Downsampling factors, first to last; hop = their product. */
  readonly strides: readonly number[];
  /** Dilations of the residual units at every stage (SoundStream: 1, 3, 9). */
  readonly dilations: readonly number[];
  /** D, the latent (and code) width. */
  readonly latentDim: number;
  /** The residual VQ: levels L, codes per level K, β, quantizer dropout. */
  readonly rvq: Pick<RVQOptions, "levels" | "codebookSize" | "beta" | "dropout" | "minLevels">;
};

/** Samples per token frame: the product of the strides. */
export const hopOf = (cfg: Pick<CodecConfig, "strides">) => cfg.strides.reduce((a, s) => a * s, 1);
/** Token frames per second. */
export const frameRate = (cfg: Pick<CodecConfig, "strides" | "sampleRate">) => cfg.sampleRate / hopOf(cfg);
/** Bits per second when `levels` RVQ levels are kept. */
export const bitrate = (cfg: CodecConfig, levels = cfg.rvq.levels) => frameRate(cfg) * levels * Math.log2(cfg.rvq.codebookSize);

export const rvqOptions = (cfg: CodecConfig): RVQOptions => ({ ...DEFAULT_RVQ, ...cfg.rvq, dim: cfg.latentDim, distance: "l2" });

type ResUnit = { a: Conv1dParams; b: Conv1dParams };
/** Stage i: residual units at C·2^i channels, then (all but the last) the conv down by strides[i + 1]. */
export type CodecEncoderParams = { inp: Conv1dParams; stages: { units: ResUnit[]; down?: Conv1dParams }[]; out: Conv1dParams };
/** Stages from the top: (all but the first) the transposed conv up, then residual units. */
export type CodecDecoderParams = { inp: Conv1dParams; stages: { up?: ConvTranspose1dParams; units: ResUnit[] }[]; out: ConvTranspose1dParams };
export type CodecParams = { enc: CodecEncoderParams; rvq: RVQParams; dec: CodecDecoderParams };

/** Channels at stage i's input (encoder) or output (decoder). */
const width = (cfg: CodecConfig, i: number) => cfg.channels * 2 ** i;

function initUnits(keys: KeyStream, cfg: CodecConfig, ch: number): ResUnit[] {
  const hidden = Math.max(1, ch >> 1); // EnCodec's residual units halve the channels inside
  // the second conv starts small, so that every unit starts near the identity
  return cfg.dilations.map(() => ({ a: initConv1d(keys, ch, hidden, 3), b: initConv1d(keys, hidden, ch, 1, 0.1) }));
}

/** Encoder, RVQ, decoder, drawn from `keys` in that order. */
export function initCodec(keys: KeyStream, cfg: CodecConfig): CodecParams {
  const n = cfg.strides.length;
  const [s0] = cfg.strides as [number];
  const top = width(cfg, n - 1);
  const enc: CodecEncoderParams = {
    inp: initConv1d(keys, 1, cfg.channels, 2 * s0),
    stages: cfg.strides.map((s, i) => ({
      units: initUnits(keys, cfg, width(cfg, i)),
      ...(i + 1 < n ? { down: initConv1d(keys, width(cfg, i), width(cfg, i + 1), 2 * cfg.strides[i + 1]!) } : {}), // a pytree holds no undefined
    })),
    out: initConv1d(keys, top, cfg.latentDim, 3, 1),
  };
  const rvq = initRVQ(keys, { levels: cfg.rvq.levels, codebookSize: cfg.rvq.codebookSize, dim: cfg.latentDim });
  const stages: CodecDecoderParams["stages"] = [];
  for (let i = n - 1; i >= 0; i--) {
    const upConv = i + 1 < n ? { up: initConvTranspose1d(keys, width(cfg, i + 1), width(cfg, i), 2 * cfg.strides[i + 1]!) } : {};
    stages.push({ ...upConv, units: initUnits(keys, cfg, width(cfg, i)) });
  }
  const dec: CodecDecoderParams = { inp: initConv1d(keys, cfg.latentDim, top, 7), stages, out: initConvTranspose1d(keys, cfg.channels, 1, 2 * s0, 1) };
  return { enc, rvq, dec };
}

/** x + b(ELU(a(ELU(x)))): a is k3 at `dilation`, b is 1×1. Consumes p and x. */
function resUnit(p: ResUnit, x: Array, dilation: number): Array {
  const h = conv1d(p.a, nn.elu(x.ref), { padding: dilation, dilation });
  return x.add(conv1d(p.b, nn.elu(h)));
}

function units(ps: ResUnit[], x: Array, cfg: CodecConfig): Array {
  ps.forEach((p, j) => (x = resUnit(p, x, cfg.dilations[j]!)));
  return x;
}

function checkWave(wave: Array, cfg: CodecConfig, what: string): void {
  const hop = hopOf(cfg);
  if (wave.ndim !== 2 || wave.shape[1]! % hop !== 0 || wave.shape[1]! < hop) {
    throw new Error(`${what}: expected waveforms [B, T] with T a positive multiple of the hop (${hop} samples), got ${fmt(wave.shape)}`);
  }
}

/** ⌈s/2⌉ padding, and for the transposed conv s mod 2 output padding: a k = 2s conv of stride s maps T·s samples to T and back exactly. */
const down = (s: number) => ({ stride: s, padding: Math.ceil(s / 2) });
const up = (s: number) => ({ ...down(s), outputPadding: s % 2 });

/** wave [B, T] → latents [B, T/hop, D]. Consumes p and wave. */
export function encodeWave(p: CodecEncoderParams, wave: Array, cfg: CodecConfig): Array {
  checkWave(wave, cfg, "codec encoder");
  const [b, t] = wave.shape as [number, number];
  let h = conv1d(p.inp, wave.reshape([b, t, 1]), down(cfg.strides[0]!));
  p.stages.forEach((stage, i) => {
    h = units(stage.units, h, cfg);
    if (stage.down) h = conv1d(stage.down, nn.elu(h), down(cfg.strides[i + 1]!));
  });
  return conv1d(p.out, nn.elu(h), { padding: 1 });
}

/** codes [B, F, D] → wave [B, F·hop]. Consumes p and codes. */
export function decodeWave(p: CodecDecoderParams, codes: Array, cfg: CodecConfig): Array {
  if (codes.ndim !== 3 || codes.shape[2] !== cfg.latentDim) throw new Error(`codec decoder: expected codes [B, F, ${cfg.latentDim}], got ${fmt(codes.shape)}`);
  let h = conv1d(p.inp, codes, { padding: 3 });
  const n = cfg.strides.length;
  p.stages.forEach((stage, j) => {
    if (stage.up) h = convTranspose1d(stage.up, nn.elu(h), up(cfg.strides[n - j]!));
    h = units(stage.units, h, cfg);
  });
  const y = convTranspose1d(p.out, nn.elu(h), up(cfg.strides[0]!));
  return y.reshape(y.shape.slice(0, 2));
}

/** wave [B, T] → ids [B, T/hop, L'] (the first L' levels). Consumes p and wave. */
export function encodeIds(p: CodecParams, wave: Array, cfg: CodecConfig, levels = cfg.rvq.levels): Array {
  tree.dispose(p.dec);
  const r = quantize(p.rvq, encodeWave(p.enc, wave, cfg), rvqOptions(cfg), levels);
  tree.dispose([r.codes, r.losses, r.stats]);
  return r.indices;
}

/** ids [B, F, L'] → wave [B, F·hop], clipped to [−1, 1]. Consumes p and ids. */
export function decodeIds(p: CodecParams, ids: Array, cfg: CodecConfig): Array {
  tree.dispose(p.enc);
  return np.clip(decodeWave(p.dec, indicesToCodes(p.rvq, ids, { distance: "l2" }), cfg), -1, 1);
}

/**
 * wave [B, T] → its reconstruction through the quantizer [B, T] (the straight-through path), the
 * quantizer's losses and stats, its ids [B, F, L] and the encoder's latents [B, F, D] (both out
 * of the gradient). `withFirstLevel`: also level 0's codes [B, F, D] with the straight-through
 * gradient to the encoder (what semantic distillation trains). Consumes p and wave.
 */
export function reconstruct(p: CodecParams, wave: Array, cfg: CodecConfig, levelMask?: Array, { withFirstLevel = false } = {}) {
  const z = encodeWave(p.enc, wave, cfg);
  const first = withFirstLevel ? p.rvq.levels[0]!.codebook.ref : undefined;
  const r = quantize(p.rvq, z.ref, rvqOptions(cfg), cfg.rvq.levels, levelMask);
  const indices = lax.stopGradient(r.indices);
  let firstLevel: Array | undefined;
  if (first) {
    const idx0 = cfg.rvq.levels === 1 ? indices.ref : np.split(indices.ref, cfg.rvq.levels, -1)[0]!;
    const e0 = indicesToCodes({ levels: [{ codebook: first }] }, idx0, { distance: "l2" });
    firstLevel = z.ref.add(lax.stopGradient(e0.sub(z.ref))); // level 0's code, straight through to the encoder
  }
  return { recon: decodeWave(p.dec, r.codes, cfg), losses: r.losses, stats: r.stats, indices, latents: lax.stopGradient(z), firstLevel };
}

/** Silence appended so the length is a multiple of `hop` (at least one hop). */
export function padToHop(samples: Float32Array, hop: number): Float32Array {
  const n = Math.max(hop, Math.ceil(samples.length / hop) * hop);
  if (n === samples.length) return samples;
  const out = new Float32Array(n);
  out.set(samples);
  return out;
}
