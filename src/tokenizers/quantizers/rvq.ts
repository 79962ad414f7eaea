import { lax, np, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { normal } from "../../nn/init.ts";
import { fmt } from "../../nn/shapes.ts";
import { checkDeviceIds, checkQuantizerInput } from "./checks.ts";
import type { QuantizeResult } from "./types.ts";
import { checkPositiveInt, l2normalize, nearestCode, straightThrough, vqLosses, type Distance, type VQParams } from "./vq.ts";
import { oneHot } from "../../nn/embedding.ts";

/**
 * Residual vector quantization (SoundStream, Zeghidour et al. 2021, Algorithm 1; EnCodec,
 * Défossez et al. 2022): L levels, each with its own codebook, level i quantizing the residual
 * the previous levels left, r_0 = x, r_{i+1} = r_i − e_i. The code is the sum Σ_i e_i, so the
 * first levels carry the coarse signal and later levels refine it; a prefix of the levels
 * decodes to a coarser approximation.
 */
export type RVQOptions = {
  /** Number of levels L (SoundStream: up to 80; EnCodec: 32). */
  readonly levels: number;
  /** Codes per level K. */
  readonly codebookSize: number;
  /** Input and code dimension D. */
  readonly dim: number;
  /** β, the commitment-loss weight of every level. */
  readonly beta: number;
  /** Per level: "l2", or "cosine" (each residual and codebook l2-normalized, as vq.ts). */
  readonly distance: Distance;
  /**
   * Quantizer dropout (SoundStream §3.3): probability that a training call keeps only the first
   * n levels, n uniform in [minLevels, L], so one model serves every bitrate. 0 = off; 1 = every call.
   * Drawn by `sampleActiveLevels` in the trainer and passed to `quantize` as `activeLevels`.
   */
  readonly dropout: number;
  /** Fewest levels a dropped-out call keeps. */
  readonly minLevels: number;
};

export const DEFAULT_RVQ: Omit<RVQOptions, "levels" | "codebookSize" | "dim"> = { beta: 0.25, distance: "l2", dropout: 0, minLevels: 1 };

/** levels[i].codebook: [K, D]. */
export type RVQParams = { levels: VQParams[] };

export function initRVQ(keys: KeyStream, opts: Pick<RVQOptions, "levels" | "codebookSize" | "dim">): RVQParams {
  checkPositiveInt(opts.levels, "rvq levels");
  // Residuals shrink level by level, so later codebooks start smaller.
  const levels: VQParams[] = [];
  for (let i = 0; i < opts.levels; i++) levels.push({ codebook: normal(keys, [opts.codebookSize, opts.dim], 0.5 ** i / Math.sqrt(opts.dim)) });
  return { levels };
}

/** The number of levels this training call uses: L, or under quantizer dropout a uniform n ∈ [minLevels, L]. */
export function sampleActiveLevels(opts: Pick<RVQOptions, "levels" | "dropout" | "minLevels">, rng: () => number): number {
  checkActiveLevels(opts.minLevels, opts.levels, "rvq minLevels");
  if (!(opts.dropout >= 0 && opts.dropout <= 1)) throw new Error(`rvq dropout must be a probability in [0, 1], got ${opts.dropout}`);
  if (rng() >= opts.dropout) return opts.levels;
  return opts.minLevels + Math.floor(rng() * (opts.levels - opts.minLevels + 1));
}

function checkActiveLevels(n: number, levels: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > levels) throw new Error(`${what}: activeLevels must be an integer in [1, ${levels}], got ${n}`);
}

function checkRVQParams(p: RVQParams, opts: RVQOptions, what: string): void {
  if (p.levels.length !== opts.levels) throw new Error(`${what}: options say ${opts.levels} levels, params have ${p.levels.length}`);
  p.levels.forEach(({ codebook }, i) => {
    const s = codebook.shape;
    if (s.length !== 2 || s[0] !== opts.codebookSize || s[1] !== opts.dim) {
      throw new Error(`${what}: expected levels[${i}].codebook [${opts.codebookSize}, ${opts.dim}], got ${fmt(s)}`);
    }
  });
}

