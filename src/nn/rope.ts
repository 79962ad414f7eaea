import { np, type Array } from "../engine/index.ts";
import { fmt } from "./shapes.ts";

/**
 * Rotary position embeddings, "rotate half" layout as in GPT-NeoX/LLaMA.
 *
 * 1-D (Su et al. 2021, RoFormer): x: [B, T, ..., Dh], position p, θᵢ = base^(−i/(Dh/2)),
 * i < Dh/2; with x = [x₁, x₂] (halves of Dh),
 *   rope(x) = [x₁cos pθ − x₂sin pθ, x₁sin pθ + x₂cos pθ].
 *
 * 2-D, axial (Heo et al. 2024, "Rotary Position Embedding for Vision Transformer", RoPE-Axial):
 * a token at grid point (r, c) has its first Dh/2 channels rotated as a Dh/2-dim 1-D rope at
 * position r, its last Dh/2 as one at position c: with x = [x₁, x₂, x₃, x₄] (quarters of Dh) and
 * θᵢ = base^(−i/(Dh/4)), i < Dh/4,
 *   rope2d(x) = [x₁cos rθ − x₂sin rθ, x₁sin rθ + x₂cos rθ, x₃cos cθ − x₄sin cθ, x₃sin cθ + x₄cos cθ].
 * So ⟨rope2d(q, g), rope2d(k, g′)⟩ depends on the grid points only through g − g′. Text tokens in
 * the same sequence carry (t, t), as in Qwen2-VL's M-RoPE: for them the dot product depends only
 * on t − t′, although with Dh/4 frequencies, each used twice, not `rope`'s Dh/2. (Heo et al.
 * use base 100 for ViTs; the default here is `rope`'s 10000.)
 *
 * Both are written as x·[cos…] + [x₂, x₁, …]·[−sin, sin, …], one elementwise kernel under `jit`;
 * the same values, bit for bit, as the half rotations above concatenated.
 */

/** positions: [T] or [B, T], θ: [Dh/2k] → angles pθ: [T, 1…, Dh/2k] or [B, T, 1…, Dh/2k] (`lead` 1s). */
function angles(positions: Array, invFreq: Array, lead: number[], dtype: Array["dtype"]): Array {
  const shape = positions.ndim === 1 ? [-1] : positions.shape;
  return positions.astype(dtype).reshape([...shape, ...lead, 1]).mul(invFreq);
}

/** θᵢ = base^(−i/n), i < n: the frequencies of a 2n-dim rope. */
function inverseFrequencies(n: number, base: number, dtype: Array["dtype"]): Array {
  return np.exp(np.arange(n).astype(dtype).mul(-Math.log(base) / n));
}

/**
 * x: [B, T, ..., Dh], blocks: k angle arrays, each broadcastable to [B, T, ..., Dh/2k] → x with
 * channel block j (width Dh/k) rotated, in rotate-half layout, by blocks[j].
 */
function rotate(x: Array, blocks: Array[]): Array {
  const dh = x.shape[x.ndim - 1];
  const w = dh / (2 * blocks.length); // width of one rotated half
  const all = x.shape.slice(0, -1).map((): [] => []);
  const trig = blocks.map((a) => [np.cos(a.ref), np.sin(a)]);
  const cos = np.concatenate(trig.flatMap(([c]) => [c.ref, c]), -1); // [.., Dh]
  const sinSigned = np.concatenate(trig.flatMap(([, s]) => [np.negative(s.ref), s]), -1);
  const halves = (at: number) => [x.ref.slice(...all, [at + w, at + 2 * w]), x.ref.slice(...all, [at, at + w])]; // [x₂, x₁]
  const swapped = np.concatenate(blocks.flatMap((_, j) => halves(2 * j * w)), -1);
  return x.mul(cos).add(swapped.mul(sinSigned));
}

/**
 * 1-D rope. x: [B, T, ..., Dh] (usually [B, T, H, Dh]), positions: [T] (shared by the batch) or
 * [B, T] (per example) → same shape as x. Consumes x and positions.
 */
export function rope(x: Array, positions: Array, base = 10000): Array {
  const dh = x.shape[x.ndim - 1];
  if (dh % 2 !== 0) throw new Error(`rope: head dim must be even, got ${dh}`);
  const perExample = positions.ndim === 2;
  const ok = x.ndim >= 3 && (perExample ? positions.shape[0] === x.shape[0] && positions.shape[1] === x.shape[1] : positions.ndim === 1 && positions.shape[0] === x.shape[1]);
  if (!ok) {
    const want = perExample ? "[B, T]" : positions.ndim === 1 ? "[T]" : "[T] or [B, T]";
    throw new Error(`rope: expected x [B, T, ..., Dh] and positions ${want}, got x ${fmt(x.shape)} and positions ${fmt(positions.shape)}`);
  }
  const lead = x.shape.slice(2, -1).map(() => 1); // broadcast over the axes between T and Dh
  const invFreq = inverseFrequencies(dh / 2, base, x.dtype); // [Dh/2]
  return rotate(x, [angles(positions, invFreq, lead, x.dtype)]);
}

/**
 * 2-D axial rope for image tokens. x: [B, T, ..., Dh] with Dh divisible by 4, grid: [T, 2] (shared
 * by the batch) or [B, T, 2] (per example) int32 of (row, column) ids; text tokens carry (t, t)
 * → same shape as x. Consumes x and grid.
 */
export function rope2d(x: Array, grid: Array, base = 10000): Array {
  const dh = x.shape[x.ndim - 1];
  if (dh % 4 !== 0) throw new Error(`rope2d: head dim must be divisible by 4, got ${dh} (x ${fmt(x.shape)})`);
  const perExample = grid.ndim === 3;
  const ok =
    x.ndim >= 3 &&
    grid.shape[grid.ndim - 1] === 2 &&
    (perExample ? grid.shape[0] === x.shape[0] && grid.shape[1] === x.shape[1] : grid.ndim === 2 && grid.shape[0] === x.shape[1]);
  if (!ok) {
    const want = perExample ? "[B, T, 2]" : grid.ndim === 2 ? "[T, 2]" : "[T, 2] or [B, T, 2]";
    throw new Error(`rope2d: expected x [B, T, ..., Dh] and grid ${want}, got x ${fmt(x.shape)} and grid ${fmt(grid.shape)}`);
  }
  const lead = x.shape.slice(2, -1).map(() => 1);
  const invFreq = inverseFrequencies(dh / 4, base, x.dtype); // [Dh/4]
  const ids = (axis: number) => (perExample ? grid.ref.slice([], [], axis) : grid.ref.slice([], axis)); // [B, T] or [T]
  const rows = angles(ids(0), invFreq.ref, lead, x.dtype);
  const cols = angles(ids(1), invFreq, lead, x.dtype);
  grid.dispose();
  return rotate(x, [rows, cols]);
}
