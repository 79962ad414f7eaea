/**
 * A 7× larger GPT than bench:backbone's, trained side by side with PyTorch (issue #26): d 512,
 * 8 heads, 8 layers, context 256, batch 16 (26.4M parameters, bench/lib/gpt.ts SCALE_GPT),
 * AdamW with torch's defaults. Reports training tokens/s, peak RSS and the wasm heap for each
 * mode — `plain` (Trainer: one jitted step) and `checkpointed` (CheckpointedTrainer: activation
 * checkpointing per block) — next to reference/torch_gpt_bench.py on the same shape, run before
 * and after the mmntp children.
 *
 *   npm run bench:scale                                     # both modes, 2 threads, ~10 min
 *   npm run bench:scale -- --ctx 512 --modes checkpointed   # context 512 (PyTorch: ~4.5 GiB)
 *
 * Each mode runs in a child process (a fresh wasm heap, its own peak RSS). A child that runs out
 * of engine memory reports the EngineMemoryError's message instead of figures.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { engineMemoryBytes, startEngine } from "../src/engine/node.ts";
import { nativeStats } from "../src/engine/native.ts";
import { EngineMemoryError } from "../src/engine/out-of-memory.ts";
import { engineWorkerStats } from "../src/engine/workers.ts";
import type { TransformerConfig } from "../src/backbone/transformer.ts";
import { CheckpointedTrainer } from "../src/train/checkpointed.ts";
import { benchArgs, positiveInt, printReport, threadList } from "./lib/cli.ts";
import { lastJsonLine, runThreadsChild, torchMissing } from "./lib/child.ts";
import { BATCH, benchParams, benchTrainer, deviceBatch, LR, SCALE_GPT, syntheticTokens, TORCH_ADAMW } from "./lib/gpt.ts";
import { loadAverage, machineInfo, mean, median, round, today, versions } from "./lib/machine.ts";

const MODES = ["plain", "checkpointed"] as const;
type Mode = (typeof MODES)[number];

const SPEC = {
  usage: "npm run bench:scale --",
  description: "Training throughput and memory of a 26.4M-parameter GPT (d 512, 8 layers), mmntp vs PyTorch CPU in the same run. One JSON object on stdout.",
  options: [
    { name: "steps", type: "number", default: 3, help: "timed training steps per run (the reference times as many)" },
    { name: "warmup", type: "number", default: 2, help: "untimed steps first, the first compiles (the reference warms up 2)" },
    { name: "ctx", type: "number", default: 256, help: "context length (training length of every row)" },
    { name: "modes", type: "string", default: "plain,checkpointed", help: "plain (Trainer) and/or checkpointed (CheckpointedTrainer), one child each" },
    { name: "threads", type: "number", default: 2, help: "MMNTP_THREADS of the children" },
    { name: "reference", type: "boolean", default: true, help: "run reference/torch_gpt_bench.py before and after (--no-reference skips it)" },
    { name: "python", type: "string", default: "/usr/bin/python3", help: "interpreter with torch for the reference" },
    { name: "child", type: "boolean", help: "internal: measure one mode in this process and print its JSON" },
    { name: "mode", type: "string", default: "plain", help: "internal: the child's mode" },
  ],
} as const;

type ChildResult = {
  mode: Mode;
  pool: { workers_spawned: number };
  native: boolean;
  params: number;
  train?: { tokens_per_s: number; step_ms: { median: number; min: number; max: number }; first_step_s: number; loss_first: number; loss_last: number };
  error?: string;
  memory: { peak_rss_mib: number; wasm_mib_after_warmup?: number; wasm_mib_end: number };
};
type Reference = { train_tokens_per_s: number; peak_rss_mib: number; engine: string; threads: number; params: number; wall_s: number };

const MIB = 2 ** 20;
const log = (msg: string) => process.stderr.write(`[bench:scale] ${msg}\n`);
const peakRssMib = () => round((process.resourceUsage().maxRSS * 1024) / MIB, 1);

async function child(mode: Mode, cfg: TransformerConfig, steps: number, warmup: number): Promise<void> {
  await startEngine();
  const label = `the scale GPT (${mode})`;
  const checkpointed = () => {
    const { params, counts } = benchParams(cfg);
    return { trainer: new CheckpointedTrainer(params, cfg, TORCH_ADAMW, { label }), counts };
  };
  const { trainer, counts } = mode === "plain" ? benchTrainer(cfg, label) : checkpointed();
  const total = counts.total;
  const host = syntheticTokens(cfg);
  const stats = () => ({ pool: { workers_spawned: engineWorkerStats().spawned }, native: nativeStats().enabled, params: total });
  const report = (r: Omit<ChildResult, "pool" | "native" | "params" | "mode">) => console.log(JSON.stringify({ mode, ...stats(), ...r }));
  try {
    const t0 = performance.now();
    const losses = [(await trainer.step(deviceBatch(host, cfg), LR)).loss];
    const first = (performance.now() - t0) / 1000;
    log(`${mode}: first step (compile + run) ${first.toFixed(1)} s, heap ${(engineMemoryBytes() / MIB).toFixed(0)} MiB`);
    for (let i = 1; i < warmup; i++) await trainer.step(deviceBatch(host, cfg), LR);
    const heapWarm = engineMemoryBytes();
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const s0 = performance.now();
      losses.push((await trainer.step(deviceBatch(host, cfg), LR)).loss);
      times.push(performance.now() - s0);
      log(`  step ${i + 1}/${steps}: ${times[i]!.toFixed(0)} ms, loss ${losses.at(-1)!.toFixed(3)}`);
    }
    const tokens = steps * BATCH * cfg.contextLength;
    report({
      train: {
        tokens_per_s: round(tokens / (times.reduce((a, b) => a + b, 0) / 1000), 1),
        step_ms: { median: round(median(times), 1), min: round(Math.min(...times), 1), max: round(Math.max(...times), 1) },
        first_step_s: round(first),
        loss_first: round(losses[0]!, 4),
        loss_last: round(losses.at(-1)!, 4),
      },
      memory: { peak_rss_mib: peakRssMib(), wasm_mib_after_warmup: round(heapWarm / MIB, 1), wasm_mib_end: round(engineMemoryBytes() / MIB, 1) },
    });
  } catch (e) {
    if (!(e instanceof EngineMemoryError)) throw e;
    report({ error: e.message, memory: { peak_rss_mib: peakRssMib(), wasm_mib_end: round(engineMemoryBytes() / MIB, 1) } });
  }
}

function runReference(python: string, cfg: TransformerConfig, steps: number): Reference {
  const script = fileURLToPath(new URL("../reference/torch_gpt_bench.py", import.meta.url));
  const args = ["--d", cfg.dim, "--layers", cfg.layers, "--heads", cfg.heads, "--ctx", cfg.contextLength, "--batch", BATCH, "--vocab", cfg.vocabSize, "--steps", steps, "--decode", 2].map(String);
  const t0 = performance.now();
  const out = spawnSync(python, [script, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (out.status !== 0) throw new Error(`reference failed with status ${out.status ?? out.signal}`);
  const r = lastJsonLine<Reference>(out.stdout, "reference");
  log(`reference: train ${r.train_tokens_per_s} tok/s, peak RSS ${r.peak_rss_mib} MiB`);
  return { engine: r.engine, threads: r.threads, params: r.params, train_tokens_per_s: r.train_tokens_per_s, peak_rss_mib: r.peak_rss_mib, wall_s: round((performance.now() - t0) / 1000, 1) };
}

function modeList(text: string): Mode[] {
  return text.split(",").map((s) => {
    if (!(MODES as readonly string[]).includes(s)) throw new Error(`--modes: expected ${MODES.join(" and/or ")}, got "${s}"`);
    return s as Mode;
  });
}

function main(): Promise<void> | void {
  const v = benchArgs(SPEC);
  if (!v) return;
  const steps = positiveInt("steps", v.steps);
  const warmup = positiveInt("warmup", v.warmup);
  const cfg: TransformerConfig = { ...SCALE_GPT, contextLength: positiveInt("ctx", v.ctx, 2) };
  if (v.child) return child(modeList(v.mode)[0]!, cfg, steps, warmup);
  const [threads] = threadList(String(v.threads));
  const modes = modeList(v.modes);
  const missing = v.reference ? torchMissing(v.python) : "--no-reference";
  const loadStart = loadAverage();
  const refs: Reference[] = [];
  if (missing === undefined) {
    log("reference (before)");
    refs.push(runReference(v.python, cfg, steps));
  }
  const runs = modes.map((mode) => {
    log(`mmntp, ${mode}, MMNTP_THREADS=${threads}`);
    const flags = ["--mode", mode, "--steps", steps, "--warmup", warmup, "--ctx", cfg.contextLength].map(String);
    return runThreadsChild<ChildResult>(fileURLToPath(import.meta.url), threads!, flags);
  });
  if (missing === undefined) {
    log("reference (after)");
    refs.push(runReference(v.python, cfg, steps));
  }
  const torchTps = refs.length > 0 ? mean(refs.map((r) => r.train_tokens_per_s)) : undefined;
  const torchRss = refs.length > 0 ? Math.max(...refs.map((r) => r.peak_rss_mib)) : undefined;
  const ratios = Object.fromEntries(
    runs.map((r) => [
      r.mode,
      torchTps === undefined || torchRss === undefined
        ? undefined
        : r.train === undefined
          ? { failed: "out of engine memory (mmntp[].error)" }
          : { train_tokens_per_s: round(r.train.tokens_per_s / torchTps, 3), peak_rss: round(r.memory.peak_rss_mib / torchRss, 3) },
    ]),
  );
  printReport({
    date: today(),
    machine: { ...machineInfo(), load_avg_start: loadStart, load_avg_end: loadAverage() },
    versions: { ...versions(), torch: refs[0]?.engine },
    model: { ...cfg, batch: BATCH, params: runs[0]?.params, optimizer: { ...TORCH_ADAMW, lr: LR } },
    settings: { steps, warmup, threads },
    mmntp: runs,
    reference: missing === undefined ? { runs: refs, train_tokens_per_s: torchTps === undefined ? undefined : round(torchTps, 1), peak_rss_mib: torchRss } : { skipped: missing },
    ratios_mmntp_over_torch: missing === undefined ? ratios : undefined,
    method: [
      "training tokens/s = steps·batch·ctx / the timed steps' wall time, after --warmup steps (the first compiles); the reference times as many steps after its 2 warm-up steps",
      "peak RSS: each child's process.resourceUsage().maxRSS, the whole process over its whole run; PyTorch's ru_maxrss over its run (training, then 2 decoded tokens); the ratio uses the larger of the two PyTorch runs and the mean of their tokens/s",
      "wasm_mib = byteLength of jax-js's WebAssembly.Memory (its high-water mark; it never shrinks); the 4 GiB wasm32 cap applies to it",
      "the machine is shared with other jobs: compare ratios within one run",
    ],
  });
}

await main();
