/**
 * How big is jax-js's wasm heap? jax-js 0.1.25 keeps its `WebAssembly.Memory` private, so
 * this module wraps the `WebAssembly.Memory` constructor and remembers every memory made.
 * The wasm backend builds its one memory when `@jax-js/jax` is *loaded*, so this file must
 * be imported before anything that imports jax-js (make it a bench script's first import).
 *
 * A wasm memory only grows, and jax-js's allocator grows it by bump allocation only when no
 * freed block of the right size class is free, so `byteLength` is the high-water mark of
 * the allocator's heap (live tensors + free-list blocks), never shrinking.
 */
const memories: WebAssembly.Memory[] = [];
const Original = WebAssembly.Memory;
// A Proxy (not a subclass) so jax-js gets genuine Memory objects, which it links into
// every kernel instance and posts to the worker pool.
const Recording = new Proxy(Original, {
  construct(target, args: [WebAssembly.MemoryDescriptor]) {
    const memory = new target(...args);
    memories.push(memory);
    return memory;
  },
});
Object.defineProperty(WebAssembly, "Memory", { value: Recording, writable: true, configurable: true });

/** Bytes of the largest wasm memory created since this module loaded, or 0 if none. */
export function wasmMemoryBytes(): number {
  return Math.max(0, ...memories.map((m) => m.buffer.byteLength));
}
