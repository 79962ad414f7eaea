/**
 * A jitted program reuses its own buffers while it runs (vendored jax-js patch 6): a chain of 16
 * matmuls, each 4 MiB output read only by the next, must grow the wasm heap by a few buffers, not
 * by all 16. Unpatched, every kernel stayed queued (holding its buffers) until the whole program
 * had been walked, so the heap grew by every malloc: 2.2 GiB instead of ~1 GiB for the benchmark
 * GPT's training step (docs/performance.md).
 */
import { describe, expect, it } from "vitest";
import { engineMemoryBytes, fromHost, jit, makeJaxpr, np, startEngine, valueAndGrad, type Array } from "../../src/engine/node.ts";
import { leanGelu } from "../../src/nn/lean.ts";

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

  it("freed neighbours merge: two 3 MiB blocks freed side by side serve a 6 MiB one without growing the heap (patch 7)", async () => {
    await startEngine();
    const mib3 = 3 * 2 ** 18; // floats; sizes no other test of this file uses
    const a = fromHost(new Float32Array(mib3).fill(1), [mib3]);
    const b = fromHost(new Float32Array(mib3).fill(2), [mib3]); // allocated right after a, no free block fits either
    expect((await a.ref.data())[0]).toBe(1);
    expect((await b.ref.data())[0]).toBe(2);
    a.dispose();
    b.dispose();
    const before = engineMemoryBytes();
    const c = fromHost(new Float32Array(2 * mib3).fill(3), [2 * mib3]);
    expect((await c.ref.data())[2 * mib3 - 1]).toBe(3);
    // with one free list per size class, the 6 MiB request found no 6 MiB block and grew the heap by 6 MiB
    expect(engineMemoryBytes()).toBe(before);
    c.dispose();
  });

  it("a stop-gradient's zero tangent is a broadcast literal in the traced program, not a constant array (patch 8)", async () => {
    await startEngine();
    const x = np.linspace(-3, 3, 64 * 1024).reshape([64, 1024]);
    const f = (y: Array) => leanGelu(y).sum();
    const traced = makeJaxpr(valueAndGrad(f))(x.ref) as unknown as { jaxpr: { consts: Array[] } };
    // unpatched: one [64, 1024] array of zeros, which jit realized and kept with the compiled function
    expect(traced.jaxpr.consts.map((c) => c.shape)).toEqual([]);
    const [value, grad] = jit(valueAndGrad(f))(x.ref) as unknown as [Array, Array];
    const [v0, g0] = valueAndGrad(f)(x) as unknown as [Array, Array];
    expect((await value.data())[0]).toBeCloseTo((await v0.data())[0]!, 2);
    const [g, want] = [await grad.data(), await g0.data()];
    expect(g.length).toBe(want.length);
    expect(Math.max(...g.map((v, i) => Math.abs(v - want[i]!)))).toBeLessThan(1e-5);
    // a literal fill that is padded (concatenate pads its parts) is masked: a bare constant would be 1 in the pad too
    const withOnes = jit((z: Array) => np.concatenate([z, np.ones([z.shape[0]!, 1])], 1));
    expect([...(await withOnes(np.arange(6).astype(np.float32).reshape([3, 2])).data())]).toEqual([0, 1, 1, 2, 3, 1, 4, 5, 1]);
    withOnes.dispose();
  });
});
