/**
 * Tiny-GPT throughput, mmntp vs PyTorch and ONNX Runtime in the same run: training tokens/s
 * (jitted `Trainer.step`, AdamW) and KV-cached greedy decoding tokens/s (`Decoder`) at batch 1 and
 * batch 8, for reference/torch_gpt_bench.py's shape, built from mmntp's `initTransformer` /
 * `nextTokenLoss` / `Trainer` / `Decoder`. The ONNX Runtime anchor (bench/lib/onnx.ts) decodes the
 * same shape exported by reference/torch_gpt_onnx.py, whose weights mmntp also loads to show that
 * the three engines' greedy tokens agree.
 *
 *   npm run bench:backbone                         # wasm and native, 1 and 2 threads + PyTorch twice, ~8 min
 *   npm run bench:backbone -- --steps 3 --no-reference --engines native
 *
 * Each engine (jax-js's wasm kernels alone, or with its matmuls on mmntp's native GEMM,
 * src/engine/native.ts) and thread count runs in a child process (MMNTP_NATIVE and
 * MMNTP_THREADS are read when the engine loads). The
 * PyTorch reference (when /usr/bin/python3 imports torch) runs before and after the mmntp
 * children, so the machine's load is sampled on both sides; ratios use the mean of the two. So
 * does ONNX Runtime (onnxruntime-node, a devDependency), one child per intra-op thread count.
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { engineMemoryBytes as wasmMemoryBytes, startEngine } from "../src/engine/node.ts";
import { nativeStats, type NativeStats } from "../src/engine/native.ts";
import { engineWorkerStats } from "../src/engine/workers.ts";
import type { TransformerParams } from "../src/backbone/transformer.ts";
import { Decoder } from "../src/generate/decode.ts";
import { NativeDecoder, nativeDecoderMissing } from "../src/generate/native-decoder.ts";
import { GREEDY } from "../src/generate/sampling.ts";
import { benchArgs, ENGINE_ENV, engineList, positiveInt, printReport, threadList, type EngineName } from "./lib/cli.ts";
import { lastJsonLine, runThreadsChild, torchMissing } from "./lib/child.ts";
import { DECODE_CALLS, DECODE_WARMUP_CALLS, exportOnnx, greedyVsTorch, onnxSection, ortChild, runOrtChild, timeDecoderBatches, type BatchDecode, type GreedyCheck, type OrtResult, type OrtSection } from "./lib/onnx.ts";
import { BATCH, benchTrainer, deviceBatch, flopsPerToken, GPT, LR, peakGflops, syntheticTokens, TORCH_ADAMW, type ParamCounts } from "./lib/gpt.ts";
import { childrenCpuSeconds, loadAverage, machineInfo, mean, median, round, threadCpuSeconds, threadCpuSplit, today, versions } from "./lib/machine.ts";

const SPEC = {
  usage: "npm run bench:backbone --",
  description: "Tiny-GPT training and KV-cached greedy decoding throughput, mmntp (jax-js wasm) vs PyTorch CPU. One JSON object on stdout.",
  options: [
    { name: "steps", type: "number", default: 10, help: "timed training steps per run (the reference times as many)" },
    { name: "warmup", type: "number", default: 2, help: "untimed training steps first, the first compiles (the reference warms up 2)" },
    { name: "decode", type: "number", default: 128, help: "tokens decoded per timed generate call (batch 1, greedy)" },
    { name: "threads", type: "string", default: "1,2", help: "MMNTP_THREADS values, one child process each" },
    { name: "engines", type: "string", default: "wasm,native", help: "wasm (jax-js kernels) and/or native (matmuls on mmntp's native GEMM), one child each" },
    { name: "reference", type: "boolean", default: true, help: "run reference/torch_gpt_bench.py before and after (--no-reference skips it)" },
    { name: "batches", type: "string", default: "8", help: "batch sizes decoded besides batch 1 (every row greedy from token 0), by mmntp and ONNX Runtime" },
    { name: "onnx", type: "boolean", default: true, help: "export the model to ONNX and time ONNX Runtime before and after (needs torch; --no-onnx skips it)" },
    { name: "lean", type: "boolean", default: true, help: "memory-lean GELU and softmax, the engine's default (--no-lean: jax-js's own, MMNTP_LEAN_ACTIVATIONS=0)" },
    { name: "python", type: "string", default: "/usr/bin/python3", help: "interpreter with torch for the reference" },
    { name: "peak-gflops", type: "number", help: "machine fp32 peak for % of peak (else MMNTP_PEAK_GFLOPS, else 256, nominal)" },
    { name: "child", type: "boolean", help: "internal: measure in this process and print its JSON" },
    { name: "ort-child", type: "boolean", help: "internal: time ONNX Runtime in this process and print its JSON" },
    { name: "ort-threads", type: "number", default: 1, help: "internal: the ONNX Runtime child's intra-op threads" },
    { name: "onnx-dir", type: "string", help: "internal: the export the children read" },
  ],
} as const;

type Options = { steps: number; warmup: number; decode: number; batches: number[]; onnxDir?: string; lean?: boolean };

type ChildResult = {
  engine: EngineName;
  native: NativeStats;
  threads: number;
  pool: { workers_spawned: number; requests_answered: number };
  params: ParamCounts;
  train: {
    tokens_per_s: number;
    tokens_per_s_median_step: number;
    tokens_per_cpu_s: number;
    step_ms: { median: number; min: number; max: number };
    first_step_s: number;
    compile_s: number;
    cpu_cores_busy: number;
    thread_cpu: ReturnType<typeof threadCpuSplit>;
    loss_first: number;
    loss_last: number;
  };
  decode_batched: BatchDecode[];
  /** Greedy decoding of the ONNX export's weights against PyTorch's tokens (when there is an export). */
  greedy_vs_torch?: GreedyCheck;
  /** The native engine's NativeDecoder (one native call per step): batch 1, then --batches; why not, where it cannot run. */
  native_step?: { decode: BatchDecode[]; greedy_vs_torch?: GreedyCheck } | { skipped: string };
  decode: { tokens: number; tokens_per_s: number; tokens_per_cpu_s: number; ms_per_token: number; calls_s: number[]; warmup_calls_s: number[]; first_call_s: number; compile_s: number; cpu_cores_busy: number; thread_cpu: ReturnType<typeof threadCpuSplit>; sample: number[] };
  memory: { peak_rss_mib: number; wasm_mib_after_warmup: number; wasm_mib_after_train: number; wasm_mib_end: number };
};

