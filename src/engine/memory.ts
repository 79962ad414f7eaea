/**
 * How big is jax-js's wasm heap? jax-js 0.1.25 keeps its `WebAssembly.Memory` private, so this
 * module wraps the `WebAssembly.Memory` constructor and remembers every memory made. The wasm
 * backend builds its memory when `@jax-js/jax` is *loaded*, so src/engine/index.ts imports this
 * file before jax-js.
 *
 * A wasm memory only grows, and jax-js's allocator grows it (bump allocation) only when no freed
 * block of the right size class is available, so `byteLength` is the high-water mark of live
 * tensors + free lists: a training loop that leaks arrays makes it climb step after step, one
 * that disposes everything keeps it flat once the first steps have filled the free lists.
 *
 * It also wraps each memory's `grow`, to hold the heap under `MMNTP_MAX_HEAP` and to say, when a
 * growth is refused, how big the heap was and what it needed (out-of-memory.ts).
 */
import { InputError } from "../io/errors.ts";
import { currentActivity, EngineMemoryError, setHeapProbe, WASM32_LIMIT_BYTES } from "./out-of-memory.ts";

/**
 * `MMNTP_MAX_HEAP` ("512MiB", "2GiB", or bytes; default 4GiB, all that 32-bit wasm addresses):
 * the most the engine's heap may grow to, so that a run fails with a clear error rather than
 * push a shared machine into swap.
 */
export function heapCapFromEnv(value = process.env.MMNTP_MAX_HEAP): number {
  if (value === undefined || value === "") return WASM32_LIMIT_BYTES;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?\s*$/i.exec(value);
  const unit = { b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 }[(m?.[2] ?? "b").toLowerCase() as "b"];
  const bytes = m ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!(bytes > 0 && bytes <= WASM32_LIMIT_BYTES)) {
    throw new InputError(`MMNTP_MAX_HEAP must be a size from 1 B to 4GiB, such as 512MiB or 2GiB, got ${JSON.stringify(value)}`, { field: "MMNTP_MAX_HEAP", value, expected: "a size such as 512MiB, at most 4GiB" });
  }
  return bytes;
}
// read at the first growth, so a bad value is refused as a user's error where it is used
let capBytes: number | undefined;
const cap = (): number => (capBytes ??= heapCapFromEnv());

const memories: WebAssembly.Memory[] = [];
// A Proxy (not a subclass) so jax-js gets genuine Memory objects, which it links into every
// kernel instance and posts to the worker pool. Its allocator grows the memory from the main
// thread only, so the cap and the error about sizes live in `grow`.
const Recording = new Proxy(WebAssembly.Memory, {
  construct(target, args: [WebAssembly.MemoryDescriptor]) {
    const memory = new target(...args);
    const grow = memory.grow.bind(memory);
    const refuse = (neededBytes: number, cause?: unknown) =>
      new EngineMemoryError({ what: currentActivity() ?? "growing the wasm heap", contextual: false, heapBytes: memory.buffer.byteLength, neededBytes, limitBytes: cap(), ...(cause !== undefined && { cause }) });
    Object.defineProperty(memory, "grow", {
      value: (pages: number) => {
        const needed = memory.buffer.byteLength + pages * 65536;
        if (needed > cap()) throw refuse(needed);
        try {
          return grow(pages);
        } catch (e) {
          throw e instanceof RangeError ? refuse(needed, e) : e;
        }
      },
    });
    memories.push(memory);
    return memory;
  },
});
Object.defineProperty(WebAssembly, "Memory", { value: Recording, writable: true, configurable: true });

/** Bytes of the engine's wasm heap (the largest wasm memory made since start-up), or 0. */
export function engineMemoryBytes(): number {
  return Math.max(0, ...memories.map((m) => m.buffer.byteLength));
}
setHeapProbe(() => ({ heapBytes: engineMemoryBytes(), limitBytes: cap() }));
