/**
 * `mmntp train --preset NAME`: trains one of the continuous-token designs (pipelines/design-run.ts)
 * on the embedded MNIST digits and writes its run folder, which `mmntp caption` and
 * `mmntp generate` then use. Argument handling and output only, as in main.ts.
 */
import { join } from "node:path";
import { InputError } from "../io/errors.ts";
import { CAPTIONING_PRESETS, checkPreset, DESIGN_PRESETS, GENERATING_PRESETS } from "../pipelines/design-presets.ts";
import { applyOverrides, JSON_OPTION, parseArgs, type ArgSpec } from "./args.ts";

export const TRAIN = {
  usage: "mmntp train",
  description:
    "Trains a design whose image tokens are continuous (no VQ codebook) on the embedded MNIST digits outside\n" +
    "the demo's held-out split, scores it on the held-out digits, and writes the run folder (design.json,\n" +
    "model.safetensors + model.json, tokenizer.json; samples.png for generators).\n\n" +
    "Presets:\n" +
    "  llava-mnist        captions: a CNN encoder's features, projected into the transformer (LLaVA); ~4 min\n" +
    "  mar-mnist          draws digits: 4×4-pixel patch tokens in raster order, a diffusion head per token (MAR)\n" +
    "  transfusion-mnist  both: captions by next-token prediction, images by diffusion in one sequence (Transfusion)\n\n" +
    "e.g.\n" +
    "  mmntp train --preset mar-mnist --set steps=1000\n" +
    '  mmntp generate "a handwritten 7" -o 7.png --run runs/mar-mnist --count 8 --seed 0\n' +
    "  mmntp caption digit.png --run runs/llava-mnist",
  options: [
    { name: "preset", type: "string", required: true, placeholder: DESIGN_PRESETS.join("|"), help: "the design to train" },
    { name: "name", type: "string", help: "run directory under runs/ (default: the preset's name)" },
    { name: "out", short: "o", type: "string", placeholder: "DIR", help: "the run folder to write, instead of runs/NAME" },
    { name: "quick", type: "boolean", help: "a smoke test: 20 training steps, 10 diffusion steps per sample, a small evaluation (metrics will be low)" },
    { name: "set", type: "string", multiple: true, placeholder: "key=value", help: "override a config value by dotted path, e.g. --set steps=1000 --set backbone.layers=2 --set sampling.guidance=2" },
    JSON_OPTION,
  ],
} as const satisfies ArgSpec;

type Print = (json: boolean, value: unknown, text: string) => void;
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Runs `mmntp train …`. */
export async function trainCommand(rest: string[], print: Print, loadEngine: () => Promise<unknown>): Promise<void> {
  const args = parseArgs(rest, TRAIN);
  if (args.kind === "help") return void console.log(args.text);
  const { preset, name, quick } = args.values;
  checkPreset(preset);
  if (name !== undefined && args.values.out !== undefined) throw new InputError("give --name (a folder under runs/) or --out, not both", { field: "out" });
  const out = args.values.out ?? join("runs", name ?? preset);
  const { checkOutputFolder } = await import("../io/checkpoint.ts");
  checkOutputFolder(out);
  await loadEngine();
  const { checkDesignConfig, designDefaults, disposeDesignRun, QUICK_EVALUATION, trainDesignRun } = await import("../pipelines/design-run.ts");
  const cfg = applyOverrides(designDefaults(preset, { quick }), args.values.set);
  checkDesignConfig(preset, cfg);
  const { run, report } = await trainDesignRun(preset, out, { config: cfg, ...(quick && { evaluation: QUICK_EVALUATION }) });
  disposeDesignRun(run);
  const r = report as { caption_accuracy?: number; caption_images?: number; generation_accuracy?: number; generation_accuracy_by_digit?: readonly number[]; judge_accuracy?: number; seconds: number };
  const lines = [
    ...(CAPTIONING_PRESETS.includes(preset) && r.caption_accuracy !== undefined ? [`captions: ${pct(r.caption_accuracy)} of the held-out digits${r.caption_images === undefined ? "" : ` (${r.caption_images})`} name their digit`] : []),
    ...(GENERATING_PRESETS.includes(preset) && r.generation_accuracy !== undefined
      ? [`generated digits: ${pct(r.generation_accuracy)} read as the digit asked for (by digit: ${r.generation_accuracy_by_digit!.map(pct).join(" ")}; the judge reads ${pct(r.judge_accuracy!)} of real held-out digits)`]
      : []),
    `wrote ${out} (design.json, model.safetensors, tokenizer.json${GENERATING_PRESETS.includes(preset) ? ", samples.png" : ""}) in ${r.seconds.toFixed(0)} s`,
  ];
  print(args.values.json, { dir: out, preset, eval: report }, lines.join("\n"));
}
