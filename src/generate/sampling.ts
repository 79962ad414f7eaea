/**
 * Logits processors and a sampler, on host arrays (one row of V logits per sequence).
 * Processors decide what may be sampled (modality constraints, temperature, top-k, top-p);
 * the sampler decides which token is drawn. Every draw takes exactly one number from `rng`
 * (none when greedy), whatever the filters keep, so two settings that keep the same tokens draw
 * the same ones from the same seed.
 */
export type SamplingOptions = {
  /** 0 = greedy (argmax). */
  readonly temperature: number;
  /** Keep only the k most likely tokens; 0 = all. */
  readonly topK: number;
  /**
   * Nucleus sampling (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration", §3.1):
   * keep the smallest set of most likely tokens whose probability reaches p (after temperature and
   * top-k). 1 or absent = all.
   */
  readonly topP?: number;
};

export const GREEDY: SamplingOptions = { temperature: 0, topK: 0 };

/** Throws, naming the field, the value and what is allowed, unless `opts` is valid. */
export function checkSampling(opts: SamplingOptions, where = "sampling"): void {
  if (typeof opts.temperature !== "number" || !(opts.temperature >= 0) || !Number.isFinite(opts.temperature)) throw new Error(`${where}.temperature: expected a finite number ≥ 0 (0 = greedy), got ${JSON.stringify(opts.temperature)}`);
  if (!Number.isInteger(opts.topK) || opts.topK < 0) throw new Error(`${where}.topK: expected an integer ≥ 0 (0 = all tokens), got ${JSON.stringify(opts.topK)}`);
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) throw new Error(`${where}.topP: expected a number in (0, 1] (1 = all tokens), got ${JSON.stringify(opts.topP)}`);
}

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
  if (opts.topP !== undefined && opts.topP < 1) total = nucleus(probs, total, opts.topP);
  let r = rng() * total;
  for (let i = 0; i < probs.length; i++) {
    r -= probs[i];
    if (r <= 0 && probs[i] > 0) return i;
  }
  return best;
}

/**
 * Zeroes every probability outside the nucleus: tokens sorted by probability (ties: lower id
 * first, so the first kept is `sampleToken`'s argmax), kept until their sum reaches p·total.
 * Returns the kept sum. probs: [V], unnormalized (total = their sum).
 */
function nucleus(probs: Float64Array, total: number, p: number): number {
  const order = Array.from(probs.keys()).filter((i) => probs[i]! > 0);
  order.sort((a, b) => probs[b]! - probs[a]! || a - b);
  let kept = 0;
  let k = 0;
  while (k < order.length && kept < p * total) kept += probs[order[k++]!]!;
  for (; k < order.length; k++) probs[order[k]!] = 0;
  return kept;
}

/**
 * softmax(logits)[id] at temperature 1, no filters: the model's own confidence in a drawn token,
 * which MaskGIT ranks to choose what stays revealed. logits: [V] (with any constraint already added).
 */
export function tokenProbability(logits: Float32Array, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += Math.exp(logits[i]! - max);
  return Math.exp(logits[id]! - max) / total;
}
