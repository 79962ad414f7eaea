/**
 * `mmntp caption` and `mmntp generate`: use a saved run, the demo's (pipelines/use-run.ts) or a
 * design run of `mmntp train --preset` (pipelines/use-design.ts, when the folder holds design.json).
 * Argument handling and output only, as in main.ts.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../io/errors.ts";
import { ORDER_NAMES, type OrderName } from "../backbone/orders/training.ts";
import { GUIDANCE_SCHEDULES, type GuidanceSchedule } from "../generate/guidance.ts";
import { isDesignRun } from "../pipelines/design-presets.ts";
import { JSON_OPTION, parseArgs, type ArgSpec } from "./args.ts";

const RUN_OPTION = { name: "run", type: "string", default: join("runs", "demo"), help: "a run written by `mmntp demo`, `mmntp train --preset NAME` or `mmntp experiment orders`" } as const;

/** The demo's defaults of the options a design run takes from its own config. */
const DEMO_TEMPERATURE = 0.8;
const DEMO_GUIDANCE = 3;

export const CAPTION = {
  usage: "mmntp caption",
  description:
    "Prints a caption for each PNG (one line per file: path, a tab, the caption), using a saved run: the demo's,\n" +
    "or one of `mmntp train --preset llava-mnist` or `--preset transfusion-mnist`. A folder stands for the PNG files in it.",
  positionals: [{ name: "images", help: "PNG files or folders of PNG files, of the run's image size (28×28 for the demo)", rest: true }],
  options: [RUN_OPTION, JSON_OPTION],
} as const satisfies ArgSpec;

export const GENERATE = {
  usage: "mmntp generate",
  description:
    'Writes a grid of images generated from a caption, e.g. "a handwritten 7", using a saved run.\n' +
    "A run decodes in the order its model was trained in: the demo's in raster order; `mmntp experiment orders`\n" +
    "trains one per order (runs/orders/raster, maskgit, random, next-scale), e.g.\n" +
    '  mmntp generate "a handwritten 7" -o 7.png --run runs/orders/maskgit --steps 8 --preview steps/\n' +
    "A run of `mmntp train --preset mar-mnist` or `--preset transfusion-mnist` draws by diffusion: it takes\n" +
    "--count, --seed, --guidance, --temperature and --steps (denoising steps), each defaulting to its config's;\n" +
    "the token-sampling options (--top-k, --top-p, --guidance-schedule, --order, --preview) are refused there, e.g.\n" +
    '  mmntp generate "a handwritten 7" -o 7.png --run runs/mar-mnist --count 8 --seed 0',
  positionals: [{ name: "prompt", help: "the caption to draw" }],
  options: [
    { name: "out", short: "o", type: "string", required: true, placeholder: "out.png", help: "PNG grid to write" },
    RUN_OPTION,
    { name: "count", type: "number", default: 8, help: "images to generate (1..256)" },
    { name: "temperature", type: "number", help: `sampling temperature (0 = greedy; default ${DEMO_TEMPERATURE}, a diffusion run's: its config's)` },
    { name: "top-k", type: "number", default: 0, help: "sample from the k most likely tokens only (0 = all)" },
    { name: "seed", type: "number", default: 0, help: "sampling seed (an integer in [0, 2^32))" },
    { name: "guidance", type: "number", help: `classifier-free guidance scale (1 = off; default ${DEMO_GUIDANCE}, a diffusion run's: its config's)` },
    { name: "guidance-schedule", type: "string", default: "constant", placeholder: "constant|linear", help: "guidance over the steps: constant, or linear from 1 up to the scale" },
    { name: "top-p", type: "number", default: 1, help: "nucleus sampling: keep the smallest set of tokens whose probability reaches p (1 = all)" },
    { name: "order", type: "string", placeholder: ORDER_NAMES.join("|"), help: "decoding order (default: the one the run's model was trained in)" },
    { name: "steps", type: "number", help: "MaskGIT passes per image, 1..tokens (default 8; maskgit order only); a diffusion run's denoising steps (default: its config's)" },
    { name: "preview", type: "string", placeholder: "DIR", help: "also write the partial images after every step (step-NN.png) and steps.gif into DIR" },
    JSON_OPTION,
  ],
} as const satisfies ArgSpec;

type Print = (json: boolean, value: unknown, text: string) => void;

/** PNG paths: files as given, folders expanded to their *.png files (sorted). */
function imageFiles(args: readonly string[]): string[] {
  const files: string[] = [];
  for (const a of args) {
    if (!existsSync(a)) throw new InputError(`no such file or folder: ${a}`);
    if (statSync(a).isDirectory()) {
      const pngs = readdirSync(a).filter((f) => f.toLowerCase().endsWith(".png")).sort();
      if (pngs.length === 0) throw new InputError(`folder ${a} holds no .png files`);
      files.push(...pngs.map((f) => join(a, f)));
    } else files.push(a);
  }
  return files;
}

