/**
 * A jitted program reuses its own buffers while it runs (vendored jax-js patch 6): a chain of 16
 * matmuls, each 4 MiB output read only by the next, must grow the wasm heap by a few buffers, not
 * by all 16. Unpatched, every kernel stayed queued (holding its buffers) until the whole program
 * had been walked, so the heap grew by every malloc: 2.2 GiB instead of ~1 GiB for the benchmark
 * GPT's training step (docs/performance.md).
 */
import { describe, expect, it } from "vitest";
import { engineMemoryBytes, jit, np, startEngine, type Array } from "../../src/engine/node.ts";

const MIB = 2 ** 20;

describe("jitted programs and the wasm heap", () => {
  it("a chain of 16 matmuls with 4 MiB outputs grows the heap by a few of them, and computes the same as unjitted", async () => {
    await startEngine();
    // [2048, 512] float32 = 4 MiB: a size class no other test of this file uses
    const x = np.ones([2048, 512]).mul(0.01);
    const w = np.eye(512).mul(1.01);
    const chain = (x: Array, w: Array) => {
      let y = x;
      for (let i = 0; i < 16; i++) y = np.matmul(y, w.ref);
      w.dispose();
      return y.sum();
    };
    const f = jit(chain);
    await x.ref.data(); // the heap exists (it is made at the first allocation) and holds x
    await w.ref.data();
    const before = engineMemoryBytes();
    const got = (await f(x.ref, w.ref).data())[0]!;
    const grown = (engineMemoryBytes() - before) / MIB;
    f.dispose();
    const want = (await chain(x, w).data())[0]!;
    expect(Math.abs(got - want) / want).toBeLessThan(1e-5);
    const exact = 2048 * 512 * 0.01 * 1.01 ** 16; // a float32 sum of 2^20 terms is off by ~1e-3 relative
    expect(Math.abs(want - exact) / exact).toBeLessThan(2e-3);
    expect(before).toBeGreaterThan(0); // the probe sees the heap (else the comparison means nothing)
    // 16 × 4 MiB would be 64 MiB; in-program reuse keeps it to the two or three live at a time
    expect(grown).toBeLessThan(24);
  });
});
