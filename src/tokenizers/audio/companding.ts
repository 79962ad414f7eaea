/**
 * μ-law and A-law companding: waveform samples in [−1, 1] ↔ 8-bit codes (0 .. 255), the
 * classic waveform tokenizer (WaveNet, van den Oord et al. 2016, §2.2, used μ-law codes as its
 * 256-way softmax targets). Compression spends the codes on small amplitudes, where speech
 * lives, so 8 bits keep what 13–14 linear bits would.
 *
 * μ-law (ITU-T G.711 curve, as torchaudio's mu_law_encoding): F(x) = sign(x)·ln(1 + μ|x|)/ln(1 + μ), μ = 255.
 * A-law (G.711's other curve, A = 87.6):
 *   F(x) = sign(x)·A|x|/(1 + ln A)             for |x| < 1/A,
 *          sign(x)·(1 + ln(A|x|))/(1 + ln A)   otherwise.
 * Both map F(x) ∈ [−1, 1] to the code ⌊(F + 1)/2·(Q − 1) + 0.5⌋, Q = 2^bits (torchaudio's
 * rounding), and decode a code by the inverse curve. This is the continuous law quantized
 * uniformly, not G.711's byte format (segments and inverted bits), which telephony files use.
 *
 * Host-side, in float64: companding is elementwise and cheap, and the codes must not depend on
 * the engine's float32 log (reference/audio_features.py is the oracle). Browser-safe.
 */
export type CompandingLaw = "mu-law" | "a-law";

const A = 87.6;
const LN_A1 = 1 + Math.log(A);

function checkBits(bits: number): number {
  if (!Number.isInteger(bits) || bits < 2 || bits > 16) throw new Error(`companding: bits must be an integer in [2, 16], got ${bits}`);
  return 2 ** bits;
}

/** F(x) of `law`, x clipped to [−1, 1]. */
function compress(law: CompandingLaw, x: number, q: number): number {
  const ax = Math.min(1, Math.abs(x));
  if (law === "mu-law") return (Math.sign(x) * Math.log1p((q - 1) * ax)) / Math.log1p(q - 1);
  return Math.sign(x) * (ax < 1 / A ? (A * ax) / LN_A1 : (1 + Math.log(A * ax)) / LN_A1);
}

/** F⁻¹(y) of `law`. */
function expand(law: CompandingLaw, y: number, q: number): number {
  const ay = Math.abs(y);
  if (law === "mu-law") return (Math.sign(y) * Math.expm1(ay * Math.log1p(q - 1))) / (q - 1);
  return Math.sign(y) * (ay < 1 / LN_A1 ? (ay * LN_A1) / A : Math.exp(ay * LN_A1 - 1) / A);
}

/** Samples (NaN refused; clipped to [−1, 1]) → codes in [0, 2^bits − 1]. */
export function compand(law: CompandingLaw, samples: ArrayLike<number>, bits = 8): Int32Array {
  const q = checkBits(bits);
  const out = new Int32Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i]!;
    if (Number.isNaN(x)) throw new Error(`companding: sample ${i} is NaN`);
    out[i] = Math.floor(((compress(law, x, q) + 1) / 2) * (q - 1) + 0.5);
  }
  return out;
}

/** Codes in [0, 2^bits − 1] → samples in [−1, 1]. */
export function expandCodes(law: CompandingLaw, codes: ArrayLike<number>, bits = 8): Float32Array {
  const q = checkBits(bits);
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= q) throw new Error(`companding: code ${c} at position ${i} is not an integer in [0, ${q - 1}]`);
    out[i] = expand(law, (c / (q - 1)) * 2 - 1, q);
  }
  return out;
}
