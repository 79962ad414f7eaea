/**
 * Quantizer encode throughput, mmntp vs PyTorch in the same run (vectors/s):
 * - VQ: nearest-code ids of N vectors [N, 64] against K = 1024 codes, by `encodeIds`
 *   (vq-encode.ts); GFLOP/s counts the 2·N·K·D of the distance matmul. Also timed in the same
 *   child: `vq.quantize(...).indices` per chunk (the path before encodeIds) on a subset, and
 *   the bare [K, D] @ [D, chunk] matmul that encodeIds runs per chunk, its roof.
 * - FSQ: levels [8, 5, 5, 5] on x [N, 4], `fsq.quantize` jitted (codes and ids).
 * - LFQ: d = 10, no entropy loss, `lfq.quantize` jitted (codes and ids).
 * reference/bench_quantizers.py does the same work in PyTorch.
 *
 *   npm run bench:quantizers                           # N = 1M, 1 and 2 threads + PyTorch
 *   npm run bench:quantizers -- --n 100000 --no-reference
 *
 * Each thread count runs in a child process (MMNTP_THREADS is read when jax-js loads). The
 * PyTorch reference (when /usr/bin/python3 imports torch) runs before and after the mmntp
 * children, so the machine's load is sampled on both sides; ratios use the mean of the two, and
 * for VQ the fastest of the reference's forms and chunk sizes. One JSON object on stdout;
 * progress on stderr.
 */
import { spawn, spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { engineMemoryBytes, fromHost, jit, np, startEngine, tree, type Array } from "../src/engine/node.ts";
import { hostRng } from "../src/engine/rng.ts";
import { engineWorkerStats } from "../src/engine/workers.ts";
import { benchArgs, positiveInt, printReport, threadList } from "./lib/cli.ts";
import { lastJsonLine, runThreadsChild, torchMissing } from "./lib/child.ts";
import { encodeIds } from "../src/tokenizers/quantizers/vq-encode.ts";
import { quantize as vqQuantize, type VQOptions, type VQParams } from "../src/tokenizers/quantizers/vq.ts";
import { DEFAULT_FSQ, quantize as fsqQuantize } from "../src/tokenizers/quantizers/fsq.ts";
import { DEFAULT_LFQ, quantize as lfqQuantize, type LFQOptions } from "../src/tokenizers/quantizers/lfq.ts";

const SPEC = {
  usage: "npm run bench:quantizers --",
  description: "VQ / FSQ / LFQ encode throughput, mmntp (jax-js wasm) vs PyTorch CPU. One JSON object on stdout.",
  options: [
    { name: "n", type: "number", default: 1_000_000, help: "vectors per quantizer" },
    { name: "chunk", type: "number", default: 4096, help: "VQ vectors per jitted call (encodeIds' chunk)" },
    { name: "reps", type: "number", default: 3, help: "timed passes of FSQ and LFQ (median); VQ: one full pass" },
    { name: "baseline-n", type: "number", default: 65536, help: "vectors for the vq.quantize baseline (it is slower)" },
    { name: "threads", type: "string", default: "1,2", help: "MMNTP_THREADS values, one child process each" },
    { name: "reference", type: "boolean", default: true, help: "run reference/bench_quantizers.py before and after (--no-reference skips it)" },
    { name: "python", type: "string", default: "/usr/bin/python3", help: "interpreter with torch for the reference" },
    { name: "child", type: "boolean", help: "internal: measure in this process and print its JSON" },
  ],
} as const;

const K = 1024;
const D = 64;
const VQ: VQOptions = { codebookSize: K, dim: D, beta: 0.25, distance: "l2" };
const LFQ: LFQOptions = { ...DEFAULT_LFQ, dim: 10, entropyWeight: 0 };

type Options = { n: number; chunk: number; reps: number; baselineN: number };
type Rate = { vectors_per_s: number; seconds: number };
type ChildResult = {
  threads: number;
  pool: { workers_spawned: number; requests_answered: number };
  vq: Rate & { gflops: number; chunk: number; first_call_s: number; cpu_cores_busy: number; ids_agree_with_quantize: number; sample: number[]; wasm_mib_after: number };
  vq_quantize_baseline: Rate & { gflops: number; n: number };
  vq_matmul_roof: { shape: string; gflops: number; ms_per_chunk: number };
  fsq: Rate & { first_call_s: number };
  lfq: Rate & { first_call_s: number };
  wasm_mib_end: number;
};
type ReferenceRun = {
  engine: string;
  threads: number;
  vq: { runs: { form: string; chunk: number; vectors_per_s: number; gflops: number }[]; best: { form: string; chunk: number; vectors_per_s: number; gflops: number } };
  fsq: { vectors_per_s: number };
  lfq: { vectors_per_s: number };
  wall_s?: number;
};

const log = (msg: string) => process.stderr.write(`[bench:quantizers] ${msg}\n`);
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** Uniform in [−scale, scale), like the reference's `(torch.rand(...) * 2 − 1) * scale`. */
function uniform(n: number, seed: number, scale = 1): Float32Array {
  const rng = hostRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() * 2 - 1) * scale;
  return out;
}

