/**
 * The native GEMM addon (native/*.c, `contract(mem, params)`) against torch.matmul on the
 * same shapes and layouts: the projections of bench:backbone's transformer (4096 tokens, D = 256,
 * MLP 1024) in the forward and backward layouts, batched attention products, and decode's M = 1
 * matrix-vector products. GFLOP/s per shape (µs per call for M = 1) at 1 and 2 threads, and the
 * addon's bare call overhead (M = N = K = 1).
 *
 *   npm run bench:gemm                              # all shapes, 3 rounds + PyTorch, ~2 min
 *   npm run bench:gemm -- --rounds 1 --only "M=1" --no-reference
 *
 * Each round times every shape on the addon at 1 and 2 threads, then torch.matmul in two Python
 * children (1 and 2 threads, OPENBLAS_NUM_THREADS and OMP_NUM_THREADS matched, since torch's
 * pthread OpenBLAS ignores set_num_threads), so both sides sample the machine's load alike;
 * the best round counts. After each timing, sampled entries of C are checked against a float64
 * reference. One JSON object on stdout; progress on stderr.
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { basename } from "node:path";
import { mulberry32, type Rng } from "../src/data/shuffle.ts";
import { batchOffsets, gemmParams, gemmWork, PARAM_A, PARAM_B, PARAM_C, type GemmLayout } from "../src/engine/gemm.ts";
import { ensureNativeBinary } from "../src/engine/native-build.ts";
import type { NativeKernels } from "../src/engine/native.ts";
import { benchArgs, positiveInt, printReport } from "./lib/cli.ts";
import { lastJsonLine, torchMissing } from "./lib/child.ts";
import { loadAverage, machineInfo, round, today, versions } from "./lib/machine.ts";

const SPEC = {
  usage: "npm run bench:gemm --",
  description: "Native GEMM addon (native/*.c) vs torch.matmul, GFLOP/s per shape at 1 and 2 threads. One JSON object on stdout.",
  options: [
    { name: "rounds", type: "number", default: 3, help: "rounds of every shape (native, then torch at 1 and 2 threads); the best counts" },
    { name: "only", type: "string", help: "run only the shapes whose name contains this text" },
    { name: "reference", type: "boolean", default: true, help: "time torch.matmul each round (--no-reference skips it)" },
    { name: "python", type: "string", default: "/usr/bin/python3", help: "interpreter with torch for the reference" },
  ],
} as const;

const THREADS = [1, 2] as const;
/** C entries compared with the float64 reference after each timing. */
const SAMPLES = 3000;
/** 128 MiB in 64-KiB pages, shared like jax-js's heap: room for the largest case (~26 MiB). */
const HEAP_PAGES = 2048;

// A case is a GemmLayout (src/engine/gemm.ts); the torch reference handles at most one batch dim.
/** A layout placed in the heap: element offsets of A, B and C. */
type Placed = GemmLayout & { readonly a: number; readonly b: number; readonly c: number };

/** Row-major [M, K] · [K, N] → [M, N]. */
const mm = (m: number, n: number, k: number): GemmLayout => ({ m, n, k, sam: k, sak: 1, sbk: n, sbn: 1, scm: n, scn: 1, batch: [] });
const batched = (count: number, g: GemmLayout): GemmLayout => ({ ...g, batch: [[count, g.m * g.k, g.k * g.n, g.m * g.n]] });

/** Names say the row-major operands; `^T` is a transposed view (strides swapped, no copy). */
const CASES: readonly (readonly [string, GemmLayout])[] = [
  ["[4096x256].[256x1024]", mm(4096, 1024, 256)],
  ["[4096x1024].[1024x256]", mm(4096, 256, 1024)],
  ["[4096x256].[256x768]", mm(4096, 768, 256)],
  ["[4096x256].[256x256]", mm(4096, 256, 256)],
  ["[4096x256]^T.[4096x1024]", { ...mm(256, 1024, 4096), sam: 1, sak: 256 }],
  ["[4096x1024]^T.[4096x256]", { ...mm(1024, 256, 4096), sam: 1, sak: 1024 }],
  ["[4096x1024].[256x1024]^T", { ...mm(4096, 256, 1024), sbk: 1, sbn: 1024 }],
  ["64x [256x64].[64x256]", batched(64, mm(256, 256, 64))],
  ["64x [256x64].[256x64]^T", batched(64, { ...mm(256, 256, 64), sbk: 1, sbn: 64 })],
  ["64x [256x256].[256x64]", batched(64, mm(256, 64, 256))],
  ["M=1 [1x256].[256x1024]", mm(1, 1024, 256)],
  ["M=1 [1x1024].[1024x256]", mm(1, 256, 1024)],
  ["M=1 [1x256].[256x768]", mm(1, 768, 256)],
  ["M=1 [1x256].[1024x256]^T", { ...mm(1, 1024, 256), sbk: 1, sbn: 256 }],
  ["M=1 [1x1024].[256x1024]^T", { ...mm(1, 256, 1024), sbk: 1, sbn: 1024 }],
];

