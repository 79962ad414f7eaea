/**
 * Classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", eq. 6; for
 * image tokens as in LlamaGen, Sun et al. 2024, and MaskGIT's successor Muse, Chang et al. 2023):
 * the logits of the conditional and the unconditional prompt are mixed as ℓ_u + s·(ℓ_c − ℓ_u),
 * s = 1 being the conditional model itself. A schedule may vary s over the decoding steps:
 * "linear" grows it from 1 at the first step to `scale` at the last, as VAR's reference sampler
 * does over its scales (ratio = k / (K − 1)), so the coarse first steps, which fix the layout, are
 * not over-sharpened.
 */
export type GuidanceSchedule = "constant" | "linear";
export const GUIDANCE_SCHEDULES: readonly GuidanceSchedule[] = ["constant", "linear"];

export type Guidance = {
  /** one unconditional prompt per prompt, of the same length (e.g. the caption-free `<bos> <pad>… <boi>`) */
  readonly prompts: readonly (readonly number[])[];
  /** s; 1 = the conditional model */
  readonly scale: number;
  /** default "constant" */
  readonly schedule?: GuidanceSchedule;
};

/** Throws, naming the field, the value and what is allowed, unless `g` is valid for `prompts` prompts. */
export function checkGuidance(g: Guidance, prompts: number, where = "guidance"): void {
  if (typeof g.scale !== "number" || !Number.isFinite(g.scale)) throw new Error(`${where}.scale: expected a finite number (1 = off), got ${JSON.stringify(g.scale)}`);
  if (g.schedule !== undefined && !GUIDANCE_SCHEDULES.includes(g.schedule)) throw new Error(`${where}.schedule: expected one of ${GUIDANCE_SCHEDULES.join(", ")}, got ${JSON.stringify(g.schedule)}`);
  if (g.prompts.length !== prompts) throw new Error(`${where}.prompts has ${g.prompts.length} prompts, expected one per prompt (${prompts})`);
}

/** s at step k of K. */
export function guidanceScale(scale: number, schedule: GuidanceSchedule | undefined, step: number, steps: number): number {
  if (schedule !== "linear") return scale;
  return 1 + (scale - 1) * (steps <= 1 ? 1 : step / (steps - 1));
}

/** cond ← uncond + s·(cond − uncond), elementwise (both [rows·V]). */
export function mixGuidance(cond: Float32Array, uncond: Float32Array, s: number): void {
  for (let i = 0; i < cond.length; i++) cond[i] = uncond[i]! + s * (cond[i]! - uncond[i]!);
}
