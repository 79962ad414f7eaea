import { existsSync } from "node:fs";
import { join } from "node:path";
import { applyOverrides, parseArgs, type ArgSpec } from "./args.ts";

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

const COMMANDS: Record<string, { spec: ArgSpec; summary: string }> = {
  demo: { spec: DEMO, summary: "train tokenizers + unified model on embedded MNIST, write runs/NAME/" },
  caption: { spec: CAPTION, summary: "caption a 28×28 grayscale digit with a saved run" },
  generate: { spec: GENERATE, summary: 'generate images for a caption, e.g. "a handwritten 7"' },
};

const HELP = [
  "mmntp — multimodal next-token prediction",
  "",
  "Usage: mmntp <command> [options]",
  "",
  "Commands:",
  ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`),
  "",
  "Run `mmntp <command> --help` for a command's options.",
].join("\n");

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help") return void console.log(HELP);
  if (!(command in COMMANDS)) throw new Error(`unknown command "${command}"; expected one of: ${Object.keys(COMMANDS).join(", ")}\n\n${HELP}`);

  if (command === "demo") {
    const args = parseArgs(rest, DEMO);
    if (args.kind === "help") return void console.log(args.text);
    const { runDemo, DEFAULT_DEMO, QUICK_DEMO } = await import("./demo.ts");
    const cfg = applyOverrides(args.values.quick ? QUICK_DEMO : DEFAULT_DEMO, args.values.set);
    const dir = join("runs", args.values.name);
    const metrics = await runDemo(dir, cfg);
    console.log(JSON.stringify(metrics, null, 2));
    console.log(`wrote ${dir}/recon.png, ${dir}/samples.png, ${dir}/metrics.json and checkpoints`);
    return;
  }

  const checkRun = (dir: string) => {
    if (!existsSync(dir)) throw new Error(`no run at ${dir}; run \`mmntp demo\` first or pass --run <dir>`);
  };
  if (command === "caption") {
    const args = parseArgs(rest, CAPTION);
    if (args.kind === "help") return void console.log(args.text);
    checkRun(args.values.run);
    const { caption } = await import("./use-run.ts");
    console.log(await caption(args.values.run, args.positionals["image.png"]));
    return;
  }
  const args = parseArgs(rest, GENERATE);
  if (args.kind === "help") return void console.log(args.text);
  checkRun(args.values.run);
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
