/**
 * Logits processors and a sampler, on host arrays (one row of V logits per sequence).
 * Processors decide what may be sampled (modality constraints, temperature, top-k);
 * the sampler decides which token is drawn.
 */
export type SamplingOptions = {
  /** 0 = greedy (argmax). */
  readonly temperature: number;
  /** Keep only the k most likely tokens; 0 = all. */
  readonly topK: number;
};

export const GREEDY: SamplingOptions = { temperature: 0, topK: 0 };

/** Draw one token id from `logits` (modified in place) after adding `allowed` (0 / −∞ per id). */
export function sampleToken(logits: Float32Array, allowed: Float32Array | undefined, opts: SamplingOptions, rng: () => number): number {
  if (allowed) for (let i = 0; i < logits.length; i++) logits[i] += allowed[i];
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (opts.temperature <= 0) return best;
  let cutoff = -Infinity;
  if (opts.topK > 0 && opts.topK < logits.length) {
    const sorted = Float32Array.from(logits).sort().reverse();
    cutoff = sorted[opts.topK - 1];
  }
  const max = logits[best];
  let total = 0;
  const probs = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] < cutoff || logits[i] === -Infinity) continue;
    probs[i] = Math.exp((logits[i] - max) / opts.temperature);
    total += probs[i];
  }
  let r = rng() * total;
  for (let i = 0; i < probs.length; i++) {
    r -= probs[i];
    if (r <= 0 && probs[i] > 0) return i;
  }
  return best;
}
