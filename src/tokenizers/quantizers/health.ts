import { checkIds } from "./checks.ts";

/**
 * Codebook health: how many codes a data set actually uses. Collapse (few codes used) is the
 * classic VQ failure; usage and perplexity are the standard measures (e.g. Dhariwal et al. 2020).
 */
export type CodebookHealth = {
  /** Fraction of the K codes used at least once. */
  usage: number;
  /** exp(entropy) of the code distribution: K when uniform, 1 when collapsed. */
  perplexity: number;
  /** Codes never used. */
  dead: number;
  /** Per-code counts, [K]. */
  counts: Int32Array;
};

/** indices: any flat list of token ids in [0, K). */
export function codebookHealth(indices: ArrayLike<number>, codebookSize: number): CodebookHealth {
  checkIds(indices, codebookSize, "codebookHealth");
  const counts = new Int32Array(codebookSize);
  for (let i = 0; i < indices.length; i++) counts[indices[i]]++;
  let used = 0;
  let entropy = 0;
  for (const c of counts) {
    if (c === 0) continue;
    used++;
    const p = c / indices.length;
    entropy -= p * Math.log(p);
  }
  return { usage: used / codebookSize, perplexity: Math.exp(entropy), dead: codebookSize - used, counts };
}

/** Per-code usage sorted for plotting and reading off how concentrated the codebook is. */
export type UsageHistogram = {
  /** Code ids, most used first (ties in id order), [K]. */
  order: Int32Array;
  /** Their counts, non-increasing, [K]. */
  counts: Int32Array;
  /** Their share of all tokens, [K]; all zeros when nothing was counted. */
  share: Float64Array;
  /** Tokens counted. */
  total: number;
  /** Fewest codes that cover half, and 90%, of all tokens (0 when nothing was counted). */
  codesFor50: number;
  codesFor90: number;
};

/** Sort a health report's (or raw per-code) counts, most used code first. */
export function usageHistogram(healthOrCounts: CodebookHealth | ArrayLike<number>): UsageHistogram {
  const raw = "counts" in healthOrCounts ? healthOrCounts.counts : healthOrCounts;
  const k = raw.length;
  for (let i = 0; i < k; i++) {
    if (!Number.isInteger(raw[i]) || raw[i]! < 0) throw new Error(`usageHistogram: count of code ${i} must be a non-negative integer, got ${raw[i]}`);
  }
  const order = Int32Array.from({ length: k }, (_, i) => i).sort((a, b) => raw[b]! - raw[a]! || a - b);
  const counts = Int32Array.from(order, (id) => raw[id]!);
  const total = counts.reduce((a, c) => a + c, 0);
  const share = Float64Array.from(counts, (c) => (total > 0 ? c / total : 0));
  const cover = (q: number) => {
    if (total === 0) return 0;
    let sum = 0;
    for (let i = 0; i < k; i++) if ((sum += counts[i]!) >= q * total) return i + 1;
    return k;
  };
  return { order, counts, share, total, codesFor50: cover(0.5), codesFor90: cover(0.9) };
}
