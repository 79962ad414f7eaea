import { spawnSync } from "node:child_process";
import { vi } from "vitest";
import { runCli } from "../../src/cli/commands.ts";
import { describeFailure } from "../../src/cli/failure.ts";

export type CliResult = { code: number | null; out: string; err: string };

/** Runs the real CLI entry (bin/mmntp.js) in a child process and captures its output. */
export function mmntp(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, ["bin/mmntp.js", ...args], { encoding: "utf8", env: opts.env, timeout: opts.timeout ?? 280_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/**
 * The same command in this process, where a spawned CLI would spend a second or more starting
 * tsx and the engine: what it prints to stdout (console.log) and to stderr (console.error and
 * console.warn; progress bars too), and on failure the message and exit code the entry
 * (cli/main.ts) would give it, after what it printed to stderr.
 */
export async function inProcess(...args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const line = (to: string[]) => (...x: unknown[]) => void to.push(`${x.join(" ")}\n`);
  const spies = [
    vi.spyOn(console, "log").mockImplementation(line(out)),
    vi.spyOn(console, "error").mockImplementation(line(err)),
    vi.spyOn(console, "warn").mockImplementation(line(err)),
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true)),
  ];
  const result = (code: number, failure = "") => ({ code, out: out.join(""), err: err.join("") + failure });
  try {
    await runCli(args);
    return result(0);
  } catch (e) {
    const { text, exitCode } = describeFailure(e);
    return result(exitCode, text);
  } finally {
    for (const s of spies) s.mockRestore();
  }
}
