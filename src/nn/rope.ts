import { np, type Array } from "../engine/index.ts";

/**
 * Rotary position embedding (Su et al. 2021, RoFormer), "rotate half" layout as in
 * GPT-NeoX/LLaMA. x: [B, T, H, Dh], positions: [T] (float) → [B, T, H, Dh].
 */
export function rope(x: Array, positions: Array, base = 10000): Array {
  const dh = x.shape[3];
  if (dh % 2 !== 0) throw new Error(`rope: head dim must be even, got ${dh}`);
  const half = dh / 2;
  const invFreq = np.exp(np.arange(half).astype(x.dtype).mul(-Math.log(base) / half)); // [Dh/2]
  const angles = positions.astype(x.dtype).reshape([-1, 1, 1]).mul(invFreq); // [T, 1, Dh/2]
  const cos = np.cos(angles.ref);
  const sin = np.sin(angles);
  const x1 = x.ref.slice([], [], [], [0, half]);
  const x2 = x.slice([], [], [], [half, dh]);
  const r1 = x1.ref.mul(cos.ref).sub(x2.ref.mul(sin.ref));
  const r2 = x1.mul(sin).add(x2.mul(cos));
  return np.concatenate([r1, r2], -1);
}