/** Seconds of one `run`, which must leave its work done (awaited). */
async function once(run: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await run();
  return seconds(t0);
}

/** Median seconds over `reps` runs after one warm-up run (which compiles); also the warm-up's. */
async function medianOf(reps: number, run: () => Promise<void>): Promise<{ s: number; first: number }> {
  const first = await once(run);
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push(await once(run));
  return { s: median(times), first };
}

async function benchVQ(opts: Options): Promise<Pick<ChildResult, "vq" | "vq_quantize_baseline" | "vq_matmul_roof">> {
  const params: VQParams = { codebook: fromHost(uniform(K * D, 1), [K, D]) };
  const x = fromHost(uniform(opts.n * D, 2), [opts.n, D]);
  const flop = (n: number) => 2 * n * K * D;

  // Warm-up: one full pass, as the reference does (compiles nearest, the input check and the concatenations).
  const first = await once(async () => {
    (await encodeIds(tree.ref(params), x.ref, VQ, { chunk: opts.chunk })).dispose();
  });
  log(`  vq: warm-up pass ${first.toFixed(2)} s`);
  let ids: Array | undefined;
  const cpu0 = process.cpuUsage();
  const s = await once(async () => {
    ids = await encodeIds(tree.ref(params), x.ref, VQ, { chunk: opts.chunk });
    await ids.blockUntilReady(); // the chunks are done; this runs the final concatenation
  });
  const cpu = process.cpuUsage(cpu0);
  log(`  vq: ${opts.n} vectors in ${s.toFixed(2)} s`);
  const heapAfterVq = engineMemoryBytes();
  const idsHost = (await ids!.data()) as Int32Array;

  // Before encodeIds: vq.quantize (distances with ‖z‖², np.argmin, one-hot codes, losses) per chunk, jitted.
  const bn = Math.min(opts.baselineN, opts.n);
  const chunkIds = jit((p: VQParams, xb: Array) => {
    const q = vqQuantize(p, xb, VQ);
    tree.dispose([q.codes, q.losses, q.stats]);
    return q.indices;
  });
  const baseline = async () => {
    const parts: Array[] = [];
    for (let i = 0; i + opts.chunk <= bn; i += opts.chunk) parts.push(chunkIds(tree.ref(params), x.ref.slice([i, i + opts.chunk])));
    const all = np.concatenate(parts);
    const host = (await all.data()) as Int32Array;
    baselineIds = host;
  };
  let baselineIds: Int32Array = new Int32Array(0);
  const bs = await medianOf(1, baseline);
  const bnDone = baselineIds.length;
  let agree = 0;
  for (let i = 0; i < bnDone; i++) agree += baselineIds[i] === idsHost[i] ? 1 : 0;
  chunkIds.dispose();
  log(`  vq.quantize baseline: ${bnDone} vectors in ${bs.s.toFixed(2)} s`);

  // The roof: the same [K, D] @ [D, chunk] matmul alone, on one chunk, repeated.
  const c2 = params.codebook.ref.mul(-2);
  const zt = x.ref.slice([0, opts.chunk]).transpose([1, 0]).add(0);
  const mm = jit((a: Array, b: Array) => np.matmul(a, b));
  const reps = Math.max(3, Math.round(40_000 / opts.chunk));
  const mmRun = async () => {
    const outs: Array[] = [];
    for (let i = 0; i < reps; i++) outs.push(mm(c2.ref, zt.ref));
    await Promise.all(outs.map((o) => o.blockUntilReady()));
    tree.dispose(outs);
  };
  const ms = await medianOf(3, mmRun);
  mm.dispose();
  tree.dispose([c2, zt, params, x]);

  return {
    vq: {
      vectors_per_s: round(opts.n / s, 1),
      seconds: round(s, 3),
      gflops: round(flop(opts.n) / s / 1e9),
      chunk: opts.chunk,
      first_call_s: round(first, 2),
      cpu_cores_busy: round((cpu.user + cpu.system) / 1e6 / s),
      ids_agree_with_quantize: round(agree / Math.max(1, bnDone), 6),
      sample: [...idsHost.subarray(0, 8)],
      wasm_mib_after: round(heapAfterVq / 2 ** 20, 1),
    },
    vq_quantize_baseline: { vectors_per_s: round(bnDone / bs.s, 1), seconds: round(bs.s, 3), gflops: round(flop(bnDone) / bs.s / 1e9), n: bnDone },
    vq_matmul_roof: { shape: `[${K},${D}]@[${D},${opts.chunk}]`, gflops: round((reps * 2 * K * D * opts.chunk) / ms.s / 1e9), ms_per_chunk: round((1000 * ms.s) / reps) },
  };
}

