/**
 * `mmntp tokenizer <action>`: train, measure and run an image tokenizer (pipelines/tokenizer-run.ts).
 * Argument handling and output only, as in main.ts, which hands `tokenizer …` here.
 */
import { join } from "node:path";
import { InputError } from "../io/errors.ts";
import { applyOverrides, JSON_OPTION, parseArgs, type ArgSpec } from "./args.ts";

const RUN_OPTION = { name: "run", type: "string", default: join("runs", "tokenizer-mnist"), placeholder: "DIR", help: "a tokenizer run folder written by `mmntp tokenizer train`" } as const;
const DATA_OPTION = { name: "data", type: "string", placeholder: "PATH", help: "your images: a folder of PNG/JPEG files (subfolders = classes), or an IDX image file" } as const;
const LABELS_OPTION = { name: "labels", type: "string", placeholder: "FILE", help: "an IDX label file for an IDX --data file (optional)" } as const;

const TOKENIZER_ACTIONS = {
  train: {
    usage: "mmntp tokenizer train",
    description:
      "Trains an image tokenizer (conv encoder → quantizer → conv decoder, by auto-encoding) on an embedded data set\n" +
      "or your images, saving a resumable checkpoint every 100 steps; then trains the feature network for rFID,\n" +
      "measures the tokenizer on held-out images and draws reconstructions, codebook usage and training curves.\n\n" +
      "Presets:\n" +
      "  mnist    28×28 digits → 7×7 ids of a 256-code VQ codebook; ~4 min on 2 cores\n" +
      "  shapes   32×32 colour scenes of shapes → 8×8 ids of a 512-code VQ codebook; ~5 min\n\n" +
      "e.g.\n" +
      "  mmntp tokenizer train --preset mnist -o runs/tok\n" +
      "  mmntp tokenizer train --resume -o runs/tok           # after a kill: continues bit-exactly\n" +
      "  mmntp tokenizer train --set tokenizer.quantizer.name=fsq --set tokenizer.quantizer.options={\"levels\":[8,5,5,5]} \\\n" +
      "      --set train.kmeansInit=false --set train.restartEvery=0\n" +
      "  mmntp tokenizer train --data photos/ --set tokenizer.imageChannels=3 --set tokenizer.height=32 --set tokenizer.width=32",
    options: [
      { name: "preset", type: "string", default: "mnist", placeholder: "mnist|shapes", help: "what to train (see above)" },
      { name: "out", short: "o", type: "string", placeholder: "DIR", help: "the run folder (default runs/tokenizer-PRESET)" },
      DATA_OPTION,
      LABELS_OPTION,
      { name: "steps", type: "number", help: "training steps (default: the preset's)" },
      { name: "resume", type: "boolean", help: "continue the unfinished run in --out from its last checkpoint (its own config and data)" },
      { name: "set", type: "string", multiple: true, placeholder: "key=value", help: "override a config value by dotted path, e.g. --set tokenizer.channels=[64,128] --set train.lr=0.002" },
      JSON_OPTION,
    ],
  },
  eval: {
    usage: "mmntp tokenizer eval",
    description: "Measures a trained tokenizer on its run's held-out images (or on --data): MSE, PSNR, SSIM, rFID (Fréchet\ndistance of the run's feature network's features, real vs reconstructed), codebook usage and perplexity.",
    options: [RUN_OPTION, DATA_OPTION, LABELS_OPTION, JSON_OPTION],
  },
  encode: {
    usage: "mmntp tokenizer encode",
    description: "Turns PNG/JPEG files into token files OUT/<name>.tokens.json (the ids of the grid, row by row), e.g.\n  mmntp tokenizer encode digit.png --run runs/tokenizer-mnist -o tokens/",
    positionals: [{ name: "files", rest: true, help: "PNG/JPEG files (resized to the tokenizer's size)" }],
    options: [RUN_OPTION, { name: "out", short: "o", type: "string", required: true, placeholder: "DIR", help: "folder for the token files" }, JSON_OPTION],
  },
  decode: {
    usage: "mmntp tokenizer decode",
    description: "Turns token files written by `mmntp tokenizer encode` back into PNG images OUT/<name>.png.",
    positionals: [{ name: "files", rest: true, help: "token files (*.tokens.json)" }],
    options: [RUN_OPTION, { name: "out", short: "o", type: "string", required: true, placeholder: "DIR", help: "folder for the PNG files" }, JSON_OPTION],
  },
} as const satisfies Record<string, ArgSpec>;

const TOKENIZER_HELP = [
  "Usage: mmntp tokenizer <action> [options]",
  "",
  "Actions:",
  "  train       train an image tokenizer (embedded MNIST or colour shapes, or your images), resumable",
  "  eval        MSE, PSNR, SSIM, rFID, codebook usage on held-out images",
  "  encode      PNG/JPEG files → token files",
  "  decode      token files → PNG files",
  "",
  "Run `mmntp tokenizer <action> --help` for its options.",
].join("\n");

