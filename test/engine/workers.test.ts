import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import type * as Engine from "../../src/engine/index.ts";
import type * as Workers from "../../src/engine/workers.ts";

// jax-js fixes its pool when it loads, so vitest.config.ts's "workers" project sets
// MMNTP_THREADS=2 (a 1-core host would otherwise get no pool at all) and MMNTP_NATIVE=0 (these
// tests are about jax-js's own kernels on the pool; the native GEMM would take the matmuls)
// before the setup file loads the engine.
let engine: typeof Engine;
let workers: typeof Workers;

beforeAll(async () => {
  workers = await import("../../src/engine/workers.ts");
  engine = await import("../../src/engine/node.ts");
  await engine.startEngine();
});

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Deterministic values in [-1, 1). */
function hostData(size: number, seed: number): Float32Array<ArrayBuffer> {
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = (((i + 1) * 2654435761 + seed * 40503) % 2001) / 1000 - 1;
  return data;
}

/** Plain-JS reference: a [m, k] × b [k, n] → [m, n], accumulated in float64. */
function referenceMatmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) c[i * n + j] += a[i * k + p] * b[p * n + j];
  return c;
}

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  expect(x.length).toBe(y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst;
}

/** Run an ES module snippet in a fresh `node --import tsx` with MMNTP_THREADS=`threads`. */
function runChild(threads: number, code: string) {
  return spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: ROOT,
    env: { ...process.env, MMNTP_THREADS: String(threads) },
    encoding: "utf8",
    timeout: 30_000,
  });
}

// Starts the engine, does a matmul on the pool (if any), prints result and stats, and ends
// without any teardown: the process has to exit by itself.
const MATMUL_SCRIPT = `
const { np, startEngine, engineWorkerStats } = await import("./src/engine/node.ts");
await startEngine();
const c = np.matmul(np.ones([300, 200]).mul(0.5), np.ones([200, 100]));
const data = await c.data();
console.log(JSON.stringify({ first: data[0], last: data[data.length - 1], ...engineWorkerStats() }));
`;

