/**
 * The `mmntp` commands: parses arguments (cli/args.ts, on Node's util.parseArgs) and calls the
 * library's pipelines. Everything that trains or generates lives in src/pipelines/ and
 * src/experiments/; nothing here but argument handling and output. The process entry, which
 * prepares the engine first and turns a failure into an exit code, is main.ts; tests call
 * `runCli` in their own process.
 */
import { join } from "node:path";
import { InputError } from "../io/errors.ts";
import { applyOverrides, JSON_OPTION, parseArgs, type ArgSpec } from "./args.ts";
import { codecCommand } from "./codec.ts";
import { tokenizerCommand } from "./tokenizer.ts";
import { ASR, asrCommand, speechCommand, TTS, ttsCommand } from "./speech.ts";
import { dialogueCommand } from "./dialogue.ts";
import { trainCommand, TRAIN } from "./train.ts";
import { CAPTION, captionCommand, GENERATE, generateCommand } from "./use.ts";
import { checkExperimentConfig, DEFAULT_QUANTIZER_EXPERIMENT, parseQuantizerList, QUANTIZER_NAMES } from "../experiments/quantizers-config.ts";
import { checkOrdersExperimentConfig, DEFAULT_ORDERS_EXPERIMENT, parseOrderList } from "../experiments/orders-config.ts";
import { ORDER_NAMES } from "../backbone/orders/training.ts";

const RUN_OPTION = { name: "run", type: "string", default: join("runs", "demo"), help: "a run written by `mmntp demo`" } as const;

const DEMO = {
  usage: "mmntp demo",
  description:
    "Trains a text tokenizer, the VQ-VAE image tokenizer, a judge classifier and the unified transformer on the\n" +
    "embedded MNIST digits (≤ 8 min on 2 cores), then writes runs/NAME/: recon.png, samples.png, metrics.json, run.json\n" +
    "and the checkpoint.",
  options: [
    { name: "name", type: "string", default: "demo", help: "run directory under runs/" },
    { name: "quick", type: "boolean", help: "a much shorter training (smoke test; metrics will be low)" },
    { name: "set", type: "string", multiple: true, placeholder: "key=value", help: "override a config value by dotted path, e.g. --set modelSteps=600 --set model.layers=3" },
    JSON_OPTION,
  ],
} as const satisfies ArgSpec;

const EXPERIMENTS = ["quantizers", "orders", "token-efficiency", "tokenizer-objectives"] as const;

const EXPERIMENT = {
  usage: "mmntp experiment",
  description:
    "Runs a named experiment and writes its tables and plots to runs/NAME/.\n\n" +
    "Experiments:\n" +
    "  quantizers  trains the MNIST conv auto-encoder of the VQ-VAE with each quantizer (VQ and its remedies,\n" +
    "              RVQ, group VQ, VAR multi-scale, FSQ, LFQ, binary) and compares reconstruction PSNR,\n" +
    "              codebook health and bits per image (≤ 20 min on 2 cores).\n" +
    "  orders      trains the demo's text→image model in each generation order (raster, MaskGIT, random\n" +
    "              order, next-scale) at an equal budget, saves a run per order under runs/NAME/<order>/, and\n" +
    "              compares judged accuracy, Fréchet distance, diversity and images/s (about 45 min on 2\n" +
    "              cores; a killed run resumes at the order it was training).\n" +
    "  token-efficiency  trains the MNIST tokenizer at 4×4, 7×7 and 14×14 token grids with 64, 256 and 1024\n" +
    "              codes (800 steps each) and plots PSNR and rFID against tokens and bits per image (about 50\n" +
    "              min on 2 cores; a killed run resumes from the last checkpoint of the setting it was training).\n" +
    "  tokenizer-objectives  trains the MNIST tokenizer by auto-encoding, masked modelling, with a supervised\n" +
    "              head and with CLIP-style contrast (800 steps each), then measures PSNR, a linear probe of the\n" +
    "              digit on its token embeddings and the unified model's captions on its tokens (about 50 min).",
  positionals: [{ name: "experiment", help: `which experiment: ${EXPERIMENTS.join(", ")}` }],
  options: [
    { name: "name", type: "string", help: "run directory under runs/ (default: the experiment's name)" },
    { name: "steps", type: "number", help: `training steps per quantizer (default ${DEFAULT_QUANTIZER_EXPERIMENT.steps}) or per order (default ${DEFAULT_ORDERS_EXPERIMENT.steps})` },
    { name: "seed", type: "number", default: 0, help: "seed of the initial weights and batch order (the test split stays fixed)" },
    { name: "lr", type: "number", help: `peak learning rate (warm-up + cosine) of every model (default ${DEFAULT_QUANTIZER_EXPERIMENT.lr} / ${DEFAULT_ORDERS_EXPERIMENT.lr})` },
    { name: "only", type: "string", placeholder: "a,b,...", help: `comma-separated subset to run (default: all): quantizers ${QUANTIZER_NAMES.join(",")}; orders ${ORDER_NAMES.join(",")}` },
    JSON_OPTION,
  ],
} as const satisfies ArgSpec;

