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
 * tsx and the engine: what it prints with console.log, or the message and exit code the entry
 * (cli/main.ts) would give its failure.
 */
export async function inProcess(...args: string[]): Promise<CliResult> {
  const lines: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...x: unknown[]) => void lines.push(x.join(" ")));
  try {
    await runCli(args);
    return { code: 0, out: lines.join("\n"), err: "" };
  } catch (e) {
    const { text, exitCode } = describeFailure(e);
    return { code: exitCode, out: lines.join("\n"), err: text };
  } finally {
    log.mockRestore();
  }
}