const log = (msg: string) => process.stderr.write(`[bench:gemm] ${msg}\n`);
const batchCount = (g: GemmLayout) => g.batch.reduce((n, [count]) => n * count, 1);
const flops = (g: GemmLayout) => 2 * gemmWork(g);

/** `contract`'s params for a placed case. */
function contractParams(p: Placed, threads: number): Int32Array {
  const params = gemmParams(p, threads);
  params[PARAM_A] = p.a;
  params[PARAM_B] = p.b;
  params[PARAM_C] = p.c;
  return params;
}

/** Elements from the first to the last one addressed by `[size, stride]` dims. */
const span = (dims: readonly (readonly [number, number])[]) => 1 + dims.reduce((s, [n, st]) => s + Math.max(n - 1, 0) * st, 0);
const extents = (g: GemmLayout) => {
  const along = (which: 1 | 2 | 3) => g.batch.map((d): [number, number] => [d[0], d[which]]);
  return {
    a: span([[g.m, g.sam], [g.k, g.sak], ...along(1)]),
    b: span([[g.k, g.sbk], [g.n, g.sbn], ...along(2)]),
    c: span([[g.m, g.scm], [g.n, g.scn], ...along(3)]),
  };
};

/** Lay A, B, C out one after another (small odd gaps, so nothing is aligned by luck); A, B uniform in [−1, 1). */
function place(heap: Float32Array, g: GemmLayout, rng: Rng): Placed {
  const size = extents(g);
  const a = 3;
  const b = a + size.a + 5;
  const c = b + size.b + 7;
  if (c + size.c > heap.length) throw new Error(`case needs ${c + size.c} floats, the heap has ${heap.length}`);
  for (let i = a; i < a + size.a; i++) heap[i] = rng() * 2 - 1;
  for (let i = b; i < b + size.b; i++) heap[i] = rng() * 2 - 1;
  return { ...g, a, b, c };
}
const poisonC = (heap: Float32Array, p: Placed) => heap.fill(NaN, p.c, p.c + extents(p).c);

/** C[bi, m, n] as computed, and its float64 reference. */
function entry(heap: Float32Array, p: Placed, bi: number, m: number, n: number): { got: number; want: number } {
  const [da, db, dc] = batchOffsets(p.batch, bi);
  const [oa, ob, oc] = [p.a + da, p.b + db, p.c + dc];
  let want = 0;
  for (let k = 0; k < p.k; k++) want += heap[oa + m * p.sam + k * p.sak] * heap[ob + k * p.sbk + n * p.sbn];
  return { got: heap[oc + m * p.scm + n * p.scn], want };
}

/** Over `samples` random entries: max |c − ref| / max |ref|, and how many were not finite. */
function sampledError(heap: Float32Array, p: Placed, samples: number, rng: Rng): { relErr: number; nonfinite: number } {
  let errAbs = 0;
  let maxRef = 0;
  let nonfinite = 0;
  const pick = (n: number) => Math.floor(rng() * n);
  for (let s = 0; s < samples; s++) {
    const { got, want } = entry(heap, p, pick(batchCount(p)), pick(p.m), pick(p.n));
    if (!Number.isFinite(got)) nonfinite++;
    else errAbs = Math.max(errAbs, Math.abs(got - want));
    maxRef = Math.max(maxRef, Math.abs(want));
  }
  return { relErr: maxRef > 0 ? errAbs / maxRef : errAbs, nonfinite };
}

