import { lax, np, type Array } from "../../engine/index.ts";
import { expectLastDim } from "../../nn/shapes.ts";
import { checkDeviceIds, checkQuantizerInput } from "./checks.ts";
import type { QuantizeResult } from "./types.ts";

/**
 * Embedding-free binary quantization in the style of MaskBit (Weber et al. 2024, "MaskBit:
 * Embedding-free Image Generation via Bit Tokens"). The latent's D channels are quantized to their
 * signs and the resulting bits ARE the tokens: no learned embedding table on either side. Following
 * MaskBit's generator (`codebook_splits`), the D bits are cut into G = D / b contiguous groups of
 * b = bitsPerToken bits; each group is one token id in [0, 2^b), so a latent vector becomes G tokens:
 * x [..., D] → indices [..., G] (the "[..., groups]" case of the quantizer API).
 * A downstream model reads tokens back as ±bits (`indicesToCodes`), as MaskBit's LFQBert does.
 */
export type BinaryOptions = {
  /** D, the number of latent channels (= bits per latent vector). */
  readonly dim: number;
  /** b, bits per token; must divide D. MaskBit's 12-bit tokenizer uses 2 groups of 6. */
  readonly bitsPerToken: number;
  /**
   * Code magnitude: "unit" gives codes ±1 (MaskBit's codebook {−1, 1}^D); "sphere" gives ±1/√D,
   * so every code has unit norm (the binary spherical codes of BSQ, Zhao et al. 2024).
   */
  readonly scale: "unit" | "sphere";
  /** β, the commitment-loss weight (MaskBit: 0.25). */
  readonly commitmentWeight: number;
};

export const DEFAULT_BINARY: BinaryOptions = { dim: 12, bitsPerToken: 6, scale: "unit", commitmentWeight: 0.25 };

/** Binary quantization has no trainable parameters; pass `{}`. */
export type BinaryParams = Readonly<Record<string, never>>;

/** Token ids are int32, so at most 30 bits per token. */
const MAX_BITS_PER_TOKEN = 30;

type Layout = { dim: number; bits: number; groups: number; magnitude: number };

function layout(opts: Pick<BinaryOptions, "dim" | "bitsPerToken" | "scale">, what: string): Layout {
  const { dim, bitsPerToken: bits } = opts;
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${what}: dim must be a positive integer, got ${dim}`);
  if (!Number.isInteger(bits) || bits < 1 || bits > MAX_BITS_PER_TOKEN) {
    throw new Error(`${what}: bitsPerToken must be an integer in [1, ${MAX_BITS_PER_TOKEN}], got ${bits}`);
  }
  if (dim % bits !== 0) throw new Error(`${what}: bitsPerToken = ${bits} does not divide dim = ${dim}`);
  if (opts.scale !== "unit" && opts.scale !== "sphere") throw new Error(`${what}: scale must be "unit" or "sphere", got ${String(opts.scale)}`);
  return { dim, bits, groups: dim / bits, magnitude: opts.scale === "unit" ? 1 : 1 / Math.sqrt(dim) };
}

/** Ids per token: 2^bitsPerToken. */
export function codebookSize(opts: Pick<BinaryOptions, "bitsPerToken"> = DEFAULT_BINARY): number {
  return 2 ** opts.bitsPerToken;
}

/** Number of tokens per latent vector, G = D / bitsPerToken. */
export function tokensPerVector(opts: Pick<BinaryOptions, "dim" | "bitsPerToken"> = DEFAULT_BINARY): number {
  return layout({ ...opts, scale: "unit" }, "binary.tokensPerVector").groups;
}

/** [0, 1, …, b − 1]: bit j of a group has weight 2^j (least significant first, as MaskBit's `bits_to_indices`). */
function bitPositions(bits: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < bits; j++) out.push(j);
  return out;
}

/**
 * x: [..., D] → codes [..., D] ∈ {−m, m} with m = 1 ("unit") or 1/√D ("sphere"),
 * codes = q + x − sg(x) (straight-through; x = 0 maps to −m), indices [..., G] int32 with
 * id_g = Σ_j [x_{g·b+j} > 0]·2^j. losses.commitment = β·mean((x − sg(q))²);
 * stats.positiveFraction = fraction of +1 bits (0.5 is balanced; near 0 or 1 flags dead bits).
 * Consumes x.
 */
export function quantize(_params: BinaryParams, x: Array, opts: BinaryOptions = DEFAULT_BINARY): QuantizeResult {
  const l = layout(opts, "binary.quantize");
  if (!Number.isFinite(opts.commitmentWeight)) throw new Error(`binary.quantize: commitmentWeight must be a finite number, got ${opts.commitmentWeight}`);
  checkQuantizerInput(x, l.dim, "binary.quantize");
  const lead = x.shape.slice(0, -1);
  const dtype = x.dtype;
  const positive = np.greater(lax.stopGradient(x.ref), 0); // [..., D] bool
  const quantized = positive.ref.astype(dtype).mul(2 * l.magnitude).sub(l.magnitude);
  const weights = np.array(bitPositions(l.bits).map((j) => 2 ** j), { dtype: np.int32 });
  const indices = positive.ref.astype(np.int32).reshape([...lead, l.groups, l.bits]).mul(weights).sum(-1); // [..., G]
  const positiveFraction = positive.astype(dtype).mean();
  const commitment = np.square(x.ref.sub(quantized.ref)).mean().mul(opts.commitmentWeight);
  // Straight-through as q + (x − sg(x)): forward value exactly q, gradient the identity.
  const codes = quantized.add(x.ref.sub(lax.stopGradient(x)));
  return { codes, indices, losses: { commitment }, stats: { positiveFraction } };
}

/**
 * indices: [..., G] int32 in [0, 2^b) → codes [..., D] float32 ∈ {−m, m}: bit j of token g becomes
 * channel g·b + j. Consumes indices.
 */
export function indicesToCodes(
  _params: BinaryParams,
  indices: Array,
  opts: Pick<BinaryOptions, "dim" | "bitsPerToken" | "scale"> = DEFAULT_BINARY,
): Array {
  const l = layout(opts, "binary.indicesToCodes");
  if (indices.dtype !== np.int32) throw new Error(`binary.indicesToCodes: expected int32 ids, got ${indices.dtype}`);
  expectLastDim(indices, l.groups, "binary.indicesToCodes");
  checkDeviceIds(indices, 2 ** l.bits, "binary.indicesToCodes");
  const lead = indices.shape.slice(0, -1);
  const shifts = np.array(bitPositions(l.bits), { dtype: np.int32 });
  const bits = np.bitwiseAnd(np.rightShift(np.expandDims(indices, -1), shifts), np.array([1], { dtype: np.int32 })); // [..., G, b]
  return bits.astype(np.float32).mul(2 * l.magnitude).sub(l.magnitude).reshape([...lead, l.dim]);
}

