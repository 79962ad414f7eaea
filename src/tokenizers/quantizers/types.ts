import type { Array } from "../../engine/index.ts";

/**
 * What every quantizer returns (the shared API of `quantizers/*`).
 * codes: [..., D] quantized vectors with straight-through gradients to the input;
 * indices: [...] int32 token ids; losses: named scalar auxiliary losses; stats: named scalars.
 */
export type QuantizeResult = {
  codes: Array;
  indices: Array;
  losses: Record<string, Array>;
  stats: Record<string, Array>;
};
