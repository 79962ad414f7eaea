import { existsSync } from "node:fs";
import { join } from "node:path";
import { applyOverrides, parseArgs, type ArgSpec } from "./args.ts";
import { checkExperimentConfig, DEFAULT_QUANTIZER_EXPERIMENT, parseQuantizerList, QUANTIZER_NAMES } from "../experiments/quantizers-config.ts";

const DEMO = {
  usage: "mmntp demo",
  description:
    "Trains the VQ-VAE image tokenizer, a judge classifier and the unified transformer on the embedded\n" +
    "MNIST digits (≤ 10 min on 2 cores), then writes runs/NAME/: recon.png, samples.png, metrics.json, checkpoints.",
  options: [
    { name: "name", type: "string", default: "demo", help: "run directory under runs/" },
    { name: "quick", type: "boolean", help: "a much shorter training (smoke test; metrics will be low)" },
    { name: "set", type: "string", multiple: true, placeholder: "key=value", help: "override a config value by dotted path, e.g. --set modelSteps=600 --set model.layers=3" },
  ],
} as const satisfies ArgSpec;

const RUN_OPTION = { name: "run", type: "string", default: join("runs", "demo"), help: "a run written by `mmntp demo`" } as const;

const CAPTION = {
  usage: "mmntp caption",
  description: "Prints a caption for a 28×28 grayscale PNG of a digit, using a saved run.",
  positionals: [{ name: "image.png", help: "28×28 grayscale PNG" }],
  options: [RUN_OPTION],
} as const satisfies ArgSpec;

const GENERATE = {
  usage: "mmntp generate",
  description: 'Writes a grid of images generated from a caption, e.g. "a handwritten 7", using a saved run.',
  positionals: [{ name: "prompt", help: "the caption to draw" }],
  options: [
    { name: "out", short: "o", type: "string", required: true, placeholder: "out.png", help: "PNG grid to write" },
    RUN_OPTION,
    { name: "count", type: "number", default: 8, help: "images to generate" },
    { name: "temperature", type: "number", default: 0.8, help: "sampling temperature (0 = greedy)" },
    { name: "seed", type: "number", default: 0, help: "sampling seed" },
    { name: "guidance", type: "number", default: 3, help: "classifier-free guidance scale (1 = off)" },
  ],
} as const satisfies ArgSpec;

const EXPERIMENTS = ["quantizers"] as const;

const EXPERIMENT = {
  usage: "mmntp experiment",
  description:
    "Runs a named experiment and writes its tables and plots to runs/NAME/.\n\n" +
    "Experiments:\n" +
    "  quantizers  trains the MNIST conv auto-encoder of the VQ-VAE with each quantizer (VQ and its remedies,\n" +
    "              RVQ, group VQ, VAR multi-scale, FSQ, LFQ, binary) and compares reconstruction PSNR,\n" +
    "              codebook health and bits per image (≤ 20 min on 2 cores).",
  positionals: [{ name: "experiment", help: `which experiment: ${EXPERIMENTS.join(", ")}` }],
  options: [
    { name: "name", type: "string", help: "run directory under runs/ (default: the experiment's name)" },
    { name: "steps", type: "number", default: DEFAULT_QUANTIZER_EXPERIMENT.steps, help: "training steps per quantizer" },
    { name: "seed", type: "number", default: DEFAULT_QUANTIZER_EXPERIMENT.seed, help: "seed of the initial weights and batch order (the test split stays fixed)" },
    { name: "lr", type: "number", default: DEFAULT_QUANTIZER_EXPERIMENT.lr, help: "peak learning rate (warm-up + cosine) of every auto-encoder" },
    { name: "only", type: "string", placeholder: "vq,fsq,...", help: `comma-separated quantizers to run (default: all): ${QUANTIZER_NAMES.join(",")}` },
  ],
} as const satisfies ArgSpec;

