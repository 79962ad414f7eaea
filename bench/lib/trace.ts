/**
 * Per-kernel timings from jax-js's profiler (0.1.25, `profiler.startTrace/stopTrace`).
 *
 * While tracing, the wasm backend wraps every dispatch (inside `jit` too) in a
 * `performance.measure` whose detail carries the kernel's size, reduction and expression.
 * Without the worker pool (MMNTP_THREADS=1) a dispatch runs the kernel to completion on the
 * calling thread, so a measure is that kernel's time, including the per-dispatch
 * `new WebAssembly.Instance`. With the pool it would time only the hand-off to a worker.
 *
 * A kernel's expression shows which arrays it reads, not which model op it came from, so
 * kernels are grouped by signature (kind, output shape, contraction length K); `candidates`
 * lists the model ops with that signature.
 */
import { profiler } from "@jax-js/jax";

export type KernelKind = "contraction" | "reduction" | "elementwise" | "routine";

export type KernelRecord = {
  kind: KernelKind;
  ms: number;
  /** Output elements. */
  size: number;
  /** Contraction / reduction length. */
  k: number;
  /** Output shape, when the first array view gives it (contractions). */
  out?: number[];
  /** 2·size·K for contractions, else 0 (elementwise and reduction FLOPs are not counted). */
  flops: number;
  signature: string;
};

type DevtoolsDetail = { devtools?: { trackGroup?: string; properties?: [string, string][] } };

