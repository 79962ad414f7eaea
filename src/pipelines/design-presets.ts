/**
 * The names of the continuous-token designs' presets (design-run.ts) and what each run can do,
 * without loading the engine: the CLI checks a preset or a run's kind before it starts anything.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../io/errors.ts";

export const DESIGN_PRESETS = ["llava-mnist", "mar-mnist", "transfusion-mnist"] as const;
export type DesignPreset = (typeof DESIGN_PRESETS)[number];
/** The presets whose runs caption images, and those whose runs draw images from captions. */
export const CAPTIONING_PRESETS: readonly DesignPreset[] = ["llava-mnist", "transfusion-mnist"];
export const GENERATING_PRESETS: readonly DesignPreset[] = ["mar-mnist", "transfusion-mnist"];

/** Throws (InputError) unless `name` is a preset, naming the valid ones. */
export function checkPreset(name: string): asserts name is DesignPreset {
  if (!(DESIGN_PRESETS as readonly string[]).includes(name)) throw new InputError(`unknown preset ${JSON.stringify(name)}; expected one of: ${DESIGN_PRESETS.join(", ")}`, { field: "preset", value: name, expected: DESIGN_PRESETS.join(", ") });
}

/** Whether `dir` holds a design run (its design.json), as opposed to another kind of run. */
export const isDesignRun = (dir: string): boolean => existsSync(join(dir, "design.json"));