type ReferenceOutput = { engine: string; threads: number; params: number; train_tokens_per_s: number; decode_tokens_per_s: number; train_cpu_s: number; decode_cpu_s: number; peak_rss_mib: number };
type ReferenceRun = Omit<ReferenceOutput, "train_cpu_s" | "decode_cpu_s"> & {
  train_tokens_per_cpu_s: number;
  decode_tokens_per_cpu_s: number;
  train_cpu_cores_busy: number;
  decode_cpu_cores_busy: number;
  wall_s: number;
  process_cpu_cores_busy?: number;
};

const MIB = 2 ** 20;
const log = (msg: string) => process.stderr.write(`[bench:backbone] ${msg}\n`);


/** Seconds and process CPU seconds (all threads) taken by `run`. */
async function measure<T>(run: () => Promise<T>): Promise<{ value: T; s: number; cpu_s: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await run();
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { value, s, cpu_s: (cpu.user + cpu.system) / 1e6 };
}

async function child(opts: Options): Promise<void> {
  await startEngine();
  const { trainer, counts } = benchTrainer();
  const host = syntheticTokens();
  const step = () => trainer.step(deviceBatch(host), LR);

  const first = await measure(step);
  log(`threads ${process.env.MMNTP_THREADS ?? 1}: first step (compile + run) ${first.s.toFixed(1)} s`);
  for (let i = 1; i < opts.warmup; i++) await step();
  const wasmAfterWarmup = wasmMemoryBytes();
  const times: number[] = [];
  const losses: number[] = [];
  const trainThreads0 = threadCpuSeconds();
  const timed = await measure(async () => {
    for (let i = 0; i < opts.steps; i++) {
      const t0 = performance.now();
      losses.push((await step()).loss);
      times.push(performance.now() - t0);
      log(`  step ${i + 1}/${opts.steps}: ${times[i].toFixed(0)} ms, loss ${losses[i].toFixed(3)}`);
    }
  });
  const trainThreads = threadCpuSplit(trainThreads0, threadCpuSeconds());
  const wasmAfterTrain = wasmMemoryBytes();
  const stepMs = median(times);

  const decoder = new Decoder(trainer.params as TransformerParams, GPT);
  const generate = (n: number) => decoder.generate([[0]], n, { sampling: GREEDY });
  const warmTokens = 2;
  const decodeFirst = await measure(() => generate(warmTokens)); // compiles the [1, 1] step
  const warmupCalls: number[] = [];
  for (let i = 0; i < DECODE_WARMUP_CALLS; i++) warmupCalls.push((await measure(() => generate(opts.decode))).s);
  const calls: Awaited<ReturnType<typeof measure<number[][]>>>[] = [];
  const decodeThreads0 = threadCpuSeconds();
  for (let i = 0; i < DECODE_CALLS; i++) calls.push(await measure(() => generate(opts.decode)));
  const decodeThreads = threadCpuSplit(decodeThreads0, threadCpuSeconds());
  const decoded = [...calls].sort((a, b) => a.s - b.s)[DECODE_CALLS >> 1];
  const msPerToken = (decoded.s * 1000) / opts.decode;
  log(`  decode: ${opts.decode} tokens in ${calls.map((c) => c.s.toFixed(2)).join(", ")} s (untimed warm-up: ${warmupCalls.map((s) => s.toFixed(2)).join(", ")} s)`);
  const batched = await timeDecoderBatches(decoder, opts.batches, opts.decode, (d) => log(`  decode at batch ${d.batch}: ${d.tokens_per_s_per_sequence} tokens/s per sequence`));
  decoder.dispose();
  const nativeStep = nativeStats().enabled ? await timeNativeStep(trainer.params as TransformerParams, opts) : undefined;
  trainer.dispose();
  const greedy = opts.onnxDir === undefined ? undefined : await greedyVsTorch(opts.onnxDir, opts.decode, (p) => new Decoder(p, GPT));

  const stats = engineWorkerStats();
  const result: ChildResult = {
    engine: nativeStats().enabled ? "native" : "wasm",
    native: nativeStats(),
    threads: stats.threads || 1,
    pool: { workers_spawned: stats.spawned, requests_answered: stats.answered },
    params: counts,
    decode_batched: batched,
    ...(greedy === undefined ? {} : { greedy_vs_torch: greedy }),
    ...(nativeStep === undefined ? {} : { native_step: nativeStep }),
    train: {
      tokens_per_s: round((opts.steps * BATCH * GPT.contextLength) / timed.s, 1),
      tokens_per_s_median_step: round((BATCH * GPT.contextLength) / (stepMs / 1000), 1),
      tokens_per_cpu_s: round((opts.steps * BATCH * GPT.contextLength) / timed.cpu_s, 1),
      step_ms: { median: round(stepMs, 1), min: round(Math.min(...times), 1), max: round(Math.max(...times), 1) },
      first_step_s: round(first.s),
      compile_s: round(first.s - stepMs / 1000),
      cpu_cores_busy: round(timed.cpu_s / timed.s),
      thread_cpu: trainThreads,
      loss_first: round(losses[0], 4),
      loss_last: round(losses[losses.length - 1], 4),
    },
    decode: {
      tokens: opts.decode,
      tokens_per_s: round(opts.decode / decoded.s, 1),
      tokens_per_cpu_s: round(opts.decode / decoded.cpu_s, 1),
      ms_per_token: round(msPerToken),
      calls_s: calls.map((c) => round(c.s, 3)),
      warmup_calls_s: warmupCalls.map((c) => round(c, 3)),
      first_call_s: round(decodeFirst.s),
      compile_s: round(decodeFirst.s - (warmTokens * msPerToken) / 1000),
      cpu_cores_busy: round(decoded.cpu_s / decoded.s),
      thread_cpu: decodeThreads,
      sample: decoded.value[0].slice(0, 8),
    },
    memory: {
      peak_rss_mib: round((process.resourceUsage().maxRSS * 1024) / MIB, 1),
      wasm_mib_after_warmup: round(wasmAfterWarmup / MIB, 1),
      wasm_mib_after_train: round(wasmAfterTrain / MIB, 1),
      wasm_mib_end: round(wasmMemoryBytes() / MIB, 1),
    },
  };
  console.log(JSON.stringify(result));
}

