/**
 * Where a training step's memory goes (issue #26): the benchmark GPT's jitted `Trainer.step` as
 * jax-js compiles it (a `JitProgram`: malloc, execute, free steps, printed at debug level 4), replayed
 * on paper: live intermediate bytes after every step, the high-water mark, and which buffers are
 * live there — by the kernel that wrote them and by when in the program they were made (the
 * forward pass's activations are the ones the backward pass still holds). The real wasm heap
 * after a few steps is measured beside it, so the gap between the program's own high-water mark
 * and the heap (the allocator's free lists and size classes) shows too.
 *
 *   npm run bench:memory                                   # ~1 min, 1 thread; one JSON object
 *   npm run bench:memory -- --plot runs/memory/live.png    # and the live-bytes curve as a PNG
 *   npm run bench:memory -- --no-lean                      # with jax-js's own GELU and softmax
 *   npm run bench:memory -- --model scale                  # bench:scale's 26.4M-parameter GPT, ~3 min
 */
// First: the Node engine installs the wasm-heap probe before jax-js loads.
import { engineMemoryBytes, startEngine } from "../src/engine/node.ts";
import { setDebug } from "@jax-js/jax";
import { setLeanActivations, leanActivations } from "../src/engine/lean.ts";
import { lineChart, writeChart } from "../src/io/plot.ts";
import { benchArgs, positiveInt, printReport } from "./lib/cli.ts";
import { BATCH, benchModel, benchTrainer, deviceBatch, LR, syntheticTokens } from "./lib/gpt.ts";
import { machineInfo, round, today, versions } from "./lib/machine.ts";
import { coalescingAllocator, sizeClassAllocator, parseJitProgram, replay, simulateHeap } from "./lib/jit-program.ts";

const SPEC = {
  usage: "npm run bench:memory --",
  description: "Live memory over one jitted training step of the benchmark GPT (from jax-js's compiled program), its high-water mark and what is held there, beside the real wasm heap. One JSON object on stdout.",
  options: [
    { name: "steps", type: "number", default: 3, help: "training steps run after the traced one, before the wasm heap is read" },
    { name: "top", type: "number", default: 12, help: "buffer groups listed at the high-water mark" },
    { name: "plot", type: "string", help: "also write a PNG of live MiB over the program's steps to this path" },
    { name: "model", type: "string", default: "bench", help: "bench (bench:backbone's 3.75M-parameter GPT) or scale (bench:scale's 26.4M)" },
    { name: "lean", type: "boolean", default: true, help: "memory-lean GELU and softmax, the engine's default (--no-lean: jax-js's own; src/nn/lean.ts)" },
  ],
} as const;

const MIB = 2 ** 20;
const log = (msg: string) => process.stderr.write(`[bench:memory] ${msg}\n`);

async function main(): Promise<void> {
  const v = benchArgs(SPEC);
  if (!v) return;
  const steps = positiveInt("steps", v.steps);
  const top = positiveInt("top", v.top);
  const model = benchModel(v.model);
  await startEngine();
  setLeanActivations(v.lean);
  const { trainer, counts } = benchTrainer(model);
  const host = syntheticTokens(model);
  const batch = () => deviceBatch(host, model);
  const heapBefore = engineMemoryBytes();

  // Compile the step with jax-js printing its programs; keep the printouts, not the console noise.
  const printed: string[] = [];
  const info = console.info;
  console.info = (...args: unknown[]) => {
    const text = args.map(String).join(" ");
    if (text.startsWith("{ device =")) printed.push(text);
  };
  setDebug(4);
  try {
    await trainer.step(batch(), LR);
  } finally {
    setDebug(0);
    console.info = info;
  }
  if (printed.length === 0) throw new Error("jax-js printed no compiled program at debug level 4 (has its debug output changed?)");
  const programs = printed.map(parseJitProgram);
  const program = programs.reduce((a, b) => (b.steps.length > a.steps.length ? b : a));
  log(`traced ${programs.length} program(s); the training step's has ${program.steps.length} steps`);

  const heapAfterFirst = engineMemoryBytes();
  for (let i = 0; i < steps; i++) await trainer.step(batch(), LR);
  const heap = engineMemoryBytes();
  log(`wasm heap: ${(heapBefore / MIB).toFixed(1)} MiB before the first step, ${(heapAfterFirst / MIB).toFixed(1)} after it, ${(heap / MIB).toFixed(1)} after ${steps} more`);
  const r = replay(program, top);
  trainer.dispose();

  if (v.plot) {
    writeChart(v.plot, lineChart([{ name: "live intermediates (MiB)", values: r.curve.map((b) => b / MIB) }], { title: "jitted training step: live buffers", xLabel: "program step", yLabel: "MiB" }));
    log(`wrote ${v.plot}`);
  }
  const paramBytes = counts.total * 4;
  printReport({
    date: today(),
    machine: machineInfo(),
    versions: versions(),
    model: { name: v.model, ...model, batch: BATCH, params: counts.total },
    lean_activations: leanActivations(),
    program: {
      steps: program.steps.length,
      kernels: r.kernels,
      routines: r.routines,
      mallocs: r.mallocs,
      malloc_mib_total: round(r.mallocBytes / MIB, 1),
      peak_live_mib: round(r.peak / MIB, 1),
      peak_at_step: r.peakAt,
      outputs_mib: round(r.outputBytes / MIB, 1),
    },
    live_at_peak: r.heldAtPeak.map((g) => ({ ...g, mib: round(g.bytes / MIB, 2), bytes: undefined })),
    live_at_peak_by_birth: r.byBirth.map((g) => ({ ...g, mib: round(g.bytes / MIB, 1), bytes: undefined })),
    inputs_mib: { params: round(paramBytes / MIB, 1), adamw_moments: round((2 * paramBytes) / MIB, 1) },
    wasm_heap_mib: { before_training: round(heapBefore / MIB, 1), after_first_step: round(heapAfterFirst / MIB, 1), end: round(heap / MIB, 1) },
    // the same program's mallocs and frees, three steps in a row, through two allocator models
    simulated_heap_mib: {
      size_classes_patch5: round(simulateHeap(program, sizeClassAllocator()) / MIB, 1),
      first_fit_coalescing: round(simulateHeap(program, coalescingAllocator()) / MIB, 1),
    },
    method: [
      "the program is jax-js's JitProgram for Trainer.step (the largest printed at setDebug(4) during the first step): its malloc / execute / free steps replayed in order",
      "live = bytes malloc'd by the program and not yet freed (the step's inputs — params, AdamW moments, the batch — come from outside and are not counted; its outputs are never freed inside it)",
      "live_at_peak groups the buffers live at the high-water mark by the kernel that wrote them (kind and output bytes); by_birth splits them by where in the program they were made (the forward pass comes first)",
      "wasm_heap = byteLength of jax-js's WebAssembly.Memory after the traced step and --steps more: the allocator's high-water mark, which never shrinks",
      "simulated_heap: the program run 3 times (each run's outputs freed after the next) through a model of jax-js's allocator before patch 7 (size classes, one free list each, patch 5's 2× reuse) and through first fit with splitting and coalescing (patch 7's, for every size); excludes the step's inputs and anything outside the program (its constants, the GEMM epilogues' scratch)",
    ],
  });
}

await main();
