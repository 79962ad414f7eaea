import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const HELP = `mmntp — multimodal next-token prediction

Usage:
  mmntp demo [--name NAME] [--quick]     train tokenizers + unified model on embedded MNIST (≤ 10 min on 2 cores),
                                         writing runs/NAME/{recon.png, samples.png, metrics.json, checkpoints}
  mmntp caption <image.png> [--run DIR]  caption a 28×28 grayscale digit with a saved run
  mmntp generate "<prompt>" -o out.png [--run DIR] [--count N] [--temperature T] [--seed S]
                                         generate images for a caption, e.g. "a handwritten 7"

Options:
  -h, --help   show help for a command`;

const COMMAND_HELP: Record<string, string> = {
  demo: `mmntp demo [--name NAME] [--quick]\n  Trains the VQ-VAE image tokenizer, a judge classifier and the unified transformer on the\n  embedded MNIST digits, then writes runs/NAME/ (default NAME: demo).\n  --quick  a much shorter training (for smoke tests; metrics will be low)`,
  caption: `mmntp caption <image.png> [--run DIR]\n  Prints a caption for a 28×28 grayscale PNG using the run in DIR (default runs/demo).`,
  generate: `mmntp generate "<prompt>" -o out.png [--run DIR] [--count N] [--temperature T] [--seed S]\n  Writes a grid of N (default 8) images generated from the prompt.`,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help") return void console.log(HELP);
  if (!(command in COMMAND_HELP)) throw new Error(`unknown command "${command}"; expected one of: ${Object.keys(COMMAND_HELP).join(", ")}\n\n${HELP}`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      name: { type: "string", default: "demo" },
      quick: { type: "boolean", default: false },
      run: { type: "string", default: join("runs", "demo") },
      out: { type: "string", short: "o" },
      count: { type: "string", default: "8" },
      temperature: { type: "string", default: "0.8" },
      seed: { type: "string", default: "0" },
    },
  });
  if (values.help) return void console.log(COMMAND_HELP[command]);
  const number = (name: "count" | "temperature" | "seed") => {
    const v = Number(values[name]);
    if (!Number.isFinite(v)) throw new Error(`--${name} must be a number, got "${values[name]}"`);
    return v;
  };

  if (command === "demo") {
    const { runDemo, DEFAULT_DEMO, QUICK_DEMO } = await import("./demo.ts");
    const dir = join("runs", values.name!);
    const metrics = await runDemo(dir, values.quick ? QUICK_DEMO : DEFAULT_DEMO);
    console.log(JSON.stringify(metrics, null, 2));
    console.log(`wrote ${dir}/recon.png, ${dir}/samples.png, ${dir}/metrics.json and checkpoints`);
    return;
  }
  const runDir = values.run!;
  if (!existsSync(runDir)) throw new Error(`no run at ${runDir}; run \`mmntp demo\` first or pass --run <dir>`);
  const { caption, generate } = await import("./use-run.ts");
  if (command === "caption") {
    if (positionals.length !== 1) throw new Error(`caption expects one image path, got ${positionals.length}\n\n${COMMAND_HELP.caption}`);
    console.log(await caption(runDir, positionals[0]));
  } else {
    if (positionals.length !== 1 || !values.out) throw new Error(`generate expects a prompt and -o out.png\n\n${COMMAND_HELP.generate}`);
    await generate(runDir, positionals[0], values.out, { count: number("count"), temperature: number("temperature"), seed: number("seed") });
    console.log(`wrote ${values.out}`);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: Error) => {
    console.error(`mmntp: ${e.message}`);
    process.exit(1);
  },
);
