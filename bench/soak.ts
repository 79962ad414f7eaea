/**
 * Memory soak of the demo's unified model: `--steps` training steps of exactly the shape the demo
 * trains (DEFAULT_DEMO's model, batch and layout; vocab 32 text + 256 image codes + specials) on
 * random token sequences, sampling jax-js's wasm heap and the process RSS every `--every` steps.
 * Prints one JSON object; with `--plot` also a PNG of both curves.
 *
 *   npm run bench:soak                         # 2,000 steps, ~10 min on 2 cores
 *   MMNTP_THREADS=1 npm run bench:soak -- --steps 300 --plot runs/soak.png
 *
 * Flat means the wasm heap after warm-up never grows: jax-js's heap only grows when its free
 * lists cannot serve an allocation, so one leaked array per step shows up within a few steps.
 */
import { memoryUsage } from "node:process";
import { Progress } from "../src/io/progress.ts";
import { DEFAULT_DEMO } from "../src/pipelines/demo.ts";
import { engineMemoryBytes, startEngine } from "../src/engine/node.ts";
import { hostRng, KeyStream } from "../src/engine/rng.ts";
import { engineWorkerStats } from "../src/engine/workers.ts";
import { initTransformer, type TransformerConfig, type TransformerParams } from "../src/backbone/transformer.ts";
import { pairedBatch, pairedVocabOfSizes as pairedTestVocab } from "../src/pipelines/unified.ts";
import { nextTokenLoss } from "../src/train/losses.ts";
import { JointVocab } from "../src/backbone/sequence/vocab.ts";
import { lineChart, writeChart } from "../src/io/plot.ts";
import { DEFAULT_ADAMW } from "../src/train/optim.ts";
import { Trainer } from "../src/train/step.ts";
import { benchArgs, positiveInt, printReport } from "./lib/cli.ts";
import { machineInfo, round, today, versions } from "./lib/machine.ts";

const SPEC = {
  usage: "npm run bench:soak --",
  description: "Trains the demo's unified model on random tokens and reports whether wasm heap and RSS stay flat. One JSON object on stdout.",
  options: [
    { name: "steps", type: "number", default: 2000, help: "training steps" },
    { name: "every", type: "number", default: 100, help: "sample memory every this many steps (the first sample ends the warm-up)" },
    { name: "plot", type: "string", help: "also write a PNG of heap and RSS (MiB) per sample to this path" },
  ],
} as const;

const MIB = 1024 * 1024;

async function soak(steps: number, every: number, plot: string | undefined): Promise<void> {
  await startEngine();
  const vocab = pairedTestVocab(32, 256);
  const cfg = DEFAULT_DEMO;
  const model: TransformerConfig = { ...cfg.model, vocabSize: vocab.size };
  const trainer = new Trainer(initTransformer(new KeyStream(0), model), (p, b) => nextTokenLoss(p as TransformerParams, b as never, model), DEFAULT_ADAMW);
  const rng = hostRng(1);
  const text = () => 4 + Math.floor(rng() * 28);
  const samples: { step: number; heapMiB: number; rssMiB: number; jsHeapMiB: number }[] = [];
  const gc = (globalThis as { gc?: () => void }).gc;
  const progress = new Progress({ label: "soak", total: steps });
  const t0 = performance.now();
  for (let step = 1; step <= steps; step++) {
    const captions = Array.from({ length: cfg.batchSize }, () => [text(), text(), text()]);
    const images = captions.map(() => Array.from({ length: 49 }, () => Math.floor(rng() * 256)));
    const r = await trainer.step(pairedBatch(vocab, captions, images, [7, 7], model, cfg.layout), 1e-3);
    progress.tick(1, { loss: r.loss });
    if (step % every === 0) {
      gc?.(); // with --expose-gc (npm run bench:soak): live JS objects, not garbage not yet collected
      const { rss, heapUsed } = memoryUsage();
      samples.push({ step, heapMiB: round(engineMemoryBytes() / MIB, 1), rssMiB: round(rss / MIB, 1), jsHeapMiB: round(heapUsed / MIB, 1) });
    }
  }
  progress.done();
  const seconds = (performance.now() - t0) / 1000;
  trainer.dispose();
  if (samples.length < 2) throw new Error(`--steps ${steps} / --every ${every} gives ${samples.length} sample(s); need 2 to see a trend`);
  const [first, ...rest] = samples;
  const growth = (key: "heapMiB" | "rssMiB" | "jsHeapMiB") => Math.max(...rest.map((s) => s[key])) - first[key];
  if (plot) {
    const chart = lineChart(
      [
        { name: "wasm heap MiB", values: samples.map((s) => s.heapMiB) },
        { name: "RSS MiB", values: samples.map((s) => s.rssMiB) },
        { name: "JS heap MiB", values: samples.map((s) => s.jsHeapMiB) },
      ],
      { title: `soak: demo model, ${steps} training steps`, xLabel: "step", yLabel: "MiB", xStart: every, xStep: every },
    );
    writeChart(plot, chart);
  }
  printReport({
    bench: "soak",
    date: today(),
    machine: machineInfo(),
    versions: versions(),
    threads: engineWorkerStats().threads || 1,
    model: { ...model, batchSize: cfg.batchSize },
    steps,
    seconds: round(seconds, 1),
    ms_per_step: round((seconds * 1000) / steps, 1),
    samples,
    heap_growth_after_warmup_mib: round(growth("heapMiB"), 1),
    rss_growth_after_warmup_mib: round(growth("rssMiB"), 1),
    js_heap_growth_after_warmup_mib: round(growth("jsHeapMiB"), 1),
    gc_before_samples: gc !== undefined,
    flat: growth("heapMiB") === 0,
    notes: [
      "warm-up = the steps before the first sample (jit compiles, free lists fill); growth = largest later sample minus the first",
      "flat = the wasm heap (jax-js's high-water mark, engineMemoryBytes) never grows after warm-up; RSS also holds V8's heap and can move a little",
      "jsHeapMiB = V8 heapUsed after a full GC (gc_before_samples; npm run bench:soak passes --expose-gc): growth there is JS objects kept alive",
    ],
  });
}

function main(): Promise<void> | void {
  const v = benchArgs(SPEC);
  if (!v) return;
  return soak(positiveInt("steps", v.steps), positiveInt("every", v.every), v.plot);
}

await main();
process.exit(0);
