/**
 * What must exist before jax-js loads in Node: jax-js builds its wasm backend (shared memory,
 * worker pool) when its module is evaluated, so the Worker shim and the memory probe are
 * installed first. No jax-js import here; `node.ts` and `native.ts` import this file before it.
 */
// Node's Worker shim for jax-js's wasm pool; MMNTP_THREADS=1 (the library's default) opts out.
import "./workers.ts";
// Records the wasm memory jax-js creates, for memory reports and soak tests.
import "./memory.ts";
