// Every test file runs on the engine as Node runs it (worker shim, wasm-heap probe, native GEMM
// when it builds): this must load before any test module imports jax-js.
import "../../src/engine/node.ts";
