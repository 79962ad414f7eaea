import { lax, np, type Array, type DType } from "../../engine/index.ts";
import { checkDeviceIds, checkQuantizerInput } from "./checks.ts";
import type { QuantizeResult } from "./types.ts";

/**
 * Finite Scalar Quantization (Mentzer et al. 2023, "FSQ: VQ-VAE Made Simple").
 * Channel i of x is squashed into a bounded range and rounded to one of `levels[i]` values;
 * the codebook is implicit (the grid of all level combinations), so there are no parameters,
 * no codebook or commitment losses, and no collapse. The math follows vector-quantize-pytorch's
 * `FSQ`, a variant of the paper's appendix A.1 code (which shrinks the range by (1 − ε) and shifts
 * with tan; this uses (1 + ε) and atanh).
 */
export type FSQOptions = {
  /** L_i, the number of values of channel i; D = levels.length, K = ∏ L_i (paper: [8, 5, 5, 5] for K ≈ 2^10). */
  readonly levels: readonly number[];
  /** ε in the bound's half-width (L − 1)(1 + ε)/2, which keeps tanh off its asymptotes (paper: 1e-3). */
  readonly boundEps: number;
};

export const DEFAULT_FSQ: FSQOptions = { levels: [8, 5, 5, 5], boundEps: 1e-3 };

/** FSQ has no trainable parameters; pass `{}` (kept so every quantizer is `quantize(params, x, opts)`). */
export type FSQParams = Readonly<Record<string, never>>;

/** Validated per-channel constants of a `levels` list (host numbers). */
type Grid = {
  levels: number[];
  /** ⌊L/2⌋: codes are level offsets divided by this, so they lie in [−1, 1]. */
  halfWidth: number[];
  /** Mixed-radix place values: basis[i] = ∏_{j<i} L_j (channel 0 is the least significant digit). */
  basis: number[];
  size: number;
};

function grid(opts: FSQOptions, what: string): Grid {
  const levels = [...opts.levels];
  if (levels.length === 0 || levels.some((l) => !Number.isInteger(l) || l < 2)) {
    throw new Error(`${what}: levels must be a non-empty list of integers ≥ 2, got [${levels.join(", ")}]`);
  }
  if (!(Number.isFinite(opts.boundEps) && opts.boundEps >= 0)) {
    throw new Error(`${what}: boundEps must be a finite number ≥ 0, got ${opts.boundEps}`);
  }
  const basis: number[] = [];
  let size = 1;
  for (const l of levels) {
    basis.push(size);
    size *= l;
  }
  if (size > 2 ** 31 - 1) throw new Error(`${what}: codebook size ∏ levels = ${size} does not fit int32 ids (max 2^31 − 1)`);
  return { levels, halfWidth: levels.map((l) => Math.floor(l / 2)), basis, size };
}

/** Implicit codebook size K = ∏ L_i. */
export function codebookSize(opts: Pick<FSQOptions, "levels"> = DEFAULT_FSQ): number {
  return grid({ ...DEFAULT_FSQ, ...opts }, "fsq.codebookSize").size;
}

function row(values: number[], dtype: DType): Array {
  return np.array(values, { dtype });
}

/**
 * bound(z) = tanh(z + s)·h − o, per channel, with h = (L − 1)(1 + ε)/2, o = ½ for even L else 0,
 * s = atanh(o / h) (vector-quantize-pytorch; the paper's appendix A.1 has (1 − ε) and tan). For
 * odd L the range is (−h, h), rounding to {−⌊L/2⌋ … ⌊L/2⌋}; for even L the offset makes the range
 * (−h − ½, h − ½), rounding to {−L/2 … L/2 − 1}, i.e. L values.
 * Note: for L = 2 the shift s = atanh(0.999) ≈ 3.8, so the two values split at z ≈ −3.8: the
 * reference bound makes L = 2 nearly constant; prefer L ≥ 3.
 * z: [..., D] → [..., D].
 */