/** Runs `mmntp caption …`. */
export async function captionCommand(rest: string[], print: Print, loadEngine: () => Promise<unknown>): Promise<void> {
  const args = parseArgs(rest, CAPTION);
  if (args.kind === "help") return void console.log(args.text);
  const files = imageFiles(args.positionals.images);
  await loadEngine();
  const run = args.values.run;
  const out = isDesignRun(run) ? await (await import("../pipelines/use-design.ts")).captionFilesWithDesign(run, files) : await (await import("../pipelines/use-run.ts")).caption(run, files);
  print(args.values.json, { run, captions: out }, out.map((c) => (files.length === 1 ? c.caption : `${c.file}\t${c.caption}`)).join("\n"));
}

function checkGenerateOptions(v: { count: number; temperature?: number | undefined; "top-k": number; "top-p": number; seed: number; guidance?: number | undefined; "guidance-schedule": string; order?: string | undefined }): void {
  if (!(v["top-p"] > 0 && v["top-p"] <= 1)) throw new InputError(`--top-p must be in (0, 1] (1 = all tokens), got ${v["top-p"]}`);
  if (!(GUIDANCE_SCHEDULES as readonly string[]).includes(v["guidance-schedule"])) throw new InputError(`--guidance-schedule must be one of ${GUIDANCE_SCHEDULES.join(", ")}, got ${JSON.stringify(v["guidance-schedule"])}`);
  if (v.order !== undefined && !(ORDER_NAMES as readonly string[]).includes(v.order)) throw new InputError(`--order must be one of ${ORDER_NAMES.join(", ")}, got ${JSON.stringify(v.order)}`);
  if (!Number.isInteger(v.count) || v.count < 1 || v.count > 256) throw new InputError(`--count must be an integer in [1, 256], got ${v.count}`);
  if (v.temperature !== undefined && !(v.temperature >= 0 && v.temperature <= 10)) throw new InputError(`--temperature must be in [0, 10] (0 = greedy), got ${v.temperature}`);
  if (!Number.isInteger(v["top-k"]) || v["top-k"] < 0) throw new InputError(`--top-k must be a non-negative integer (0 = all), got ${v["top-k"]}`);
  if (!Number.isInteger(v.seed) || v.seed < 0 || v.seed >= 2 ** 32) throw new InputError(`--seed must be an integer in [0, 4294967295], got ${v.seed}`);
  if (v.guidance !== undefined && !(v.guidance >= 1 && v.guidance <= 100)) throw new InputError(`--guidance must be in [1, 100] (1 = off), got ${v.guidance}`);
}

/** The token-sampling options a diffusion run refuses when given (their defaults aside), each with how it was given. */
function tokenSamplingOptions(v: { "top-k": number; "top-p": number; "guidance-schedule": string; order?: string | undefined; preview?: string | undefined }): string[] {
  return [
    ...(v["top-k"] !== 0 ? [`--top-k ${v["top-k"]}`] : []),
    ...(v["top-p"] !== 1 ? [`--top-p ${v["top-p"]}`] : []),
    ...(v["guidance-schedule"] !== "constant" ? [`--guidance-schedule ${v["guidance-schedule"]}`] : []),
    ...(v.order !== undefined ? [`--order ${v.order}`] : []),
    ...(v.preview !== undefined ? ["--preview"] : []),
  ];
}

/** Runs `mmntp generate …`. */
export async function generateCommand(rest: string[], print: Print, loadEngine: () => Promise<unknown>): Promise<void> {
  const args = parseArgs(rest, GENERATE);
  if (args.kind === "help") return void console.log(args.text);
  checkGenerateOptions(args.values);
  const { count, temperature, seed, guidance, out, order, steps, preview, run } = args.values;
  const prompt = args.positionals.prompt;
  const { checkOutputPath, checkOutputFolder } = await import("../io/checkpoint.ts");
  checkOutputPath(out);
  if (isDesignRun(run)) {
    const refused = tokenSamplingOptions(args.values);
    if (refused.length > 0) {
      throw new InputError(`${refused.join(", ")}: ${run} draws continuous image tokens by diffusion, so the token-sampling options do not apply; it takes --count, --seed, --guidance, --temperature and --steps (denoising steps)`, { field: refused[0]!.split(" ")[0]!.slice(2) });
    }
    await loadEngine();
    const { generateWithDesign } = await import("../pipelines/use-design.ts");
    const r = await generateWithDesign(run, prompt, out, { count, seed, ...(steps !== undefined && { steps }), ...(guidance !== undefined && { guidance }), ...(temperature !== undefined && { temperature }) });
    print(args.values.json, { run, prompt, ...r }, `wrote ${out}`);
    return;
  }
  await loadEngine();
  const { generate } = await import("../pipelines/use-run.ts");
  if (preview !== undefined) checkOutputFolder(preview);
  const r = await generate(run, prompt, out, {
    count,
    temperature: temperature ?? DEMO_TEMPERATURE,
    topK: args.values["top-k"],
    topP: args.values["top-p"],
    seed,
    guidance: guidance ?? DEMO_GUIDANCE,
    guidanceSchedule: args.values["guidance-schedule"] as GuidanceSchedule,
    ...(order === undefined ? {} : { order: order as OrderName }),
    ...(steps === undefined ? {} : { steps }),
    ...(preview === undefined ? {} : { preview }),
  });
  print(args.values.json, { run, prompt, ...r }, `wrote ${out}`);
}