/** Jitted `quantize` (codes and ids) over all N vectors [N, dim] at once; median of reps. */
async function benchImplicit(dim: number, reps: number, n: number, seed: number, encode: (x: Array) => [Array, Array]): Promise<Rate & { first_call_s: number }> {
  const x = fromHost(uniform(n * dim, seed, 2), [n, dim]);
  const f = jit(encode);
  const { s, first } = await medianOf(reps, async () => {
    const [codes, ids] = f(x.ref);
    await Promise.all([codes.blockUntilReady(), ids.blockUntilReady()]);
    tree.dispose([codes, ids]);
  });
  f.dispose();
  x.dispose();
  return { vectors_per_s: round(n / s, 1), seconds: round(s, 4), first_call_s: round(first, 3) };
}

async function child(opts: Options): Promise<void> {
  await startEngine();
  log(`MMNTP_THREADS=${process.env.MMNTP_THREADS ?? 1}`);
  const vq = await benchVQ(opts);
  const fsq = await benchImplicit(DEFAULT_FSQ.levels.length, opts.reps, opts.n, 3, (x) => {
    const q = fsqQuantize({}, x, DEFAULT_FSQ);
    return [q.codes, q.indices];
  });
  log(`  fsq: ${fsq.vectors_per_s} vectors/s`);
  const lfq = await benchImplicit(LFQ.dim, opts.reps, opts.n, 4, (x) => {
    const q = lfqQuantize({}, x, LFQ);
    tree.dispose([q.losses, q.stats]);
    return [q.codes, q.indices];
  });
  log(`  lfq: ${lfq.vectors_per_s} vectors/s`);
  const stats = engineWorkerStats();
  const result: ChildResult = {
    threads: stats.threads || 1,
    pool: { workers_spawned: stats.spawned, requests_answered: stats.answered },
    ...vq,
    fsq,
    lfq,
    wasm_mib_end: round(engineMemoryBytes() / 2 ** 20, 1),
  };
  console.log(JSON.stringify(result));
}

const runChild = (threads: number, opts: Options): ChildResult =>
  runThreadsChild(fileURLToPath(import.meta.url), threads, ["--n", opts.n, "--chunk", opts.chunk, "--reps", opts.reps, "--baseline-n", opts.baselineN].map(String));