const EXPORT = {
  usage: "mmntp export",
  description:
    "Writes a run's model for PyTorch: model.safetensors (the backbone under nanoGPT's tensor names, nn.Linear\n" +
    "layout), image-decoder.safetensors (the VQ decoder) and config.json, which reference/mmntp_torch.py loads;\n" +
    "with --data, also data.safetensors: training sequences for reference/train_torch.py (docs/scale-out.md), e.g.\n" +
    "  mmntp export runs/demo --format torch --data 6400 -o export/",
  positionals: [{ name: "run", help: "the run folder to export (e.g. runs/demo)" }],
  options: [
    { name: "out", short: "o", type: "string", required: true, placeholder: "DIR", help: "folder to write (created; its files are replaced)" },
    { name: "format", type: "string", default: "torch", placeholder: "torch", help: "what to write: torch (safetensors + config.json for PyTorch)" },
    { name: "data", type: "number", default: 0, help: "training sequences to export into data.safetensors (0 = none)" },
    { name: "seed", type: "number", default: 0, help: "seed of the exported sequences (digits and captions drawn)" },
    JSON_OPTION,
  ],
} as const satisfies ArgSpec;

const IMPORT = {
  usage: "mmntp import",
  description:
    "Reads a model trained elsewhere (a folder with config.json + model.safetensors, as `mmntp export` or\n" +
    "reference/train_torch.py writes it) into a new run beside the tokenizers and judge of --run, e.g.\n" +
    "  mmntp import export/trained --run runs/demo --out runs/demo-torch",
  positionals: [{ name: "checkpoint", help: "the folder holding config.json and model.safetensors" }],
  options: [RUN_OPTION, { name: "out", short: "o", type: "string", required: true, placeholder: "DIR", help: "the run folder to write" }, JSON_OPTION],
} as const satisfies ArgSpec;

const EVALUATE = {
  usage: "mmntp evaluate",
  description: "Scores a run's paired model on the demo's held-out digits: caption accuracy and judged generation accuracy.",
  options: [RUN_OPTION, JSON_OPTION],
} as const satisfies ArgSpec;

