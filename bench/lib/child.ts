/** Child processes of the benches: an mmntp run per thread count, and the PyTorch reference. */
import { spawnSync } from "node:child_process";

/** The JSON object a child printed on its last stdout line. */
export function lastJsonLine<T>(stdout: string, what: string): T {
  const line = stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${what} printed no JSON on its last line:\n${stdout}`);
  }
}

/**
 * Run `script --child ...flags` in a fresh Node (same loader flags) with MMNTP_THREADS=`threads`
 * (and `env`) — jax-js fixes its pool when it loads, so each thread count needs its own process —
 * and return its JSON, after checking that it really ran on that many pool workers.
 */
export function runThreadsChild<R extends { pool: { workers_spawned: number }; error?: string }>(
  script: string,
  threads: number,
  flags: readonly string[],
  env: Readonly<Record<string, string>> = {},
): R {
  const out = spawnSync(process.execPath, [...process.execArgv, script, "--child", ...flags], {
    env: { ...process.env, ...env, MMNTP_THREADS: String(threads) },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 2 ** 20,
  });
  const what = `bench child (${Object.entries({ ...env, MMNTP_THREADS: threads }).map(([k, v]) => `${k}=${v}`).join(" ")})`;
  if (out.status !== 0) throw new Error(`${what} failed with status ${out.status ?? out.signal}`);
  const result = lastJsonLine<R>(out.stdout, what);
  const expected = threads === 1 ? 0 : threads;
  // a child that reports an error (out of memory before its first pooled kernel) may have spawned none
  if (!result.error && result.pool.workers_spawned !== expected) throw new Error(`MMNTP_THREADS=${threads}: expected ${expected} pool workers, got ${result.pool.workers_spawned}`);
  return result;
}

/** Why `python` cannot run the reference (it cannot import torch), or undefined if it can. */
export function torchMissing(python: string): string | undefined {
  const out = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
  return out.status === 0 ? undefined : `${python} cannot import torch: ${(out.error?.message ?? out.stderr).trim().split("\n").at(-1)}`;
}
