/**
 * Running out of engine memory, said in words. jax-js keeps every array in one 32-bit wasm
 * memory, so a configuration too big for it ends in a bare RangeError from deep inside a kernel
 * dispatch ("Allocation exceeds the 4 GiB memory32 limit", or the browser's own "could not
 * allocate memory"). `engineMemoryError` turns such an error into an `EngineMemoryError` that says
 * what was running (the caller's description: the model, the batch), how much the heap held, and
 * what it needed, so the user can tell a too-big batch from a bug. Browser-safe: the heap size
 * comes from a probe that `memory.ts` registers in Node; without it the sizes are left out.
 */

/** 32-bit wasm addresses at most 4 GiB (jax-js's `MAX_MEMORY32_BYTES`). */
export const WASM32_LIMIT_BYTES = 2 ** 32;

export type EngineMemoryDetails = {
  /** What was running, e.g. "a training step of speech transformer (dim 128, …)". */
  readonly what: string;
  /** The heap's size when the allocation failed, if known. */
  readonly heapBytes?: number;
  /** The heap size the failed allocation asked for, if known. */
  readonly neededBytes?: number;
  /** The most the heap may hold: 4 GiB, or the `MMNTP_MAX_HEAP` cap. */
  readonly limitBytes: number;
  readonly cause?: unknown;
};

export class EngineMemoryError extends Error {
  override readonly name = "EngineMemoryError";
  readonly what: string;
  readonly heapBytes?: number;
  readonly neededBytes?: number;
  readonly limitBytes: number;
  /** Whether a caller described what was running (false: only the heap's growth was seen). */
  readonly contextual: boolean;

  constructor(d: EngineMemoryDetails & { readonly contextual?: boolean }) {
    super(memoryMessage(d), d.cause === undefined ? undefined : { cause: d.cause });
    this.what = d.what;
    this.contextual = d.contextual ?? true;
    this.limitBytes = d.limitBytes;
    if (d.heapBytes !== undefined) this.heapBytes = d.heapBytes;
    if (d.neededBytes !== undefined) this.neededBytes = d.neededBytes;
  }
}

/** Bytes in the unit a person reads: "512 B", "48.0 MiB", "3.80 GiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

function memoryMessage({ what, heapBytes, neededBytes, limitBytes }: EngineMemoryDetails): string {
  const limit = limitBytes < WASM32_LIMIT_BYTES ? `the ${formatBytes(limitBytes)} cap set by MMNTP_MAX_HEAP` : "32-bit wasm's 4 GiB limit";
  const need =
    neededBytes !== undefined
      ? `it needed the heap to grow${heapBytes !== undefined ? ` from ${formatBytes(heapBytes)}` : ""} to at least ${formatBytes(neededBytes)}, past ${limit}`
      : heapBytes !== undefined
        ? `it needed more than the ${formatBytes(Math.max(0, limitBytes - heapBytes))} left under ${limit} (the heap held ${formatBytes(heapBytes)})`
        : `it needed more than ${limit} allows`;
  const remedy = limitBytes < WASM32_LIMIT_BYTES ? "use a smaller batch, context or model, or raise MMNTP_MAX_HEAP (at most 4GiB)" : "use a smaller batch, context or model";
  return `out of engine memory in ${what}: ${need}; ${remedy}`;
}

const activities: string[] = [];

/** What the engine is doing now, for errors raised where no caller adds its own context. */
export const currentActivity = (): string | undefined => activities.at(-1);

/**
 * Runs `fn` as `what` ("training the image auto-encoder (…)"): running out of engine memory inside
 * it, anywhere (an initialization, a k-means, a step), is reported as happening in `what`.
 */
export async function during<T>(what: string, fn: () => Promise<T>): Promise<T> {
  activities.push(what);
  try {
    return await fn();
  } catch (e) {
    throw engineMemoryError(e, () => what);
  } finally {
    activities.pop();
  }
}

let heapProbe: (() => { heapBytes: number; limitBytes: number }) | undefined;

/** Node's wasm-heap probe (memory.ts) registers itself here, so errors can give sizes. */
export function setHeapProbe(probe: () => { heapBytes: number; limitBytes: number }): void {
  heapProbe = probe;
}

// jax-js's allocator refusing to pass 4 GiB, V8's grow refusal, and browsers' allocation failures.
const OUT_OF_MEMORY = /memory32 limit|Maximum memory size exceeded|Out of memory|could not allocate memory|Unable to grow/i;

/**
 * `e` as an EngineMemoryError about `what` if it is the engine running out of memory (a RangeError
 * from the allocator or from growing the wasm memory, or an EngineMemoryError that no caller has
 * described yet); the innermost description wins. Any other error is returned as it is. `what` is a function so callers build the
 * description only on failure.
 */
export function engineMemoryError(e: unknown, what: () => string): unknown {
  if (e instanceof EngineMemoryError) return e.contextual ? e : new EngineMemoryError({ what: what(), ...sizes(e), cause: e });
  if (!(e instanceof RangeError) || !OUT_OF_MEMORY.test(e.message)) return e;
  const probe = heapProbe?.();
  return new EngineMemoryError({ what: what(), limitBytes: probe?.limitBytes ?? WASM32_LIMIT_BYTES, ...(probe && { heapBytes: probe.heapBytes }), cause: e });
}

const sizes = ({ heapBytes, neededBytes, limitBytes }: EngineMemoryError) => ({ limitBytes, ...(heapBytes !== undefined && { heapBytes }), ...(neededBytes !== undefined && { neededBytes }) });

/** A number of parameters in words: "48.2K", "1.23M". */
export const formatCount = (n: number): string => (n < 1e3 ? String(n) : n < 1e6 ? `${(n / 1e3).toFixed(1)}K` : `${(n / 1e6).toFixed(2)}M`);