const COMMANDS: Record<string, { spec: ArgSpec; summary: string }> = {
  demo: { spec: DEMO, summary: "train tokenizers + unified model on embedded MNIST, write runs/NAME/" },
  train: { spec: TRAIN, summary: "train a continuous-token design (--preset llava-mnist | mar-mnist | transfusion-mnist)" },
  caption: { spec: CAPTION, summary: "caption digit images (files or folders) with a saved run" },
  generate: { spec: GENERATE, summary: 'generate images for a caption, e.g. "a handwritten 7"' },
  experiment: { spec: EXPERIMENT, summary: "run an experiment, e.g. `experiment quantizers`; write runs/NAME/" },
  evaluate: { spec: EVALUATE, summary: "score a run on the held-out digits (captions, generated digits)" },
  export: { spec: EXPORT, summary: "write a run's model (and training data) for PyTorch" },
  import: { spec: IMPORT, summary: "read a model trained in PyTorch back into a run" },
  tokenizer: { spec: { options: [] }, summary: "train, measure and run an image tokenizer (train | eval | encode | decode)" },
  codec: { spec: { options: [] }, summary: "train, measure and run the neural audio codec (train | encode | decode | eval)" },
  speech: { spec: { options: [] }, summary: "train and measure speech recognition + synthesis in one model (train | eval)" },
  asr: { spec: ASR, summary: "write what is said in WAV files, with a speech run" },
  tts: { spec: TTS, summary: 'speak a text into a WAV file, e.g. tts "seven" -o seven.wav' },
  dialogue: { spec: { options: [] }, summary: "two speakers' streams in one model: train, and reply to a WAV file (train | reply)" },
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

/** Runs one command line (without `node mmntp`); throws InputError on bad input. Needs the Node engine prepared (main.ts). */
export async function runCli(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help") return void console.log(HELP);
  if (!(command in COMMANDS)) throw new InputError(`unknown command "${command}"; expected one of: ${Object.keys(COMMANDS).join(", ")}\n\n${HELP}`);
  const print = (json: boolean, value: unknown, text: string) => console.log(json ? JSON.stringify(value, null, 2) : text);

  if (command === "demo") {
    const args = parseArgs(rest, DEMO);
    if (args.kind === "help") return void console.log(args.text);
    await loadEngine();
    const { runDemo, checkDemoConfig, DEFAULT_DEMO, QUICK_DEMO } = await import("../pipelines/demo.ts");
    const cfg = applyOverrides(args.values.quick ? QUICK_DEMO : DEFAULT_DEMO, args.values.set);
    checkDemoConfig(cfg);
    const dir = join("runs", args.values.name);
    const metrics = await runDemo(dir, cfg);
    print(args.values.json, { dir, metrics }, `${JSON.stringify(metrics, null, 2)}\nwrote ${dir}/recon.png, ${dir}/samples.png, ${dir}/metrics.json and the run (run.json, checkpoints/)`);
    return;
  }

  if (command === "experiment") {
    const args = parseArgs(rest, EXPERIMENT);
    if (args.kind === "help") return void console.log(args.text);
    const which = args.positionals.experiment;
    if (!(EXPERIMENTS as readonly string[]).includes(which)) throw new InputError(`unknown experiment "${which}"; expected one of: ${EXPERIMENTS.join(", ")}`);
    const dir = join("runs", args.values.name ?? which);
    const { steps, seed, lr } = args.values;
    if (which === "orders") {
      const d = DEFAULT_ORDERS_EXPERIMENT;
      const cfg = { ...d, steps: steps ?? d.steps, seed, lr: lr ?? d.lr, orders: args.values.only === undefined ? d.orders : parseOrderList(args.values.only) };
      checkOrdersExperimentConfig(cfg);
      await loadEngine();
      const { runOrdersExperiment, ordersTable } = await import("../experiments/orders.ts");
      const out = await runOrdersExperiment(dir, cfg);
      print(args.values.json, { dir, ...out }, `${ordersTable(out)}\nwrote ${dir}/results.md, results.json, grids/*.png and a run per order (${cfg.orders.map((o) => `${dir}/${o}`).join(", ")})`);
      return;
    }
    if (which === "token-efficiency") {
      await loadEngine(); // before the experiment's modules, which use jax-js
      const { checkTokenEfficiencyConfig, DEFAULT_TOKEN_EFFICIENCY, runTokenEfficiency, tokenEfficiencyTable } = await import("../experiments/token-efficiency.ts");
      const cfg = { ...DEFAULT_TOKEN_EFFICIENCY, steps: steps ?? DEFAULT_TOKEN_EFFICIENCY.steps, seed };
      checkTokenEfficiencyConfig(cfg);
      const rows = await runTokenEfficiency(dir, cfg);
      print(args.values.json, { dir, rows }, `${tokenEfficiencyTable(rows)}\nwrote ${dir}/results.md, results.json, psnr-vs-bits.svg, rfid-vs-bits.svg, psnr-vs-tokens.svg, rfid-vs-tokens.svg, reconstructions.png`);
      return;
    }
    if (which === "tokenizer-objectives") {
      await loadEngine(); // before the experiment's modules, which use jax-js
      const x: typeof import("../experiments/tokenizer-objectives.ts") = await import("../experiments/tokenizer-objectives.ts");
      const d = x.DEFAULT_OBJECTIVES_EXPERIMENT;
      const cfg = { ...d, tokenizerSteps: steps ?? d.tokenizerSteps, seed, objectives: args.values.only === undefined ? d.objectives : (args.values.only.split(",") as typeof d.objectives) };
      x.checkObjectivesExperimentConfig(cfg);
      const rows = await x.runObjectivesExperiment(dir, cfg);
      print(args.values.json, { dir, rows }, `${x.objectivesTable(rows)}\nwrote ${dir}/results.md, results.json, psnr-vs-probe.svg, psnr-vs-captions.svg and a tokenizer run per objective`);
      return;
    }
    const only = args.values.only === undefined ? [] : parseQuantizerList(args.values.only);
    const cfg = { ...DEFAULT_QUANTIZER_EXPERIMENT, steps: steps ?? DEFAULT_QUANTIZER_EXPERIMENT.steps, seed, lr: lr ?? DEFAULT_QUANTIZER_EXPERIMENT.lr, only };
    checkExperimentConfig(cfg); // before loading the engine
    await loadEngine();
    const { runQuantizerExperiment } = await import("../experiments/quantizers.ts");
    const { resultsTable } = await import("../experiments/quantizers-report.ts");
    const out = await runQuantizerExperiment(dir, cfg);
    print(args.values.json, { dir, results: out.results.map(({ curves: _, ...r }) => r) }, `${resultsTable(out.results)}\nwrote ${dir}/results.md, results.json, curves.png, usage-curves.png, recon-grid.png and codebook-usage-*.png`);
    return;
  }

  if (command === "export") {
    const args = parseArgs(rest, EXPORT);
    if (args.kind === "help") return void console.log(args.text);
    if (args.values.format !== "torch") throw new InputError(`--format must be torch, got ${JSON.stringify(args.values.format)}`, { field: "format", value: args.values.format, expected: "torch" });
    await loadEngine();
    const { exportTorch } = await import("../pipelines/export.ts");
    const r = await exportTorch(args.positionals.run, args.values.out, { data: args.values.data, seed: args.values.seed });
    print(args.values.json, { run: args.positionals.run, ...r }, `wrote ${r.files.join(", ")} (${r.parameters} parameters; image decoder: ${r.imageDecoder})`);
    return;
  }

  if (command === "import") {
    const args = parseArgs(rest, IMPORT);
    if (args.kind === "help") return void console.log(args.text);
    await loadEngine();
    const { importTorch } = await import("../pipelines/import.ts");
    const r = await importTorch(args.positionals.checkpoint, args.values.run, args.values.out);
    print(args.values.json, { run: args.values.run, ...r }, `wrote the run ${r.dir} (${r.parameters} parameters from ${r.from}; tokenizers and judge from ${args.values.run})`);
    return;
  }

  if (command === "evaluate") {
    const args = parseArgs(rest, EVALUATE);
    if (args.kind === "help") return void console.log(args.text);
    await loadEngine();
    const { evaluateRun } = await import("../pipelines/use-run.ts");
    const r = await evaluateRun(args.values.run);
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    print(args.values.json, { run: args.values.run, ...r }, `captions ${pct(r.caption_accuracy)} of ${r.test.captionImages} held-out digits; generated digits ${pct(r.generation_accuracy)} (by digit: ${r.generation_accuracy_by_digit.map(pct).join(" ")})`);
    return;
  }

  if (command === "tokenizer") return tokenizerCommand(rest, print, loadEngine);
  if (command === "codec") return codecCommand(rest, print, loadEngine);
  if (command === "speech") return speechCommand(rest, print, loadEngine);
  if (command === "asr") return asrCommand(rest, print, loadEngine);
  if (command === "tts") return ttsCommand(rest, print, loadEngine);
  if (command === "dialogue") return dialogueCommand(rest, print, loadEngine);

  if (command === "train") return trainCommand(rest, print, loadEngine);
  if (command === "caption") return captionCommand(rest, print, loadEngine);
  return generateCommand(rest, print, loadEngine);
}
