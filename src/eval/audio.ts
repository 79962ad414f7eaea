/**
 * Audio reconstruction metrics, on the host in float64.
 *
 * SI-SNR (scale-invariant signal-to-noise ratio; Le Roux et al. 2019, "SDR — half-baked or well
 * done?"), in dB: both signals made zero-mean, the estimate ŝ projected on the reference s,
 *   s_t = (⟨ŝ, s⟩ / ‖s‖²)·s,  e = ŝ − s_t,  SI-SNR = 10·log10(‖s_t‖² / ‖e‖²).
 * A gain on the estimate leaves it unchanged; an estimate of silence scores −∞ (returned as
 * −100 dB, so that means stay finite). The codec literature (SoundStream, EnCodec) reports it.
 */
export function siSnr(reference: ArrayLike<number>, estimate: ArrayLike<number>): number {
  const n = reference.length;
  if (n === 0 || estimate.length !== n) throw new Error(`siSnr: expected two signals of the same positive length, got ${n} and ${estimate.length}`);
  let ms = 0;
  let me = 0;
  for (let i = 0; i < n; i++) (ms += reference[i]!), (me += estimate[i]!);
  ms /= n;
  me /= n;
  let dot = 0;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const s = reference[i]! - ms;
    dot += (estimate[i]! - me) * s;
    ss += s * s;
  }
  if (ss === 0) throw new Error("siSnr: the reference is silent (constant), so no ratio is defined");
  const alpha = dot / ss;
  let target = 0;
  let noise = 0;
  for (let i = 0; i < n; i++) {
    const t = alpha * (reference[i]! - ms);
    target += t * t;
    noise += (estimate[i]! - me - t) ** 2;
  }
  if (target === 0) return -100;
  if (noise === 0) return 100;
  return Math.max(-100, Math.min(100, 10 * Math.log10(target / noise)));
}

/** Mean |a − b| of two equally long arrays (e.g. two log-mel spectrograms). */
export function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length || a.length === 0) throw new Error(`meanAbsDiff: expected two arrays of the same positive length, got ${a.length} and ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}
