/**
 * Semantic units of speech, as HuBERT's first iteration makes its targets (Hsu et al. 2021, §3.1
 * and §4.3): k-means clusters of MFCC frames with first and second differences (39 values per
 * frame). One unit per codec frame (the same hop), so a clip's units line up with its codec ids.
 *
 * Each clip's MFCCs have their own mean removed (cepstral mean normalization: a fixed filter, such
 * as a speaker's vocal tract length or a microphone, is an additive offset in the cepstrum), then
 * every value is standardized with the training frames' statistics before clustering, so no
 * coefficient dominates the distances. Everything after the MFCC runs on the host.
 */
import { fromHost } from "../../engine/index.ts";
import { hostRng } from "../../engine/rng.ts";
import { kmeans, nearest } from "../quantizers/codebook-init.ts";
import { mfcc } from "./mel.ts";

export type SemanticUnitsConfig = {
  readonly sampleRate: number;
  /** samples per frame: the codec's hop, so units and codec ids share frames */
  readonly hop: number;
  /** STFT size (a multiple of hop) */
  readonly nFft: number;
  readonly nMels: number;
  readonly nMfcc: number;
  /** clusters (units) */
  readonly units: number;
  readonly iters: number;
  readonly seed: number;
};

/** 13 MFCCs of 40 mel bands over 30 ms windows every 10 ms, 64 units (HuBERT's first iteration used 100 on LibriSpeech's 960 h). */
export const DEFAULT_SEMANTIC: SemanticUnitsConfig = { sampleRate: 16000, hop: 160, nFft: 480, nMels: 40, nMfcc: 13, units: 64, iters: 20, seed: 0 };

export type SemanticUnits = {
  readonly config: SemanticUnitsConfig;
  /** per-value mean and standard deviation of the training frames: [3·nMfcc] each */
  readonly mean: Float32Array;
  readonly std: Float32Array;
  /** centroids: [units, 3·nMfcc] of standardized frames */
  readonly centroids: Float32Array;
};

/** First differences (x[t+1] − x[t−1]) / 2 of [F, D] frames, edges repeated. */
function deltas(x: Float32Array, d: number): Float32Array {
  const f = x.length / d;
  const out = new Float32Array(x.length);
  for (let t = 0; t < f; t++) {
    const a = Math.max(0, t - 1);
    const b = Math.min(f - 1, t + 1);
    for (let j = 0; j < d; j++) out[t * d + j] = (x[b * d + j]! - x[a * d + j]!) / 2;
  }
  return out;
}

/** ⌈samples / hop⌉ frames per clip (the codec's count), each [3·nMfcc]: MFCC, Δ, ΔΔ, mean-normalized per clip. */
export async function mfccFrames(clips: readonly Float32Array[], cfg: SemanticUnitsConfig): Promise<Float32Array[]> {
  const c = cfg.nMfcc;
  const out: Float32Array[] = [];
  for (const clip of clips) {
    const frames = Math.max(1, Math.ceil(clip.length / cfg.hop));
    const x = clip.length > cfg.nFft ? clip : Float32Array.from({ length: cfg.nFft + 1 }, (_, i) => clip[i] ?? 0); // reflect padding needs nFft/2 samples
    const m = (await mfcc(fromHost(x, [1, x.length]), cfg).data()) as Float32Array; // [F', c], F' = 1 + ⌊N / hop⌋ ≥ frames
    const base = m.subarray(0, frames * c);
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let t = 0; t < frames; t++) s += base[t * c + j]!;
      for (let t = 0; t < frames; t++) base[t * c + j]! -= s / frames;
    }
    const d1 = deltas(base, c);
    const d2 = deltas(d1, c);
    const row = new Float32Array(frames * 3 * c);
    for (let t = 0; t < frames; t++) {
      row.set(base.subarray(t * c, (t + 1) * c), t * 3 * c);
      row.set(d1.subarray(t * c, (t + 1) * c), t * 3 * c + c);
      row.set(d2.subarray(t * c, (t + 1) * c), t * 3 * c + 2 * c);
    }
    out.push(row);
  }
  return out;
}

/** Cluster the training clips' frames into `cfg.units` units. */
export async function fitSemanticUnits(clips: readonly Float32Array[], cfg: SemanticUnitsConfig = DEFAULT_SEMANTIC): Promise<SemanticUnits> {
  const { mean, std, centroids } = clusterFrames(await mfccFrames(clips, cfg), 3 * cfg.nMfcc, cfg);
  return { config: cfg, mean, std, centroids };
}

/**
 * k-means of frames [F_i, d] pooled over clips, each value standardized with the pooled frames'
 * statistics first (any features: MFCCs here, a model's hidden states for HuBERT's later
 * iterations).
 */
export function clusterFrames(feats: readonly Float32Array[], d: number, { units, iters, seed }: Pick<SemanticUnitsConfig, "units" | "iters" | "seed">): { mean: Float32Array; std: Float32Array; centroids: Float32Array } {
  const n = feats.reduce((a, f) => a + f.length / d, 0);
  const all = new Float32Array(n * d);
  let at = 0;
  for (const f of feats) {
    all.set(f, at);
    at += f.length;
  }
  const mean = new Float32Array(d);
  const std = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = all[i * d + j]!;
      s += v;
      s2 += v * v;
    }
    mean[j] = s / n;
    std[j] = Math.sqrt(Math.max(s2 / n - (s / n) ** 2, 1e-12));
  }
  standardize(all, mean, std);
  return { mean, std, centroids: kmeans(all, d, units, { iters, rng: hostRng(seed) }) };
}

function standardize(x: Float32Array, mean: Float32Array, std: Float32Array): void {
  const d = mean.length;
  for (let i = 0; i < x.length; i++) x[i] = (x[i]! - mean[i % d]!) / std[i % d]!;
}

/** Each clip's nearest cluster per frame, for frames [F_i, d] (standardized here, in place). */
export function assignFrames(clusters: { mean: Float32Array; std: Float32Array; centroids: Float32Array }, feats: readonly Float32Array[]): Int32Array[] {
  const d = clusters.mean.length;
  const k = clusters.centroids.length / d;
  return feats.map((f) => {
    standardize(f, clusters.mean, clusters.std);
    return Int32Array.from({ length: f.length / d }, (_, t) => nearest(f, t, clusters.centroids, k, d));
  });
}

/** Each clip's unit per frame: [⌈samples / hop⌉] ids in [0, units). */
export async function encodeUnits(units: SemanticUnits, clips: readonly Float32Array[]): Promise<Int32Array[]> {
  return assignFrames(units, await mfccFrames(clips, units.config));
}