/** Seconds per call: the fastest of 5 trials, each the mean over reps sized to ~60 ms (as the Python side). */
function secondsPerCall(fn: () => void): number {
  fn();
  let t0 = performance.now();
  fn();
  const once = Math.max(performance.now() - t0, 1e-4);
  const reps = Math.max(1, Math.min(20_000, Math.round(60 / once)));
  let best = Infinity;
  for (let trial = 0; trial < 5; trial++) {
    t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  return best / 1000;
}

/** torch.matmul(a, b, out=c) on views with the cases' strides, timed like `secondsPerCall`. argv: cases JSON, threads. */
const TORCH_SCRIPT = String.raw`
import sys, json, time, torch
cases, threads = json.loads(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
def span(dims): return 1 + sum(max(n - 1, 0) * s for n, s in dims)
seconds = {}
for name, p in cases:
    # batch entries are [count, strideA, strideB, strideC]
    nb = p["batch"][0][0] if p["batch"] else 1
    bstride = lambda i: p["batch"][0][i] if p["batch"] else 0
    bdims = lambda i: [(d[0], d[i]) for d in p["batch"]]
    A = torch.randn(span([(p["m"], p["sam"]), (p["k"], p["sak"])] + bdims(1)))
    B = torch.randn(span([(p["k"], p["sbk"]), (p["n"], p["sbn"])] + bdims(2)))
    a = A.as_strided((nb, p["m"], p["k"]), (bstride(1), p["sam"], p["sak"]))
    b = B.as_strided((nb, p["k"], p["n"]), (bstride(2), p["sbk"], p["sbn"]))
    if not p["batch"]: a, b = a[0], b[0]
    c = torch.matmul(a, b)
    f = lambda: torch.matmul(a, b, out=c)
    f(); t0 = time.perf_counter(); f(); once = max(time.perf_counter() - t0, 1e-7)
    reps = max(1, min(20000, round(0.06 / once))); best = 1e9
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps): f()
        best = min(best, (time.perf_counter() - t0) / reps)
    seconds[name] = best
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "seconds": seconds}))
`;

type TorchRun = { torch: string; threads: number; seconds: Record<string, number> };

function runTorch(python: string, cases: readonly (readonly [string, GemmLayout])[], threads: number): TorchRun {
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const out = spawnSync(python, ["-c", TORCH_SCRIPT, JSON.stringify(cases), String(threads)], { encoding: "utf8", env, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 2 ** 24 });
  if (out.status !== 0) throw new Error(`torch reference (${threads} threads) failed with status ${out.status ?? out.signal}`);
  const run = lastJsonLine<TorchRun>(out.stdout, `torch reference (${threads} threads)`);
  if (run.threads !== threads) throw new Error(`torch reference ran on ${run.threads} threads, asked for ${threads}`);
  return run;
}

/** Fastest seconds seen per key. */
class Best {
  private readonly s = new Map<string, number>();
  add(key: string, seconds: number): void {
    this.s.set(key, Math.min(this.s.get(key) ?? Infinity, seconds));
  }
  get(key: string): number | undefined {
    return this.s.get(key);
  }
}
const key = (name: string, threads: number, who: "native" | "torch") => `${name}|${threads}|${who}`;
const perThreads = <T>(f: (threads: number) => T): Record<string, T> => Object.fromEntries(THREADS.map((t) => [`threads_${t}`, f(t)]));

function loadAddon(): { kernels: NativeKernels; path: string } {
  const binary = ensureNativeBinary();
  if ("reason" in binary) throw new Error(binary.reason);
  return { kernels: createRequire(import.meta.url)(binary.path) as NativeKernels, path: binary.path };
}

function bench(opts: { rounds: number; only: string | undefined; reference: boolean; python: string }): void {
  const cases = CASES.filter(([name]) => opts.only === undefined || name.includes(opts.only));
  if (cases.length === 0) throw new Error(`--only "${opts.only}" matches no shape; the shapes are:\n  ${CASES.map(([n]) => n).join("\n  ")}`);
  const loadStart = loadAverage();
  const { kernels, path } = loadAddon();
  const heap = new Float32Array(new WebAssembly.Memory({ initial: HEAP_PAGES, maximum: HEAP_PAGES, shared: true }).buffer);
  const rng = mulberry32(12345);
  const missing = opts.reference ? torchMissing(opts.python) : "--no-reference";
  if (missing !== undefined) log(`no torch reference: ${missing}`);

  const best = new Best();
  const errors = new Map<string, { relErr: number; nonfinite: number }>();
  let torchVersion: string | undefined;
  for (let r = 1; r <= opts.rounds; r++) {
    const overhead = place(heap, mm(1, 1, 1), rng);
    for (const t of THREADS) {
      const params = contractParams(overhead, t);
      best.add(key("overhead", t, "native"), secondsPerCall(() => kernels.contract(heap, params)));
    }
    for (const [name, g] of cases) {
      const p = place(heap, g, rng);
      for (const t of THREADS) {
        const params = contractParams(p, t);
        poisonC(heap, p);
        best.add(key(name, t, "native"), secondsPerCall(() => kernels.contract(heap, params)));
        const e = sampledError(heap, p, SAMPLES, rng);
        const prev = errors.get(name) ?? { relErr: 0, nonfinite: 0 };
        errors.set(name, { relErr: Math.max(prev.relErr, e.relErr), nonfinite: prev.nonfinite + e.nonfinite });
      }
      log(`round ${r}/${opts.rounds} native ${name}: ${THREADS.map((t) => `${t}T ${show(g, best.get(key(name, t, "native")))}`).join(", ")}`);
    }
    if (missing !== undefined) continue;
    for (const t of THREADS) {
      const run = runTorch(opts.python, cases, t);
      torchVersion = run.torch;
      for (const [name, s] of Object.entries(run.seconds)) best.add(key(name, t, "torch"), s);
      log(`round ${r}/${opts.rounds} torch ${t}T done`);
    }
  }

  const shapes = cases.map(([name, g]) => {
    const value = (t: number, who: "native" | "torch") => {
      const s = best.get(key(name, t, who));
      return s === undefined ? undefined : g.m === 1 ? round(s * 1e6, 1) : round(flops(g) / s / 1e9, 1);
    };
    const ratio = (t: number) => {
      const [ours, theirs] = [best.get(key(name, t, "native")), best.get(key(name, t, "torch"))];
      return ours === undefined || theirs === undefined ? undefined : round(theirs / ours, 3);
    };
    const err = errors.get(name) ?? { relErr: NaN, nonfinite: 0 };
    return {
      shape: name,
      m: g.m,
      n: g.n,
      k: g.k,
      batch: batchCount(g),
      unit: g.m === 1 ? "us_per_call" : "gflops",
      native: perThreads((t) => value(t, "native")),
      torch: missing === undefined ? perThreads((t) => value(t, "torch")) : undefined,
      native_over_torch: missing === undefined ? perThreads(ratio) : undefined,
      max_rel_err: Number(err.relErr.toPrecision(3)),
      nonfinite: err.nonfinite > 0 ? err.nonfinite : undefined,
    };
  });

  printReport({
    date: today(),
    machine: { ...machineInfo(), load_avg_start: loadStart, load_avg_end: loadAverage() },
    versions: { ...versions(), native_binary: basename(path), torch: torchVersion },
    settings: { rounds: opts.rounds, only: opts.only, threads: THREADS, samples_checked: SAMPLES, reference: missing === undefined ? { python: opts.python } : { skipped: missing } },
    call_overhead_us: perThreads((t) => round((best.get(key("overhead", t, "native")) ?? NaN) * 1e6, 3)),
    shapes,
    method: [
      "time per call = the fastest of 5 trials, each the mean over as many calls as take ~60 ms (native here, torch.matmul(a, b, out=c) in Python alike); best over rounds",
      "gflops = 2·M·N·K·batch / time; M = 1 rows give µs per call instead; call_overhead_us = one M = N = K = 1 call",
      "native_over_torch = torch time / native time at the same thread count (> 1: native faster), for µs rows too",
      "torch runs in a child per thread count with OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = set_num_threads = threads, after the native shapes in every round",
      `max_rel_err = max |c − ref| / max |ref| over ${SAMPLES} random entries of C after each timing (C is filled with NaN first), ref summed in float64; nonfinite counts entries left NaN or infinite`,
      "the machine may be shared with other jobs: compare ratios within one run",
    ],
  });
}

/** A best time as the report shows it: GFLOP/s, or µs per call for M = 1. */
const show = (g: GemmLayout, s: number | undefined) => (s === undefined ? "-" : g.m === 1 ? `${(s * 1e6).toFixed(1)} us` : `${(flops(g) / s / 1e9).toFixed(1)} GFLOP/s`);

function main(): void {
  const v = benchArgs(SPEC);
  if (!v) return;
  bench({ rounds: positiveInt("rounds", v.rounds), only: v.only, reference: v.reference, python: v.python });
}

main();