/** NativeDecoder on the trained params at batch 1 and each of --batches, and its greedy tokens against PyTorch's. */
async function timeNativeStep(params: TransformerParams, opts: Options): Promise<NonNullable<ChildResult["native_step"]>> {
  const missing = nativeDecoderMissing();
  if (missing) return { skipped: missing };
  const decoder = await NativeDecoder.create(params, GPT);
  const decode = await timeDecoderBatches(decoder, [1, ...opts.batches], opts.decode, (d) => log(`  NativeDecoder at batch ${d.batch}: ${d.tokens_per_s_per_sequence} tokens/s per sequence`));
  decoder.dispose();
  const greedy = opts.onnxDir === undefined ? undefined : await greedyVsTorch(opts.onnxDir, opts.decode, (p) => NativeDecoder.create(p, GPT));
  return { decode, ...(greedy === undefined ? {} : { greedy_vs_torch: greedy }) };
}

function runChild(engine: EngineName, threads: number, opts: Options): ChildResult {
  const flags = ["--steps", opts.steps, "--warmup", opts.warmup, "--decode", opts.decode, "--batches", opts.batches.join(",")].map(String);
  if (opts.onnxDir !== undefined) flags.push("--onnx-dir", opts.onnxDir);
  const env = { ...ENGINE_ENV[engine], MMNTP_LEAN_ACTIVATIONS: opts.lean ? "1" : "0" };
  const result = runThreadsChild<ChildResult>(fileURLToPath(import.meta.url), threads, flags, env);
  if (result.engine !== engine) throw new Error(`asked for the ${engine} engine, the child ran ${result.engine}: ${result.native.reason ?? ""}`);
  return result;
}

