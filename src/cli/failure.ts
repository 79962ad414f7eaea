/**
 * What the CLI prints, and its exit status, when a command fails. Bad input (an InputError), the
 * system's refusals (a full disk, a permission: ENOSPC, EACCES) and a configuration too big for
 * the engine's memory (EngineMemoryError) are the user's to fix: the message alone, exit 1. Anything else is a bug in mmntp: it says so, with the stack to report,
 * and exits 70 (EX_SOFTWARE, sysexits.h), so scripts can tell the two apart too.
 */
import { EngineMemoryError } from "../engine/out-of-memory.ts";
import { InputError } from "../io/errors.ts";

export const INTERNAL_ERROR_EXIT = 70;

const isSystemError = (e: unknown): e is NodeJS.ErrnoException =>
  e instanceof Error && typeof (e as NodeJS.ErrnoException).syscall === "string" && /^E[A-Z]+$/.test(String((e as NodeJS.ErrnoException).code));

export function describeFailure(e: unknown): { text: string; exitCode: number } {
  if (e instanceof InputError || e instanceof EngineMemoryError || isSystemError(e)) return { text: `mmntp: ${e.message}`, exitCode: 1 };
  const detail = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
  return { text: `mmntp: internal error (a bug in mmntp, not a problem with your input; please report it with what follows):\n${detail}`, exitCode: INTERNAL_ERROR_EXIT };
}
