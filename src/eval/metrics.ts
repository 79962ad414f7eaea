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
