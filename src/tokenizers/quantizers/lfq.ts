import { lax, nn, np, type Array, type DType } from "../../engine/index.ts";
import { checkDeviceIds, checkQuantizerInput } from "./checks.ts";
import { entropy } from "./entropy.ts";
import type { QuantizeResult } from "./types.ts";

/**
 * Lookup-Free Quantization of MAGVIT-2 (Yu et al. 2023, "Language Model Beats Diffusion", §3.1).
 * Each of the d channels is quantized to its sign, so the codebook is {−1, 1}^d (K = 2^d), implicit
 * and parameter-free. An entropy penalty keeps every code confident (low per-sample entropy) and
 * the batch spread over the codebook (high codebook entropy). Losses follow vector-quantize-pytorch's
 * `LFQ`: distance −2·x·c over the implicit codebook, softmax at an inverse temperature, log clamped
 * at 1e-5 (entropy.ts, which also keeps the log accurate for confident codes, p near 1).
 */
export type LFQOptions = {
  /** d, the bits per token; K = 2^d. */
  readonly dim: number;
  /** Weight of the entropy loss (vq-pytorch and MaskBit: 0.1); 0 skips its O(N·2^d) computation. */
  readonly entropyWeight: number;
  /** γ, the weight of the codebook (batch) entropy inside the entropy loss (vq-pytorch: 1). */
  readonly diversityWeight: number;
  /** β, the commitment-loss weight (vq-pytorch's original LFQ and MaskBit: 0.25). */
  readonly commitmentWeight: number;
  /** 1/τ of the code distribution softmax(2·x·c / τ) (vq-pytorch: 100; MaskBit: τ = 0.01). */
  readonly invTemperature: number;
};

export const DEFAULT_LFQ: LFQOptions = { dim: 10, entropyWeight: 0.1, diversityWeight: 1, commitmentWeight: 0.25, invTemperature: 100 };

/** LFQ has no trainable parameters; pass `{}` (kept so every quantizer is `quantize(params, x, opts)`). */
export type LFQParams = Readonly<Record<string, never>>;

/** Largest d for which the entropy loss materializes the [N, 2^d] code distribution. */
export const MAX_ENTROPY_DIM = 16;

/** Ids are int32, so at most 30 bits (2^30 codes) per token. */
const MAX_DIM = 30;

function checkOptions(opts: LFQOptions, what: string): void {
  const d = opts.dim;
  if (!Number.isInteger(d) || d < 1 || d > MAX_DIM) throw new Error(`${what}: dim must be an integer in [1, ${MAX_DIM}], got ${d}`);
  for (const key of ["entropyWeight", "diversityWeight", "commitmentWeight", "invTemperature"] as const) {
    if (!Number.isFinite(opts[key])) throw new Error(`${what}: ${key} must be a finite number, got ${opts[key]}`);
  }
  if (opts.invTemperature <= 0) throw new Error(`${what}: invTemperature must be > 0, got ${opts.invTemperature}`);
  if (opts.entropyWeight !== 0 && d > MAX_ENTROPY_DIM) {
    throw new Error(
      `${what}: the entropy loss enumerates all 2^dim codes; dim = ${d} is above ${MAX_ENTROPY_DIM}. ` +
        `Use entropyWeight: 0, or a smaller dim`,
    );
  }
}

/** Implicit codebook size K = 2^d. */
export function codebookSize(opts: Pick<LFQOptions, "dim"> = DEFAULT_LFQ): number {
  return 2 ** opts.dim;
}

/**
 * Bit weights 2^(d−1−i): channel 0 is the MOST significant bit, as vector-quantize-pytorch's
 * `mask = 2 ** arange(d − 1, −1, −1)`. (The MAGVIT-2 paper's eq. 4 and MaskBit use the opposite
 * order; ids differ between the conventions, codes do not.)
 */
function bitWeights(d: number): number[] {
  return shifts(d).map((s) => 2 ** s);
}

/** Shift of channel i: d − 1 − i. */
function shifts(d: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < d; i++) out.push(d - 1 - i);
  return out;
}

/** The implicit codebook as a [2^d, d] matrix of ±1; row j holds the bits of j (channel 0 = MSB). */
function implicitCodebook(d: number, dtype: DType): Array {
  const k = 2 ** d;
  const data = dtype === np.float64 ? new Float64Array(k * d) : new Float32Array(k * d);
  for (let j = 0; j < k; j++) for (let i = 0; i < d; i++) data[j * d + i] = (j >> (d - 1 - i)) & 1 ? 1 : -1;
  return np.array(data as Float32Array<ArrayBuffer>, { dtype }).reshape([k, d]);
}