/**
 * x: [..., D] → codes [..., D], indices [..., n] int32 (level i in column i), losses, stats.
 * Only the first n = activeLevels levels run (quantizer dropout); the rest contribute nothing
 * and get no gradient.
 *
 * Gradients: one straight-through over the sum, codes = sg(Σ e_i) + x − sg(x), so d codes / dx = I.
 * (vector-quantize-pytorch's per-level straight-through adds up to L·I; EnCodec fixed this the
 * same way, facebookresearch/encodec#25.) Level i's losses are VQ's on its residual
 * r_i = x − sg(Σ_{j<i} e_j): codebook_i = mean ‖sg(r_i) − e_i‖², commitment_i = β·mean ‖r_i − sg(e_i)‖²;
 * losses.codebook and losses.commitment are their sums over the active levels (SoundStream sums
 * the per-level terms). stats.residual is the mean ‖x − codes‖² left after the last active level.
 *
 * `levelMask` [activeLevels] (float, each 0 or 1, a prefix of ones) does the same as a smaller
 * activeLevels but as data rather than as a shape: a jitted trainer then compiles one step for
 * every bitrate its quantizer dropout draws. Masked levels still pick codes (their ids come back)
 * but add nothing to the codes, the residual or the losses. Consumes params, x and levelMask.
 */
export function quantize(params: RVQParams, x: Array, opts: RVQOptions, activeLevels = opts.levels, levelMask?: Array): QuantizeResult {
  checkRVQParams(params, opts, "rvq.quantize");
  checkActiveLevels(activeLevels, opts.levels, "rvq.quantize");
  checkQuantizerInput(x, opts.dim, "rvq.quantize");
  if (levelMask && (levelMask.ndim !== 1 || levelMask.shape[0] !== activeLevels)) {
    throw new Error(`rvq.quantize: expected levelMask [${activeLevels}], got ${fmt(levelMask.shape)}`);
  }
  const masks = levelMask ? (activeLevels === 1 ? [levelMask] : np.split(levelMask, activeLevels, 0)) : [];
  const lead = x.shape.slice(0, -1);
  const flat = x.reshape([-1, opts.dim]); // [N, D]
  let residual = flat.ref;
  let sum: Array | undefined; // Σ sg(e_i), [N, D]
  let codebookLoss: Array | undefined;
  let commitment: Array | undefined;
  const ids: Array[] = [];
  params.levels.forEach(({ codebook }, i) => {
    if (i >= activeLevels) return codebook.dispose();
    const found = nearestCode(codebook, residual.ref, opts.distance);
    const m = masks[i]?.reshape([]); // this level on (1) or off (0)
    const l = vqLosses(found.z, found.e.ref, opts.beta);
    const e = m ? found.e.mul(m.ref) : found.e;
    const [cb, cm] = m ? [l.codebook.mul(m.ref), l.commitment.mul(m)] : [l.codebook, l.commitment];
    codebookLoss = codebookLoss ? codebookLoss.add(cb) : cb;
    commitment = commitment ? commitment.add(cm) : cm;
    const indices = found.indices;
    const eSg = lax.stopGradient(e);
    residual = residual.sub(eSg.ref); // r_{i+1} = r_i − sg(e_i)
    sum = sum ? sum.add(eSg) : eSg;
    ids.push(indices);
  });
  const codes = straightThrough(flat, sum!); // value Σ e_i, d codes / dx = I
  const left = np.square(lax.stopGradient(residual)).mean();
  return {
    codes: codes.reshape([...lead, opts.dim]),
    indices: np.stack(ids, -1).reshape([...lead, activeLevels]),
    losses: { codebook: codebookLoss!, commitment: commitment! },
    stats: { residual: left },
  };
}

/**
 * Coarse-to-fine decode. indices: [..., L'] int32 with 1 ≤ L' ≤ L (the first L' levels) →
 * codes [..., D] = Σ_{i<L'} e_i, the values `quantize` returned with activeLevels = L'.
 * Ids are range-checked when concrete. Consumes params and indices.
 */
export function indicesToCodes(params: RVQParams, indices: Array, opts: Pick<RVQOptions, "distance">): Array {
  const levels = params.levels.length;
  const used = indices.shape[indices.ndim - 1];
  if (indices.ndim < 1 || !(used >= 1 && used <= levels)) {
    throw new Error(`rvq.indicesToCodes: expected indices [..., L'] with 1 ≤ L' ≤ ${levels} levels, got ${fmt(indices.shape)}`);
  }
  const [k, d] = params.levels[0].codebook.shape;
  checkDeviceIds(indices, k, "rvq.indicesToCodes");
  const lead = indices.shape.slice(0, -1);
  const onehot = oneHot(indices.reshape([-1, used]), k, np.float32); // [N, L', K]
  const columns = used === 1 ? [onehot] : np.split(onehot, used, 1); // L' × [N, 1, K]
  let codes: Array | undefined;
  params.levels.forEach(({ codebook }, i) => {
    if (i >= used) return codebook.dispose();
    const c = opts.distance === "cosine" ? l2normalize(codebook) : codebook;
    const e = np.matmul(columns[i].reshape([-1, k]).astype(c.dtype), c); // [N, D]
    codes = codes ? codes.add(e) : e;
  });
  return codes!.reshape([...lead, d]);
}
