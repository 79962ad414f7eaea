import { np, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { fanIn, zeros } from "./init.ts";
import { expectLastDim } from "./shapes.ts";

export type LinearParams = { w: Array; b?: Array };

/** w: [Din, Dout] ~ N(0, 1/Din), b: [Dout] = 0. */
export function initLinear(keys: KeyStream, din: number, dout: number, { bias = true, std }: { bias?: boolean; std?: number } = {}): LinearParams {
  const w = std === undefined ? fanIn(keys, [din, dout], din) : fanIn(keys, [din, dout], 1, std);
  return bias ? { w, b: zeros([dout]) } : { w };
}

/** x: [..., Din] → [..., Dout]. Consumes `p` and `x`. */
export function linear(p: LinearParams, x: Array): Array {
  expectLastDim(x, p.w.shape[0], "linear");
  const y = np.matmul(x, p.w);
  return p.b ? y.add(p.b) : y;
}
