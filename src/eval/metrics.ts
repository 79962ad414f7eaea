/** Reconstruction metrics on host images with values in [0, 1]. */

/** Peak signal-to-noise ratio, dB: 10·log₁₀(1 / MSE) over every value of `a` and `b`. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length || a.length === 0) throw new Error(`psnr: expected two non-empty arrays of equal length, got ${a.length} and ${b.length}`);
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i]! - b[i]!) ** 2;
  return 10 * Math.log10(1 / (se / a.length));
}

/** Share of `predicted` equal to `labels` (same length). */
export function accuracy(predicted: ArrayLike<number | null>, labels: ArrayLike<number>): number {
  if (predicted.length !== labels.length || labels.length === 0) throw new Error(`accuracy: expected two non-empty arrays of equal length, got ${predicted.length} and ${labels.length}`);
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) hits++;
  return hits / labels.length;
}