function runReference(python: string, opts: Options): ReferenceRun {
  const script = fileURLToPath(new URL("../reference/bench_quantizers.py", import.meta.url));
  const t0 = performance.now();
  const out = spawnSync(python, [script, "--n", String(opts.n), "--reps", String(opts.reps)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (out.status !== 0) throw new Error(`reference failed with status ${out.status ?? out.signal}`);
  const r = { ...lastJsonLine<ReferenceRun>(out.stdout, "reference"), wall_s: round(seconds(t0), 1) };
  log(`reference: vq ${r.vq.best.vectors_per_s} vectors/s (${r.vq.best.form}, chunk ${r.vq.best.chunk}), fsq ${r.fsq.vectors_per_s}, lfq ${r.lfq.vectors_per_s}`);
  return r;
}

/** A 1-second busy loop that prints the CPU share it got. */
const BUSY_LOOP = "const t = performance.now(), c = process.cpuUsage(); while (performance.now() - t < 1000); const u = process.cpuUsage(c); console.log((u.user + u.system) / 1000 / (performance.now() - t));";

/**
 * Cores this process can get now: the summed CPU share of `loops` concurrent busy loops (about
 * `loops` on an idle machine; about 1 when other jobs hold the rest). Threads beyond it can't help.
 */
async function probeCores(loops: number): Promise<number> {
  const share = () =>
    new Promise<number>((resolve, reject) => {
      const p = spawn(process.execPath, ["-e", BUSY_LOOP], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      p.stdout.on("data", (d: Buffer) => (out += d.toString()));
      p.on("error", reject);
      p.on("close", () => resolve(Number(out.trim())));
    });
  const running: Promise<number>[] = [];
  for (let i = 0; i < loops; i++) running.push(share());
  const shares = await Promise.all(running);
  return round(shares.reduce((a, b) => a + b, 0));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** (max − min) / mean, in %: how far apart the reference's before and after runs landed. */
const spreadPct = (xs: number[]) => round((100 * (Math.max(...xs) - Math.min(...xs))) / mean(xs), 1);

async function parent(opts: Options & { threads: number[]; reference: boolean; python: string }): Promise<void> {
  const loadStart = loadavg().map((l) => round(l));
  const loops = Math.max(2, ...opts.threads);
  const coresStart = await probeCores(loops);
  log(`cores available: ${coresStart} (${loops} busy loops)`);
  const missing = opts.reference ? torchMissing(opts.python) : "--no-reference";
  const refRuns: ReferenceRun[] = [];
  if (missing === undefined) {
    log("reference (before)");
    refRuns.push(runReference(opts.python, opts));
  }
  const runs = opts.threads.map((t) => {
    log(`mmntp, MMNTP_THREADS=${t}`);
    return runChild(t, opts);
  });
  if (missing === undefined) {
    log("reference (after)");
    refRuns.push(runReference(opts.python, opts));
  }
  const coresEnd = await probeCores(loops);
  const ref = (pick: (r: ReferenceRun) => number) => (refRuns.length > 0 ? { vectors_per_s: round(mean(refRuns.map(pick)), 1), spread_pct: spreadPct(refRuns.map(pick)) } : undefined);
  const refVq = ref((r) => r.vq.best.vectors_per_s);
  const refFsq = ref((r) => r.fsq.vectors_per_s);
  const refLfq = ref((r) => r.lfq.vectors_per_s);
  const ratio = (x: number, r: { vectors_per_s: number } | undefined) => (r === undefined ? undefined : round(x / r.vectors_per_s, 3));

  const report = {
    date: new Date().toISOString().slice(0, 10),
    machine: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, load_avg_start: loadStart, load_avg_end: loadavg().map((l) => round(l)), cores_available: { busy_loops: loops, start: coresStart, end: coresEnd } },
    versions: { node: process.version, torch: refRuns[0]?.engine },
    settings: { n: opts.n, vq: { codebook_size: K, dim: D, distance: VQ.distance, chunk: opts.chunk }, fsq: { levels: DEFAULT_FSQ.levels }, lfq: { dim: LFQ.dim, entropy_weight: 0 }, reps: opts.reps },
    mmntp: runs,
    reference:
      refRuns.length === 0
        ? { skipped: missing }
        : {
            engine: refRuns[0].engine,
            torch_threads: refRuns[0].threads,
            runs: refRuns,
            vq_best: { ...refVq, forms: refRuns.map((r) => `${r.vq.best.form}, chunk ${r.vq.best.chunk}`), gflops: round(mean(refRuns.map((r) => r.vq.best.gflops))) },
            fsq: refFsq,
            lfq: refLfq,
          },
    ratios_mmntp_over_torch:
      refRuns.length === 0
        ? undefined
        : Object.fromEntries(runs.map((r) => [`threads_${r.threads}`, { vq: ratio(r.vq.vectors_per_s, refVq), fsq: ratio(r.fsq.vectors_per_s, refFsq), lfq: ratio(r.lfq.vectors_per_s, refLfq) }])),
    method: [
      "vectors/s = N / wall time of one call from a device array to finished device ids (VQ: one encodeIds pass after a full warm-up pass that compiles, as the reference; FSQ/LFQ: median of reps jitted calls after a compiling one); the reference's inputs are likewise in memory and its VQ ids land in a preallocated tensor",
      "cpu_cores_busy = process CPU time (all threads) / wall time of the timed VQ pass: below the thread count, other jobs took the cores",
      "VQ GFLOP/s = 2·N·K·D / time (the distance matmul only); vq_matmul_roof = the same matmul alone per chunk, what encodeIds could reach with free argmin",
      "reference VQ = the fastest of its forms (addmm, cdist, vector-quantize-pytorch) and chunk sizes, mean of the runs before and after the mmntp children",
      "vq_quantize_baseline = vq.quantize(...).indices, jitted per chunk (the path before encodeIds), on the first baseline-n vectors; ids_agree_with_quantize compares its ids with encodeIds' there",
      "vq.wasm_mib_after = jax-js's wasm heap high-water mark after the two VQ passes (the input alone is N·64·4 bytes, 244 MiB at N = 1M); wasm_mib_end after everything",
      "cores_available = summed CPU share of concurrent 1-s busy loops (one per thread, at least 2) before and after: threads beyond it cannot speed anything up",
      "the machine is shared with other jobs: compare ratios within one run; reference spread_pct shows how far its before/after runs differ",
    ],
  };
  printReport(report);
}

function main(): Promise<void> | void {
  const v = benchArgs(SPEC);
  if (!v) return;
  const opts: Options = { n: positiveInt("n", v.n), chunk: positiveInt("chunk", v.chunk), reps: positiveInt("reps", v.reps), baselineN: positiveInt("baseline-n", v["baseline-n"]) };
  if (v.child) return child(opts);
  const threads = threadList(v.threads);
  return parent({ ...opts, threads, reference: v.reference, python: v.python });
}

await main();
