/**
 * The project's one error for bad input: a file, a setting or an argument that mmntp does not
 * accept. Every reader and validator of user input throws it, naming what it can of the file, the
 * field, the value and what is allowed. The CLI prints its message alone and exits 1; any other
 * error that reaches the CLI is a bug in mmntp and is printed as an internal error with its stack,
 * so a user can tell the two apart. Browser-safe (no Node module).
 */
export type InputErrorDetails = {
  /** The file the bad input came from. */
  readonly file?: string;
  /** The field, option or setting, e.g. `model.json: layers` or `--seed`. */
  readonly field?: string;
  /** The value that was refused. */
  readonly value?: unknown;
  /** What is allowed, in words. */
  readonly expected?: string;
  /** The lower-level error this one explains (a zlib or JSON error, say). */
  readonly cause?: unknown;
};

export class InputError extends Error {
  override readonly name = "InputError";
  readonly file?: string;
  readonly field?: string;
  readonly value?: unknown;
  readonly expected?: string;

  constructor(message: string, details: InputErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    const { file, field, value, expected } = details;
    Object.assign(this, { file, field, value, expected });
  }
}

export const isInputError = (e: unknown): e is InputError => e instanceof InputError;

/**
 * Runs `check`, a validator of user input from a layer whose checks throw plain `Error`s (the
 * backbone's config checkers and sequence compiler, which library callers also use on their own
 * values), and rethrows its refusal as an InputError with the same message (after `prefix: `, when
 * given). Only a plain `Error` is converted: a TypeError or RangeError from inside a validator is a
 * bug and stays what it is.
 */
export function asInputError<T>(check: () => T, { prefix, ...details }: InputErrorDetails & { readonly prefix?: string } = {}): T {
  try {
    return check();
  } catch (e) {
    if (!(e instanceof Error) || e.constructor !== Error) throw e;
    throw new InputError(prefix === undefined ? e.message : `${prefix}: ${e.message}`, { ...details, cause: e });
  }
}

/**
 * The deepest nesting a JSON input may have. The project's own files nest at most 6 levels and
 * HF's tokenizer.json about 8; a limit is needed at all because JSON.parse reads 10⁵ levels while
 * JSON.stringify (in an error message, say) and recursive readers overflow the stack near 10⁴.
 */
export const MAX_JSON_DEPTH = 64;

/** Throws an InputError naming `what` when `value` (from JSON.parse) nests deeper than MAX_JSON_DEPTH; iterative, so it cannot overflow itself. */
export function checkJsonDepth(value: unknown, what: string): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > MAX_JSON_DEPTH) throw new InputError(`${what}: JSON nested more than ${MAX_JSON_DEPTH} levels deep`, { file: what, expected: `at most ${MAX_JSON_DEPTH} levels` });
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
}

/** JSON.parse of `text` from `what` (a file, usually), its refusals InputErrors: `<what>: invalid JSON: …`, or too deep. */
export function parseJson(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${what}: invalid JSON: ${(e as Error).message}`, { file: what, cause: e });
  }
  checkJsonDepth(value, what);
  return value;
}
