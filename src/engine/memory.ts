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
 */
const memories: WebAssembly.Memory[] = [];
// A Proxy (not a subclass) so jax-js gets genuine Memory objects, which it links into every
// kernel instance and posts to the worker pool.
const Recording = new Proxy(WebAssembly.Memory, {
  construct(target, args: [WebAssembly.MemoryDescriptor]) {
    const memory = new target(...args);
    memories.push(memory);
    return memory;
  },
});
Object.defineProperty(WebAssembly, "Memory", { value: Recording, writable: true, configurable: true });

/** Bytes of the engine's wasm heap (the largest wasm memory made since start-up), or 0. */
export function engineMemoryBytes(): number {
  return Math.max(0, ...memories.map((m) => m.buffer.byteLength));
}