function runReference(python: string, opts: Options): ReferenceRun {
  const script = fileURLToPath(new URL("../reference/torch_gpt_bench.py", import.meta.url));
  const cpu0 = childrenCpuSeconds();
  const t0 = performance.now();
  const out = spawnSync(python, [script, "--steps", String(opts.steps), "--decode", String(opts.decode)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = childrenCpuSeconds();
  if (out.status !== 0) throw new Error(`reference failed with status ${out.status ?? out.signal}`);
  const r = lastJsonLine<ReferenceOutput>(out.stdout, "reference");
  const trainTokens = opts.steps * BATCH * GPT.contextLength;
  const decodeTokens = opts.decode - 1; // the reference times the steps after its 1-token prefill
  const run: ReferenceRun = {
    engine: r.engine,
    threads: r.threads,
    params: r.params,
    train_tokens_per_s: r.train_tokens_per_s,
    decode_tokens_per_s: r.decode_tokens_per_s,
    peak_rss_mib: r.peak_rss_mib,
    train_tokens_per_cpu_s: round(trainTokens / r.train_cpu_s, 1),
    decode_tokens_per_cpu_s: round(decodeTokens / r.decode_cpu_s, 1),
    train_cpu_cores_busy: round((r.train_cpu_s * r.train_tokens_per_s) / trainTokens),
    decode_cpu_cores_busy: round((r.decode_cpu_s * r.decode_tokens_per_s) / decodeTokens),
    wall_s: round(wall, 1),
  };
  if (cpu0 !== undefined && cpu1 !== undefined) run.process_cpu_cores_busy = round((cpu1 - cpu0) / wall);
  log(`reference: train ${r.train_tokens_per_s} tok/s, decode ${r.decode_tokens_per_s} tok/s`);
  return run;
}

/** (max − min) / mean, in %: how far apart repeated runs landed. */
const spreadPct = (xs: number[]) => round((100 * (Math.max(...xs) - Math.min(...xs))) / mean(xs), 1);

function parent(opts: Options & { engines: EngineName[]; threads: number[]; reference: boolean; onnx: boolean; python: string; peak: number | undefined }): void {
  const peak = peakGflops(opts.peak);
  const loadStart = loadAverage();
  const torchWhy = torchMissing(opts.python);
  const missing = opts.reference ? torchWhy : "--no-reference";
  const onnxMissing = opts.onnx ? torchWhy : "--no-onnx";
  const refRuns: ReferenceRun[] = [];
  const ortRuns: OrtResult[] = [];
  const exp = onnxMissing === undefined ? exportOnnx(opts.python, opts.decode + 1) : undefined;
  const ortAll = (when: string) => {
    for (const t of exp ? opts.threads : []) {
      log(`ONNX Runtime (${when}), ${t} intra-op threads`);
      ortRuns.push(runOrtChild(fileURLToPath(import.meta.url), exp!.dir, t, opts.decode, [1, ...opts.batches]));
    }
  };
  try {
    if (missing === undefined) {
      log("reference (before)");
      refRuns.push(runReference(opts.python, opts));
    }
    ortAll("before");
    const runs = opts.engines.flatMap((engine) =>
      opts.threads.map((t) => {
        log(`mmntp, ${engine}, MMNTP_THREADS=${t}`);
        return runChild(engine, t, { ...opts, onnxDir: exp?.dir });
      }),
    );
    ortAll("after");
    if (missing === undefined) {
      log("reference (after)");
      refRuns.push(runReference(opts.python, opts));
    }
    report(opts, peak, loadStart, runs, refRuns, missing, exp === undefined ? { skipped: onnxMissing! } : { runs: ortRuns, torchTokens: exp.torchTokens.length });
  } finally {
    exp?.dispose();
  }
}

function report(
  opts: Options & { engines: EngineName[]; threads: number[] },
  peak: ReturnType<typeof peakGflops>,
  loadStart: ReturnType<typeof loadAverage>,
  runs: ChildResult[],
  refRuns: ReferenceRun[],
  missing: string | undefined,
  ort: OrtSection,
): void {

  const counts = runs[0].params;
  const flops = flopsPerToken(counts);
  const pct = (tokensPerS: number, flopsPerTok: number) => ({
    gflops: round((tokensPerS * flopsPerTok) / 1e9),
    pct_of_peak: round((100 * tokensPerS * flopsPerTok) / 1e9 / peak.gflops, 2),
  });
  const refMean = (pick: (r: ReferenceRun) => number) => (refRuns.length > 0 ? mean(refRuns.map(pick)) : undefined);
  const ref = {
    train: refMean((r) => r.train_tokens_per_s),
    decode: refMean((r) => r.decode_tokens_per_s),
    trainCpu: refMean((r) => r.train_tokens_per_cpu_s),
    decodeCpu: refMean((r) => r.decode_tokens_per_cpu_s),
  };
  const summary = (tps: number, perCpu: number, flopsPerTok: number, pick: (r: ReferenceRun) => number) => ({
    tokens_per_s: round(tps, 1),
    tokens_per_cpu_s: round(perCpu, 1),
    ms_per_token: round(1000 / tps, 3),
    spread_pct: spreadPct(refRuns.map(pick)),
    ...pct(tps, flopsPerTok),
  });
  const reference =
    ref.train === undefined || ref.decode === undefined || ref.trainCpu === undefined || ref.decodeCpu === undefined
      ? { skipped: missing }
      : {
          engine: refRuns[0].engine,
          torch_threads: refRuns[0].threads,
          params: refRuns[0].params,
          runs: refRuns,
          train: summary(ref.train, ref.trainCpu, flops.train, (r) => r.train_tokens_per_s),
          decode: summary(ref.decode, ref.decodeCpu, flops.decode, (r) => r.decode_tokens_per_s),
        };
  const ratio = (a: number, b: number | undefined) => (b === undefined ? undefined : round(a / b, 3));
  const ratios =
    refRuns.length === 0
      ? undefined
      : Object.fromEntries(
          runs.map((r) => [
            `${r.engine}_threads_${r.threads}`,
            {
              train: ratio(r.train.tokens_per_s, ref.train),
              decode: ratio(r.decode.tokens_per_s, ref.decode),
              train_per_cpu_s: ratio(r.train.tokens_per_cpu_s, ref.trainCpu),
              decode_per_cpu_s: ratio(r.decode.tokens_per_cpu_s, ref.decodeCpu),
            },
          ]),
        );

  const report = {
    date: today(),
    machine: { ...machineInfo(), load_avg_start: loadStart, load_avg_end: loadAverage() },
    versions: { ...versions(), torch: refRuns[0]?.engine },
    model: {
      ...GPT,
      batch: BATCH,
      params: counts.total,
      params_non_embedding: counts.nonEmbedding,
      train_flops_per_token: flops.train,
      decode_flops_per_token: flops.decode,
      flops_note: "train 6·N + 12·L·D·T, decode 2·N, N without the embedding tables (PaLM app. B)",
    },
    settings: { steps: opts.steps, warmup: opts.warmup, decode_tokens: opts.decode, lean_activations: opts.lean === true, optimizer: { ...TORCH_ADAMW, lr: LR }, peak_gflops: peak.gflops, peak_source: peak.source },
    mmntp: runs.map((r) => ({ ...r, params: undefined, train: { ...r.train, ...pct(r.train.tokens_per_s, flops.train) }, decode: { ...r.decode, ...pct(r.decode.tokens_per_s, flops.decode) } })),
    reference,
    ratios_mmntp_over_torch: ratios,
    // each mmntp child's peak RSS over PyTorch's (the larger of its two runs): training and decoding in both
    peak_rss_mmntp_over_torch:
      refRuns.length === 0 ? undefined : Object.fromEntries(runs.map((r) => [`${r.engine}_threads_${r.threads}`, round(r.memory.peak_rss_mib / Math.max(...refRuns.map((x) => x.peak_rss_mib)), 3)])),
    ...(({ onnxruntime, ratios }) => ({ onnxruntime, ratios_mmntp_over_onnxruntime: ratios }))(onnxSection(ort, runs)),
    method: [
      "training tokens/s = steps·batch·ctx / wall time of the timed steps (each Trainer.step awaits loss and grad norm); compile_s = first step − median step",
      "decode tokens/s = tokens / wall time of Decoder.generate([[0]], tokens, greedy), median of 5 calls after a 2-token call (which compiles) and 2 untimed full-length calls (warm-up); each token is one jitted [1,1] step over the full 256-slot cache plus a host readback; the reference times 127 steps over a growing cache",
      "cpu_cores_busy = process CPU time (all threads) / wall time over the timed part (the reference reports its own CPU time per loop; process_cpu_cores_busy is its whole process, from /proc/self/stat cutime+cstime); tokens_per_cpu_s and the *_per_cpu_s ratios divide by CPU time instead of wall time, which is less sensitive to other jobs taking the cores; thread_cpu splits the timed part's CPU seconds into the main thread and the busiest other threads (the pool's workers), from /proc/self/task",
      "wasm_mib = byteLength of jax-js's WebAssembly.Memory (captured by wrapping the constructor before jax-js loads): the allocator's high-water mark, it never shrinks; peak_rss from process.resourceUsage().maxRSS",
      "the machine is shared with other jobs: compare ratios within one run; reference.spread_pct shows how far its before/after runs differ",
    ],
  };
  printReport(report);
}

function main(): Promise<void> | void {
  const v = benchArgs(SPEC);
  if (!v) return;
  const batches = v.batches.split(",").map((s) => positiveInt("batches", Number(s)));
  const opts: Options = { steps: positiveInt("steps", v.steps), warmup: positiveInt("warmup", v.warmup), decode: positiveInt("decode", v.decode, 2), batches, onnxDir: v["onnx-dir"] };
  if (opts.decode + 1 > GPT.contextLength) throw new Error(`--decode must be < ${GPT.contextLength} (the context), got ${opts.decode}`);
  if (v["ort-child"]) return ortChild(v["onnx-dir"]!, positiveInt("ort-threads", v["ort-threads"]), opts.decode, batches).then((r) => console.log(JSON.stringify(r)));
  if (v.child) return child(opts);
  const threads = threadList(v.threads);
  parent({ ...opts, lean: v.lean, engines: engineList(v.engines), threads, reference: v.reference, onnx: v.onnx, python: v.python, peak: v["peak-gflops"] });
}

await main();