/** `GV_0<float32>{16,256,1024,256:65536,...}` → [16, 256, 1024, 256]: the view's shape. */
function firstViewShape(exp: string): number[] | undefined {
  const m = /GV_\d+<\w+>\{([\d,]+):/.exec(exp);
  return m ? m[1].split(",").map(Number) : undefined;
}

function classify(name: string, props: Record<string, string>, ms: number): KernelRecord {
  if (props.exp === undefined) {
    return { kind: "routine", ms, size: 0, k: 0, flops: 0, signature: `routine ${name} ${props.inputShapes ?? ""}` };
  }
  const size = Number(props.size);
  const [op, kText] = (props.reduction ?? "").split(":");
  const k = kText === undefined ? 1 : Number(kText);
  if (props.reduction === undefined) return { kind: "elementwise", ms, size, k: 1, flops: 0, signature: `elementwise n=${size}` };
  // Σ_k a·b over two different arrays: a matmul (or a dot such as logp·onehot).
  const arrays = new Set(props.exp.match(/GV_\d+/g) ?? []);
  if (op === "Add" && props.exp.includes(" * ") && arrays.size >= 2) {
    const view = firstViewShape(props.exp);
    const out = view && view.at(-1) === k && view.slice(0, -1).reduce((a, b) => a * b, 1) === size ? view.slice(0, -1) : undefined;
    return { kind: "contraction", ms, size, k, out, flops: 2 * size * k, signature: `matmul [${out?.join(",") ?? size}] K=${k}` };
  }
  return { kind: "reduction", ms, size, k, flops: 0, signature: `reduce ${op} n=${size} K=${k}` };
}

function collect(): KernelRecord[] {
  const kernels: KernelRecord[] = [];
  for (const entry of performance.getEntriesByType("measure")) {
    const detail = (entry as PerformanceMeasure).detail as DevtoolsDetail | null;
    if (detail?.devtools?.trackGroup !== "JAX Profiler") continue;
    kernels.push(classify(entry.name, Object.fromEntries(detail.devtools.properties ?? []), entry.duration));
  }
  performance.clearMeasures();
  return kernels;
}

/**
 * Runs `run` `reps` times with the profiler on. Each run must dispatch the same kernels in the
 * same order (one jitted step does); each kernel's time is its minimum over the runs, which
 * drops most of the time other processes took the core. `wallMs` is the fastest run's.
 */
export async function traceKernels(run: () => Promise<void>, reps = 1): Promise<{ kernels: KernelRecord[]; wallMs: number; cpuBusy: number }> {
  let best: KernelRecord[] | undefined;
  let wallMs = Infinity;
  let cpuBusy = 0;
  for (let r = 0; r < reps; r++) {
    performance.clearMeasures();
    const cpu0 = process.cpuUsage();
    profiler.startTrace();
    const t0 = performance.now();
    try {
      await run();
    } finally {
      profiler.stopTrace();
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (ms < wallMs) [wallMs, cpuBusy] = [ms, (cpu.user + cpu.system) / 1000 / ms];
    const kernels = collect();
    if (best === undefined) best = kernels;
    else if (best.length !== kernels.length || best.some((k, i) => k.signature !== kernels[i].signature)) {
      throw new Error(`traceKernels: run ${r + 1} dispatched different kernels (${kernels.length} vs ${best.length}); trace one jitted call per run`);
    } else best = best.map((k, i) => (kernels[i].ms < k.ms ? kernels[i] : k));
  }
  return { kernels: best ?? [], wallMs, cpuBusy };
}

/** A model op's contraction: an output of `shape`, each element a K-long dot product. */
export type OpSignature = { name: string; shape: number[]; k: number };

/** Same K, and the same output dims up to order and size-1 axes (kernels permute and squeeze). */
function matches(op: OpSignature, kernel: KernelRecord): boolean {
  if (kernel.kind !== "contraction" || op.k !== kernel.k) return false;
  const dims = (s: number[]) => s.filter((d) => d !== 1).sort((a, b) => a - b).join(",");
  if (kernel.out) return dims(op.shape) === dims(kernel.out);
  return op.shape.reduce((a, b) => a * b, 1) === kernel.size;
}

export type KernelGroup = { signature: string; kind: KernelKind; count: number; ms: number; pct: number; us_per_call: number; gflops?: number; candidates?: string };

/** Groups kernels by signature, slowest first; `pct` is of all traced kernel time. */
export function groupKernels(kernels: readonly KernelRecord[], ops: readonly OpSignature[]): KernelGroup[] {
  const total = kernels.reduce((t, k) => t + k.ms, 0);
  const groups = new Map<string, KernelRecord[]>();
  for (const k of kernels) groups.set(k.signature, [...(groups.get(k.signature) ?? []), k]);
  return [...groups.entries()]
    .map(([signature, ks]): KernelGroup => {
      const ms = ks.reduce((t, k) => t + k.ms, 0);
      const flops = ks.reduce((t, k) => t + k.flops, 0);
      const first = ks[0];
      const names = [...new Set(ops.filter((o) => matches(o, first)).map((o) => o.name))];
      return {
        signature,
        kind: first.kind,
        count: ks.length,
        ms: round(ms),
        pct: round((100 * ms) / total, 1),
        us_per_call: round((1000 * ms) / ks.length, 0),
        ...(flops > 0 ? { gflops: round(flops / ms / 1e6, 1) } : {}),
        ...(names.length > 0 ? { candidates: names.join(" / ") } : {}),
      };
    })
    .sort((a, b) => b.ms - a.ms);
}

export type KindSummary = { kind: KernelKind; count: number; ms: number; pct: number; gflops?: number };

export function summarizeKinds(kernels: readonly KernelRecord[]): KindSummary[] {
  const total = kernels.reduce((t, k) => t + k.ms, 0);
  const kinds: KernelKind[] = ["contraction", "reduction", "elementwise", "routine"];
  return kinds
    .map((kind) => {
      const ks = kernels.filter((k) => k.kind === kind);
      const ms = ks.reduce((t, k) => t + k.ms, 0);
      const flops = ks.reduce((t, k) => t + k.flops, 0);
      return { kind, count: ks.length, ms: round(ms), pct: round((100 * ms) / total, 1), ...(flops > 0 ? { gflops: round(flops / ms / 1e6, 1) } : {}) };
    })
    .filter((s) => s.count > 0);
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