/**
 * Entropy penalty (MAGVIT-2 §3.1): E_x[H(q(c|x))] − γ·H(E_x[q(c|x)]), with
 * q(c|x) = softmax_c(−dist(x, c)·invT) and dist = −2·x·c, which equals ‖x − c‖² up to terms
 * constant in c. Enumerates the codebook: O(N·2^d) time and memory, fine for d ≤ ~12.
 * x: [N, d] → { perSample, codebook } scalars.
 */
function entropyTerms(x: Array, opts: LFQOptions): { perSample: Array; codebook: Array } {
  const codebook = implicitCodebook(opts.dim, x.dtype); // [K, d]
  const logits = np.matmul(x, codebook.transpose([1, 0])).mul(2 * opts.invTemperature); // [N, K]
  const prob = nn.softmax(logits, -1);
  const perSample = entropy(prob.ref).mean();
  const codebookEntropy = entropy(prob.mean(0));
  return { perSample, codebook: codebookEntropy };
}

/**
 * x: [..., d] → codes [..., d] ∈ {−1, 1} (codes = sign(x) + x − sg(x), straight-through; x = 0
 * maps to −1), indices [...] int32, id = Σ_i [x_i > 0]·2^(d−1−i).
 * losses.entropy = entropyWeight·(perSample − γ·codebook entropy) (negative when the batch is spread),
 * losses.commitment = β·mean((x − sg(codes))²); stats.perSampleEntropy / codebookEntropy (no gradient,
 * absent when entropyWeight = 0). Consumes x.
 */
export function quantize(_params: LFQParams, x: Array, opts: LFQOptions = DEFAULT_LFQ): QuantizeResult {
  checkOptions(opts, "lfq.quantize");
  const d = opts.dim;
  checkQuantizerInput(x, d, "lfq.quantize");
  const dtype = x.dtype;
  const positive = np.greater(lax.stopGradient(x.ref), 0); // [..., d] bool
  const quantized = positive.ref.astype(dtype).mul(2).sub(1); // sign(x) ∈ {−1, 1}, eq. 3
  const indices = positive.astype(np.int32).mul(np.array(bitWeights(d), { dtype: np.int32 })).sum(-1);
  const commitment = np.square(x.ref.sub(quantized.ref)).mean().mul(opts.commitmentWeight);
  const stats: Record<string, Array> = {};
  let entropyLoss: Array;
  if (opts.entropyWeight === 0) {
    entropyLoss = np.zeros([], { dtype });
  } else {
    const { perSample, codebook } = entropyTerms(x.ref.reshape([-1, d]), opts);
    stats.perSampleEntropy = lax.stopGradient(perSample.ref);
    stats.codebookEntropy = lax.stopGradient(codebook.ref);
    entropyLoss = perSample.sub(codebook.mul(opts.diversityWeight)).mul(opts.entropyWeight);
  }
  // Straight-through as q + (x − sg(x)): forward value exactly q, gradient the identity.
  const codes = quantized.add(x.ref.sub(lax.stopGradient(x)));
  return { codes, indices, losses: { entropy: entropyLoss, commitment }, stats };
}

/**
 * indices: [...] int32 in [0, 2^d) → codes [..., d] float32 ∈ {−1, 1}, bit (d−1−i) of the id giving
 * channel i. Consumes indices.
 */
export function indicesToCodes(_params: LFQParams, indices: Array, opts: Pick<LFQOptions, "dim"> = DEFAULT_LFQ): Array {
  const d = opts.dim;
  if (!Number.isInteger(d) || d < 1 || d > MAX_DIM) throw new Error(`lfq.indicesToCodes: dim must be an integer in [1, ${MAX_DIM}], got ${d}`);
  if (indices.dtype !== np.int32) throw new Error(`lfq.indicesToCodes: expected int32 ids, got ${indices.dtype}`);
  checkDeviceIds(indices, 2 ** d, "lfq.indicesToCodes");
  const bits = np.bitwiseAnd(np.rightShift(np.expandDims(indices, -1), np.array(shifts(d), { dtype: np.int32 })), np.array([1], { dtype: np.int32 })); // [..., d]
  return bits.astype(np.float32).mul(2).sub(1);
}
