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
  const counts = new Int32Array(codebookSize);
  for (let i = 0; i < indices.length; i++) {
    const id = indices[i];
    if (!Number.isInteger(id) || id < 0 || id >= codebookSize) throw new Error(`code index ${id} out of range [0, ${codebookSize - 1}]`);
    counts[id]++;
  }
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