function bound(z: Array, g: Grid, eps: number): Array {
  const dtype = z.dtype;
  const half = g.levels.map((l) => ((l - 1) * (1 + eps)) / 2);
  const offset = g.levels.map((l) => (l % 2 === 0 ? 0.5 : 0));
  const shift = offset.map((o, i) => Math.atanh(o / half[i]));
  return np.tanh(z.add(row(shift, dtype))).mul(row(half, dtype)).sub(row(offset, dtype));
}

/**
 * Codes → ids by the mixed-radix basis: id = Σ_i (ẑ_i·⌊L_i/2⌋ + ⌊L_i/2⌋)·basis_i.
 * codes: [..., D] on the FSQ grid (values in [−1, 1]) → [...] int32. Consumes codes.
 */
export function codesToIndices(codes: Array, opts: Pick<FSQOptions, "levels"> = DEFAULT_FSQ): Array {
  const g = grid({ ...DEFAULT_FSQ, ...opts }, "fsq.codesToIndices");
  checkQuantizerInput(codes, g.levels.length, "fsq.codesToIndices");
  return gridIndices(codes, g);
}

function gridIndices(codes: Array, g: Grid): Array {
  const hw = row(g.halfWidth, codes.dtype);
  // round() absorbs float error in ẑ·⌊L/2⌋ before the integer cast.
  const digits = np.round(codes.mul(hw.ref).add(hw)).astype(np.int32); // [..., D] in [0, L)
  return digits.mul(row(g.basis, np.int32)).sum(-1);
}

/**
 * Ids → codes: digit_i = ⌊id / basis_i⌋ mod L_i, ẑ_i = (digit_i − ⌊L_i/2⌋) / ⌊L_i/2⌋.
 * indices: [...] int32 in [0, K) → [..., D] float32. Consumes indices.
 */
export function indicesToCodes(_params: FSQParams, indices: Array, opts: Pick<FSQOptions, "levels"> = DEFAULT_FSQ): Array {
  const g = grid({ ...DEFAULT_FSQ, ...opts }, "fsq.indicesToCodes");
  if (indices.dtype !== np.int32) throw new Error(`fsq.indicesToCodes: expected int32 ids, got ${indices.dtype}`);
  checkDeviceIds(indices, g.size, "fsq.indicesToCodes");
  const ids = np.expandDims(indices, -1); // [..., 1]
  const digits = np.remainder(np.floorDivide(ids, row(g.basis, np.int32)), row(g.levels, np.int32)); // [..., D]
  const hw = row(g.halfWidth, np.float32);
  return digits.astype(np.float32).sub(hw.ref).div(hw);
}

/**
 * x: [..., D] → codes [..., D] in [−1, 1] (ẑ = round_ste(bound(x)) / ⌊L/2⌋), indices [...] int32.
 * Gradients pass straight through the rounding only: d codes / dx = bound'(x) / ⌊L/2⌋.
 * losses and stats are empty: the implicit grid needs no auxiliary loss (paper §3).
 * Consumes x.
 */
export function quantize(_params: FSQParams, x: Array, opts: FSQOptions = DEFAULT_FSQ): QuantizeResult {
  const g = grid(opts, "fsq.quantize");
  checkQuantizerInput(x, g.levels.length, "fsq.quantize");
  const z = bound(x, g, opts.boundEps);
  // round_ste as round(z) + (z − sg(z)): the value is exactly the rounded grid point (z + sg(round(z) − z)
  // would carry float error into codes), the gradient is the identity.
  const rounded = np.round(lax.stopGradient(z.ref)).add(z.ref.sub(lax.stopGradient(z)));
  const codes = rounded.div(row(g.halfWidth, rounded.dtype));
  const indices = gridIndices(lax.stopGradient(codes.ref), g);
  return { codes, indices, losses: {}, stats: {} };
}