type Print = (json: boolean, value: unknown, text: string) => void;

export function metricsText(m: import("../pipelines/tokenizer-run.ts").TokenizerMetrics): string {
  return (
    `held-out ${m.data} (${m.images} images): PSNR ${m.psnr.toFixed(2)} dB, SSIM ${m.ssim.toFixed(3)}, rFID ${m.rfid.toFixed(3)}, ` +
    `codebook usage ${(100 * m.usage).toFixed(1)}% (perplexity ${m.perplexity.toFixed(1)}), ${m.tokensPerImage} tokens = ${m.bitsPerImage.toFixed(0)} bits per image` +
    (m.scenesPassed === undefined ? "" : `
the exact scene checker passes ${(100 * m.scenesPassed).toFixed(1)}% of the reconstructions`)
  );
}

/** Runs `mmntp tokenizer …`; `loadEngine` loads the Node engine before any module that uses jax-js. */
export async function tokenizerCommand(rest: string[], print: Print, loadEngine: () => Promise<unknown>): Promise<void> {
  const [action, ...more] = rest;
  if (!action || action === "-h" || action === "--help") return void console.log(TOKENIZER_HELP);
  if (!Object.hasOwn(TOKENIZER_ACTIONS, action)) throw new InputError(`unknown tokenizer action "${action}"; expected one of: ${Object.keys(TOKENIZER_ACTIONS).join(", ")}`, { value: action });

  if (action === "train") {
    const args = parseArgs(more, TOKENIZER_ACTIONS.train);
    if (args.kind === "help") return void console.log(args.text);
    const v = args.values;
    const config: typeof import("../pipelines/tokenizer-config.ts") = await import("../pipelines/tokenizer-config.ts");
    const out = v.out ?? join("runs", `tokenizer-${v.preset}`);
    if (v.resume && (v.set.length > 0 || v.steps !== undefined || v.data !== undefined)) {
      throw new InputError("--resume continues the run with its own config and data; drop --set, --steps and --data", { field: "resume" });
    }
    let cfg: import("../pipelines/tokenizer-config.ts").TokenizerRunConfig | undefined;
    if (!v.resume) {
      const base = config.tokenizerPreset(v.preset);
      cfg = applyOverrides(v.steps === undefined ? base : { ...base, train: { ...base.train, steps: v.steps } }, v.set);
      config.checkTokenizerRunConfig(cfg);
    }
    const { checkOutputFolder } = await import("../io/checkpoint.ts");
    checkOutputFolder(out);
    await loadEngine();
    const { trainTokenizerRun } = await import("../pipelines/tokenizer-run.ts");
    const { stepProgress } = await import("../io/progress.ts");
    const r = await trainTokenizerRun(out, cfg, {
      ...(v.data !== undefined && { data: v.data }),
      ...(v.labels !== undefined && { labels: v.labels }),
      resume: v.resume ?? false,
      onStep: stepProgress("image tokenizer"),
      log: (line) => console.error(line),
    });
    const files = "image-tokenizer.safetensors, metrics.json, reconstructions.png, codebook-usage.png, loss.png/svg, psnr.png/svg";
    print(v.json, { dir: out, ...r }, `${r.resumedAt === undefined ? "" : `resumed at step ${r.resumedAt}\n`}${metricsText(r.metrics)}\nwrote ${out}/ (${files})`);
    return;
  }

  if (action === "eval") {
    const args = parseArgs(more, TOKENIZER_ACTIONS.eval);
    if (args.kind === "help") return void console.log(args.text);
    await loadEngine();
    const { evaluateTokenizerRun } = await import("../pipelines/tokenizer-run.ts");
    const m = await evaluateTokenizerRun(args.values.run, { ...(args.values.data !== undefined && { data: args.values.data }), ...(args.values.labels !== undefined && { labels: args.values.labels }) });
    print(args.values.json, { run: args.values.run, metrics: m }, metricsText(m));
    return;
  }

  const args = parseArgs(more, action === "encode" ? TOKENIZER_ACTIONS.encode : TOKENIZER_ACTIONS.decode);
  if (args.kind === "help") return void console.log(args.text);
  const files = args.positionals.files;
  if (files.length === 0) throw new InputError(`expected at least one ${action === "encode" ? "PNG/JPEG" : "token"} file`);
  const { checkOutputFolder } = await import("../io/checkpoint.ts");
  checkOutputFolder(args.values.out);
  await loadEngine();
  const { encodeImageFiles, decodeTokenFiles } = await import("../pipelines/tokenizer-files.ts");
  const written = action === "encode" ? await encodeImageFiles(args.values.run, files, args.values.out) : await decodeTokenFiles(args.values.run, files, args.values.out);
  print(args.values.json, { run: args.values.run, files: written }, `${written.join("\n")}\n${action}d ${files.length} file${files.length === 1 ? "" : "s"}`);
}
