/**
 * Next-scale decoding of a VAR model (Tian et al. 2024, §3.2, Alg. 2; layout in
 * backbone/orders/next-scale.ts): step k predicts every token of the s_k × s_k map at once, each
 * drawn independently, from the prompt and all coarser maps; S passes per image.
 */
import { scaleOffsets } from "../tokenizers/quantizers/multiscale.ts";
import { nextScaleInput, scaleQuery } from "../backbone/orders/next-scale.ts";
import type { Schedule } from "./schedule.ts";

/** scales: checked against the image's tokens by the caller (`checkScales`). */
export function nextScaleSchedule(scales: readonly number[], promptLength: number): Schedule {
  const offs = scaleOffsets(scales);
  return {
    name: "next-scale",
    steps: scales.length,
    targets: (step) => Int32Array.from({ length: offs[step + 1]! - offs[step]! }, (_, j) => offs[step]! + j),
    input: (step, _row, prompt, image) => nextScaleInput(prompt, image, scales, step + 1),
    query: (step) => scaleQuery(promptLength, scales, step),
  };
}
