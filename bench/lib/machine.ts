/** Where and with what a benchmark ran: CPU, cores, load, Node and jax-js versions. Jax-free. */
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { createRequire } from "node:module";

export type MachineInfo = { cpu: string; cores: number; cpu_mhz: number; simd: string };
export type Versions = { node: string; jax_js: string };

/** CPU model and MHz from /proc/cpuinfo (Linux), falling back to `os.cpus()`. */
export function machineInfo(): MachineInfo {
  let text = "";
  try {
    text = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    // not Linux: os.cpus() below
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, "m").exec(text)?.[1]?.trim();
  const flags = new Set((field("flags") ?? "").split(/\s+/));
  const simd = flags.has("avx512f") ? "avx512" : flags.has("avx2") ? "avx2" : flags.has("neon") || flags.has("asimd") ? "neon" : "unknown";
  return {
    cpu: field("model name") ?? cpus()[0]?.model ?? "unknown",
    cores: availableParallelism(),
    cpu_mhz: Math.round(Number(field("cpu MHz") ?? cpus()[0]?.speed ?? 0)),
    simd,
  };
}

export function versions(): Versions {
  const require = createRequire(import.meta.url);
  // The package's exports map hides package.json; resolve the entry and walk up to it.
  const entry = require.resolve("@jax-js/jax");
  const pkg = JSON.parse(readFileSync(entry.replace(/dist\/[^/]+$/, "package.json"), "utf8")) as { version: string };
  return { node: process.version, jax_js: pkg.version };
}

/** 1-, 5- and 15-minute load averages, rounded: how shared the machine was. */
export const loadAverage = (): number[] => loadavg().map((x) => Number(x.toFixed(2)));

const CLOCK_TICKS_PER_S = 100; // USER_HZ, 100 on every Linux we target

/**
 * CPU seconds (user + system) used by this process's waited-for children so far, from
 * /proc/self/stat's cutime + cstime; undefined off Linux. The difference around a
 * `spawnSync` is that child's CPU time, which over its wall time tells how many cores it kept busy.
 */
export function childrenCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
    return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_S; // fields 16, 17
  } catch {
    return undefined;
  }
}

/** The benchmark date, ISO yyyy-mm-dd, in UTC. */
export const today = (): string => new Date().toISOString().slice(0, 10);

export const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** The arithmetic mean of `xs`. */
export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** CPU seconds (user + system) per thread of this process, by thread id, from /proc/self/task; empty off Linux. */
export function threadCpuSeconds(): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S); // fields 14, 15
    }
  } catch {
    // not Linux, or a thread ended while being read
  }
  return out;
}

/**
 * Where the CPU time between two `threadCpuSeconds()` snapshots went: the main thread's
 * seconds and the three busiest other threads' (jax-js's pool workers, when it has one).
 */
export function threadCpuSplit(before: Map<number, number>, after: Map<number, number>): { main_s: number; busiest_other_s: number[] } {
  const delta = [...after].map(([tid, s]) => [tid, s - (before.get(tid) ?? 0)] as const);
  const others = delta.filter(([tid]) => tid !== process.pid).map(([, s]) => round(s)).sort((a, b) => b - a);
  return { main_s: round(delta.find(([tid]) => tid === process.pid)?.[1] ?? 0), busiest_other_s: others.slice(0, 3) };
}