const COMMANDS: Record<string, { spec: ArgSpec; summary: string }> = {
  demo: { spec: DEMO, summary: "train tokenizers + unified model on embedded MNIST, write runs/NAME/" },
  caption: { spec: CAPTION, summary: "caption a 28×28 grayscale digit with a saved run" },
  generate: { spec: GENERATE, summary: 'generate images for a caption, e.g. "a handwritten 7"' },
  experiment: { spec: EXPERIMENT, summary: "run an experiment, e.g. `experiment quantizers`; write runs/NAME/" },
};

const HELP = [
  "mmntp — multimodal next-token prediction",
  "",
  "Usage: mmntp <command> [options]",
  "",
  "Commands:",
  ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`),
  "",
  "Run `mmntp <command> --help` for a command's options.",
].join("\n");

/** The engine as Node runs it (worker pool, native GEMM); loaded before any module that uses jax-js. */
const loadEngine = () => import("../engine/node.ts");

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help") return void console.log(HELP);
  if (!(command in COMMANDS)) throw new Error(`unknown command "${command}"; expected one of: ${Object.keys(COMMANDS).join(", ")}\n\n${HELP}`);

  if (command === "demo") {
    const args = parseArgs(rest, DEMO);
    if (args.kind === "help") return void console.log(args.text);
    await loadEngine();
    const { runDemo, DEFAULT_DEMO, QUICK_DEMO } = await import("./demo.ts");
    const cfg = applyOverrides(args.values.quick ? QUICK_DEMO : DEFAULT_DEMO, args.values.set);
    const dir = join("runs", args.values.name);
    const metrics = await runDemo(dir, cfg);
    console.log(JSON.stringify(metrics, null, 2));
    console.log(`wrote ${dir}/recon.png, ${dir}/samples.png, ${dir}/metrics.json and checkpoints`);
    return;
  }

  if (command === "experiment") {
    const args = parseArgs(rest, EXPERIMENT);
    if (args.kind === "help") return void console.log(args.text);
    const which = args.positionals.experiment;
    if (!(EXPERIMENTS as readonly string[]).includes(which)) throw new Error(`unknown experiment "${which}"; expected one of: ${EXPERIMENTS.join(", ")}`);
    const only = args.values.only === undefined ? [] : parseQuantizerList(args.values.only);
    const cfg = { ...DEFAULT_QUANTIZER_EXPERIMENT, steps: args.values.steps, seed: args.values.seed, lr: args.values.lr, only };
    checkExperimentConfig(cfg); // before loading the engine
    await loadEngine();
    const { runQuantizerExperiment } = await import("../experiments/quantizers.ts");
    const { resultsTable } = await import("../experiments/quantizers-report.ts");
    const dir = join("runs", args.values.name ?? which);
    const out = await runQuantizerExperiment(dir, cfg);
    console.log(resultsTable(out.results));
    console.log(`wrote ${dir}/results.md, results.json, curves.png, usage-curves.png, recon-grid.png and codebook-usage-*.png`);
    return;
  }

  const checkRun = (dir: string) => {
    if (!existsSync(dir)) throw new Error(`no run at ${dir}; run \`mmntp demo\` first or pass --run <dir>`);
  };
  if (command === "caption") {
    const args = parseArgs(rest, CAPTION);
    if (args.kind === "help") return void console.log(args.text);
    checkRun(args.values.run);
    await loadEngine();
    const { caption } = await import("./use-run.ts");
    console.log(await caption(args.values.run, args.positionals["image.png"]));
    return;
  }
  const args = parseArgs(rest, GENERATE);
  if (args.kind === "help") return void console.log(args.text);
  checkRun(args.values.run);
  await loadEngine();
  const { generate } = await import("./use-run.ts");
  const { count, temperature, seed, guidance, out } = args.values;
  await generate(args.values.run, args.positionals.prompt, out, { count, temperature, seed, guidance });
  console.log(`wrote ${out}`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: Error) => {
    console.error(`mmntp: ${e.message}`);
    process.exit(1);
  },
);
