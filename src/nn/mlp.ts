import { nn, type Array } from "../engine/index.ts";
import { gelu } from "./lean.ts";
import type { KeyStream } from "../engine/rng.ts";
import { initLinear, linear, type LinearParams } from "./linear.ts";

export type MlpKind = "gelu" | "swiglu";
export type MlpParams = { up: LinearParams; gate?: LinearParams; down: LinearParams };

/** Transformer feed-forward block; `residStd` scales the output projection (GPT-2's 1/sqrt(2L)). */
export function initMlp(keys: KeyStream, dim: number, hidden: number, kind: MlpKind, residStd?: number): MlpParams {
  const up = initLinear(keys, dim, hidden);
  const down = initLinear(keys, hidden, dim, residStd === undefined ? {} : { std: residStd / Math.sqrt(hidden) });
  return kind === "swiglu" ? { up, gate: initLinear(keys, dim, hidden), down } : { up, down };
}

/**
 * x: [..., D] → [..., D].
 * GELU: down(gelu(up x)); SwiGLU (Shazeer 2020): down(silu(gate x) ⊙ up x).
 */
export function mlp(p: MlpParams, x: Array): Array {
  if (p.gate) {
    const h = nn.silu(linear(p.gate, x.ref)).mul(linear(p.up, x));
    return linear(p.down, h);
  }
  return linear(p.down, gelu(linear(p.up, x)));
}
