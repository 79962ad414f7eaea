/** Reconstruction metrics on host images with values in [0, 1] (SSIM: ./ssim.ts). */

/**
 * Peak signal-to-noise ratio, dB: 10·log₁₀(R² / MSE) over every value of `a` and `b`, R the data
 * range (max − min of the value scale: 1 for [0, 1], 255 for 8-bit). Equal inputs give +Infinity.
 */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, options: { readonly dataRange?: number } = {}): number {
  if (a.length !== b.length || a.length === 0) throw new Error(`psnr: expected two non-empty arrays of equal length, got ${a.length} and ${b.length}`);
  const dataRange = options.dataRange ?? 1;
  if (!(dataRange > 0 && Number.isFinite(dataRange))) throw new Error(`psnr: dataRange must be a positive number, got ${dataRange}`);
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i]! - b[i]!) ** 2;
  return 10 * Math.log10(dataRange ** 2 / (se / a.length));
}

/** Share of `predicted` equal to `labels` (same length). */
export function accuracy(predicted: ArrayLike<number | null>, labels: ArrayLike<number>): number {
  if (predicted.length !== labels.length || labels.length === 0) throw new Error(`accuracy: expected two non-empty arrays of equal length, got ${predicted.length} and ${labels.length}`);
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) hits++;
  return hits / labels.length;
}

/**
 * Inception Score (Salimans et al. 2016) on class probabilities `probs` [N, K] (rows sum to 1),
 * e.g. the feature network's softmax of generated images: exp(E_x KL(p(y|x) ‖ p(y))), p(y) the
 * mean row, averaged over `splits` equal parts (mean and standard deviation over the parts, as
 * the original code reports it). 1 when every row is the same; K when rows are one-hot and spread
 * evenly over the K classes.
 */
export function inceptionScore(probs: ArrayLike<number>, n: number, k: number, { splits = 1 }: { readonly splits?: number } = {}): { mean: number; std: number } {
  if (!Number.isInteger(n) || !Number.isInteger(k) || n < 1 || k < 1 || probs.length !== n * k) throw new Error(`inceptionScore: expected ${n}×${k} probabilities, got ${probs.length} values`);
  if (!Number.isInteger(splits) || splits < 1 || splits > n) throw new Error(`inceptionScore: splits must be an integer in [1, ${n}], got ${splits}`);
  const scores: number[] = [];
  for (let s = 0; s < splits; s++) {
    const [lo, hi] = [Math.floor((s * n) / splits), Math.floor(((s + 1) * n) / splits)];
    const marginal = new Float64Array(k);
    for (let i = lo; i < hi; i++) for (let j = 0; j < k; j++) marginal[j]! += probs[i * k + j]! / (hi - lo);
    let kl = 0;
    for (let i = lo; i < hi; i++) {
      for (let j = 0; j < k; j++) {
        const p = probs[i * k + j]!;
        if (p > 0) kl += p * (Math.log(p) - Math.log(marginal[j]!));
      }
    }
    scores.push(Math.exp(kl / (hi - lo)));
  }
  const mean = scores.reduce((a, b) => a + b, 0) / splits;
  return { mean, std: Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / splits) };
}
