import { np, type Array } from "../engine/index.ts";

/**
 * Rotary position embedding (Su et al. 2021, RoFormer), "rotate half" layout as in
 * GPT-NeoX/LLaMA. x: [B, T, ..., Dh] (usually [B, T, H, Dh]), positions: [T] → same shape as x.
 *
 * Written as x·[cos, cos] + [x₂, x₁]·[−sin, sin], one elementwise kernel under `jit`; the same
 * values, bit for bit, as the two half rotations x₁cos − x₂sin and x₁sin + x₂cos concatenated.
 */
export function rope(x: Array, positions: Array, base = 10000): Array {
  const dh = x.shape[x.ndim - 1];
  if (dh % 2 !== 0) throw new Error(`rope: head dim must be even, got ${dh}`);
  if (x.ndim < 3 || positions.ndim !== 1 || positions.shape[0] !== x.shape[1]) {
    throw new Error(`rope: expected x [B, T, ..., Dh] and positions [T], got x [${x.shape.join(", ")}] and positions [${positions.shape.join(", ")}]`);
  }
  const half = dh / 2;
  const lead = x.shape.slice(2, -1).map(() => 1); // broadcast over the axes between T and Dh
  const invFreq = np.exp(np.arange(half).astype(x.dtype).mul(-Math.log(base) / half)); // [Dh/2]
  const angles = positions.astype(x.dtype).reshape([-1, ...lead, 1]).mul(invFreq); // [T, 1…, Dh/2]
  const cos = np.cos(angles.ref);
  const sin = np.sin(angles);
  const cosFull = np.concatenate([cos.ref, cos], -1); // [T, 1…, Dh]
  const sinSigned = np.concatenate([np.negative(sin.ref), sin], -1);
  const all = x.shape.slice(0, -1).map((): [] => []);
  const rotated = np.concatenate([x.ref.slice(...all, [half, dh]), x.ref.slice(...all, [0, half])], -1); // [x₂, x₁]
  return x.mul(cosFull).add(rotated.mul(sinSigned));
}