describe("Worker shim over node:worker_threads", () => {
  it("runs matmuls on a pool of 2 threads that agree with a plain-JS reference", async () => {
    const { np } = engine;
    for (const [m, k, n] of [[512, 96, 128], [300, 200, 130], [512, 64, 256]]) {
      const a = hostData(m * k, 1);
      const b = hostData(k * n, 2);
      const before = workers.engineWorkerStats().answered;
      const c = await np.matmul(np.array(a).reshape([m, k]), np.array(b).reshape([k, n])).data();
      expect(workers.engineWorkerStats().answered, `[${m},${k}]×[${k},${n}] ran on the pool`).toBeGreaterThan(before);
      expect(maxAbsDiff(c, referenceMatmul(a, b, m, k, n))).toBeLessThan(1e-4 * k);
    }
    expect(workers.engineWorkerStats()).toMatchObject({ threads: 2, spawned: 2, alive: 2 });
  });

  it("runs CPU routines (sort) on a worker", async () => {
    const { np } = engine;
    const x = hostData(4 * 1000, 3);
    const before = workers.engineWorkerStats().answered;
    const sorted = await np.sort(np.array(x).reshape([4, 1000]), -1).data();
    expect(workers.engineWorkerStats().answered).toBeGreaterThan(before);
    const expected = [0, 1, 2, 3].flatMap((r) => Array.from(x.subarray(r * 1000, (r + 1) * 1000)).sort((p, q) => p - q));
    expect(maxAbsDiff(sorted, expected)).toBe(0);
  });

  it("computes a jitted valueAndGrad on the pool: d/dw sum((x w)²) = 2 xᵀ(x w)", async () => {
    const { jit, np, valueAndGrad } = engine;
    const [b, d, h] = [1024, 128, 64]; // x·w: 8M multiply-adds, above the inline threshold
    const x = hostData(b * d, 4);
    const w = hostData(d * h, 5);
    const loss = (wArr: Engine.Array, xArr: Engine.Array) => np.square(np.matmul(xArr, wArr)).sum();
    const step = jit((wArr: Engine.Array, xArr: Engine.Array) => valueAndGrad(loss)(wArr, xArr));
    const [value, grad] = step(np.array(w).reshape([d, h]), np.array(x).reshape([b, d])) as [Engine.Array, Engine.Array];
    const [v, g] = await Promise.all([value.data(), grad.data()]);
    step.dispose();
    const xw = referenceMatmul(x, w, b, d, h);
    const xT = Float32Array.from({ length: d * b }, (_, i) => x[(i % b) * d + Math.floor(i / b)]);
    const expectedGrad = referenceMatmul(xT, Float32Array.from(xw, (e) => 2 * e), d, b, h);
    const expectedValue = xw.reduce((s, e) => s + e * e, 0);
    expect(Math.abs(v[0] - expectedValue) / expectedValue).toBeLessThan(1e-5);
    const scale = expectedGrad.reduce((m, e) => Math.max(m, Math.abs(e)), 0);
    expect(maxAbsDiff(g, expectedGrad) / scale).toBeLessThan(1e-5);
  });

  it("runs kernels below 2^22 multiply-adds on the calling thread, in order with pool work", async () => {
    const { np } = engine;
    const [m, k, n] = [64, 96, 80]; // 0.5M multiply-adds: inline
    const a = hostData(m * k, 6);
    const b = hostData(k * n, 7);
    const big = np.matmul(np.ones([512, 512]), np.ones([512, 512])); // 134M: on the pool
    const before = workers.engineWorkerStats().answered;
    const small = np.matmul(np.array(a).reshape([m, k]), np.array(b).reshape([k, n]));
    const c = await small.data();
    expect(workers.engineWorkerStats().answered, "no worker ran the small matmul").toBe(before);
    expect(maxAbsDiff(c, referenceMatmul(a, b, m, k, n))).toBeLessThan(1e-4 * k);
    // an inline kernel reading a pool kernel's output runs after it, in queue order
    const sums = await big.sum(-1).data();
    expect(workers.engineWorkerStats().answered).toBeGreaterThan(before);
    expect(Array.from(sums.subarray(0, 3))).toEqual([262144, 262144, 262144]);
  });

  it("leaves a Trainer's params ready for synchronous reads after each step", async () => {
    // Before Trainer.step awaited its outputs, the update kernels were still queued on the
    // pool after the loss was read, and this `js()` threw "cannot dispatch synchronously with
    // pending async work" after every step.
    const { np } = engine;
    const { Trainer } = await import("../../src/train/step.ts");
    type P = { w: Engine.Array };
    const loss = (p: P, x: Engine.Array): [Engine.Array, Record<string, Engine.Array>] => [np.square(np.matmul(x, p.w)).mean(), {}];
    const trainer = new Trainer({ w: np.array(hostData(256 * 256, 8)).reshape([256, 256]) }, (p, x) => loss(p as P, x as Engine.Array));
    const sums: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await trainer.step(np.array(hostData(512 * 256, 9 + i)).reshape([512, 256]), 1e-2);
      expect(Number.isFinite(r.loss)).toBe(true);
      sums.push((trainer.params as P).w.ref.sum().js() as number);
    }
    expect(new Set(sums).size, "the weights changed every step").toBe(3);
    trainer.dispose();
  });

  it("copyRunsInPlace copies a result still being computed on the pool only after it is done", async () => {
    const { np, copyRunsInPlace } = engine;
    const a = np.array(hostData(256 * 256, 12)).reshape([256, 256]);
    const b = np.array(hostData(256 * 256, 13)).reshape([256, 256]);
    const want = referenceMatmul(hostData(256 * 256, 12), hostData(256 * 256, 13), 256, 256, 256);
    const dst = np.zeros([2, 256]);
    await copyRunsInPlace(dst, np.zeros([1]), []); // realized, so the write below is in place
    const before = workers.engineWorkerStats().answered;
    await copyRunsInPlace(dst, np.matmul(a, b), [256, 5 * 256, 256]); // 2^24 multiply-adds: sent to the workers
    expect(workers.engineWorkerStats().answered).toBeGreaterThan(before);
    const got = (await dst.data()) as Float32Array;
    expect(maxAbsDiff(got.subarray(256), want.subarray(5 * 256, 6 * 256))).toBeLessThan(1e-3);
    expect(maxAbsDiff(got.subarray(0, 256), new Float32Array(256))).toBe(0);
  });

  it("decodes with the KV cache written in place between queued steps: the tokens of full-forward greedy decoding", async () => {
    // With a pool, every kernel of a step goes through its queue (these small ones run inline, in
    // queue order); the in-place cache write must wait for them and come before the next step's.
    const { Decoder } = await import("../../src/generate/decode.ts");
    const { GREEDY } = await import("../../src/generate/sampling.ts");
    const { initTransformer } = await import("../../src/backbone/transformer.ts");
    const { KeyStream } = await import("../../src/engine/rng.ts");
    const { greedyByFullForward } = await import("../helpers/decode.ts");
    const cfg = { vocabSize: 20, contextLength: 12, dim: 16, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "rope" } as const;
    const p = initTransformer(new KeyStream(3), cfg);
    const decoder = new Decoder(p, cfg);
    const got = await decoder.generate([[1, 5, 2], [7, 7, 3]], 8, { sampling: GREEDY });
    decoder.dispose();
    expect(got[0]).toEqual(await greedyByFullForward(p, cfg, [1, 5, 2], 8));
    expect(got[1]).toEqual(await greedyByFullForward(p, cfg, [7, 7, 3], 8));
    engine.tree.dispose(p);
  });

  it("checks its options", () => {
    expect(() => workers.installWorkerShim({ threads: 0 })).toThrow(/positive integer, got 0/);
    expect(workers.installWorkerShim({ threads: 3 })).toBe(2); // installed once, when jax-js loaded
  });

  it("lets a finished process exit by itself, after waiting for the pool's answers", () => {
    const out = runChild(2, MATMUL_SCRIPT);
    expect(out.signal, "exited within 30 s").toBeNull();
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ first: 100, last: 100, threads: 2, spawned: 2 });
  });

  it("starts the pool whichever mmntp module is imported after node.ts", () => {
    const out = runChild(2, `await import("./src/engine/node.ts");
await import("./src/tokenizers/quantizers/checks.ts");
${MATMUL_SCRIPT}`);
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ first: 100, last: 100, threads: 2, spawned: 2 });
  });

  it("declines the pool, and still computes right, when a core module loaded jax-js before node.ts", () => {
    // A shim installed after jax-js loaded made every pool kernel fail to link.
    const out = runChild(2, `await import("./src/tokenizers/quantizers/checks.ts");
${MATMUL_SCRIPT}`);
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ first: 100, last: 100, threads: 0, spawned: 0 });
  });

  it("MMNTP_THREADS=1 keeps kernels on the main thread", () => {
    const out = runChild(1, MATMUL_SCRIPT);
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ first: 100, last: 100, threads: 0, spawned: 0 });
  });

  it("fails loudly, not with wrong numbers, when work reaches a terminated pool", () => {
    const out = runChild(2, `${MATMUL_SCRIPT}
const { shutdownEngineWorkers } = await import("./src/engine/node.ts");
await shutdownEngineWorkers();
console.log(JSON.stringify(engineWorkerStats()));
await np.matmul(np.ones([300, 200]).mul(2), np.ones([200, 100])).data();
console.log("unreachable");
`);
    expect(out.status).not.toBe(0);
    expect(out.stdout).toContain('"alive":0');
    expect(out.stdout).not.toContain("unreachable");
    expect(out.stderr).toContain("jax-js dispatched work after shutdownEngineWorkers()");
  });

  it("shutdownEngineWorkers ends every thread", async () => {
    await workers.shutdownEngineWorkers();
    expect(workers.engineWorkerStats()).toMatchObject({ spawned: 2, alive: 0 });
  });
});
