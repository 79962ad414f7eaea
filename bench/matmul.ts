/**
 * Does jax-js's wasm worker pool (src/engine/workers.ts) pay off in Node? Times float32
 * matmuls and one jitted MLP training step with MMNTP_THREADS=1 (no pool: kernels run on
 * the main thread) against a pool of 2, each in a fresh child process, since the pool size
 * is fixed when jax-js loads.
 *
 *   npx tsx bench/matmul.ts                           # 1 vs 2 threads, 3 rounds
 *   npx tsx bench/matmul.ts --threads=1,2,4 --rounds=5 # adds gflops_4t, speedup_4t
 *
 * Prints JSON `{ shapes: [{ m, k, n, gflops_1t, gflops_2t, speedup }], mlp_step: {...} }`;
 * `speedup` is the last thread count over 1. Each child reports medians; the children run
 * alternately for a few rounds and the best round counts, since other processes on a shared
 * host make single runs noisy. A child whose pool did not start (spawned workers ≠
 * threads) fails the run, so a number can't silently be single-threaded.
 */
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { jit, nn, np, startEngine, tree, valueAndGrad, type Array } from "../src/engine/node.ts";
import { hostRng } from "../src/engine/rng.ts";
import { engineWorkerStats } from "../src/engine/workers.ts";
import { runThreadsChild } from "./lib/child.ts";

/** [m, k] × [k, n]: three squares and a transformer-like projection (tokens × D → 4D). */
const SHAPES: readonly (readonly [number, number, number])[] = [
  [256, 256, 256],
  [512, 512, 512],
  [1024, 1024, 1024],
  [2048, 128, 512],
];
/** MLP for the training step: x [B, IN] → relu(x W1 + b1) W2 + b2 → logits [B, OUT]. */
const MLP = { batch: 128, input: 784, hidden: 256, output: 10, lr: 0.05 } as const;
const MIN_SECONDS = 0.5;
const MIN_REPS = 3;

type ChildResult = { threads: number; pool: { workers_spawned: number }; matmul: { m: number; k: number; n: number; seconds: number }[]; mlpStepMs: number };

function randomArray(shape: number[], seed: number): Array {
  const rng = hostRng(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng() * 2 - 1;
  return np.array(data).reshape(shape);
}

/** Median seconds of `run`, after two warm-up calls (compile, pool start). */
async function time(run: () => Promise<void>): Promise<number> {
  await run();
  await run();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < MIN_REPS || performance.now() - start < MIN_SECONDS * 1000) {
    const t0 = performance.now();
    await run();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function timeMatmul(m: number, k: number, n: number): Promise<number> {
  const a = randomArray([m, k], 1);
  const b = randomArray([k, n], 2);
  const seconds = await time(async () => {
    const c = np.matmul(a.ref, b.ref);
    await c.blockUntilReady();
    c.dispose();
  });
  tree.dispose([a, b]);
  return seconds;
}

type MlpParams = { w1: Array; b1: Array; w2: Array; b2: Array };

/** Mean softmax cross-entropy of the MLP's logits. x: [B, IN], y: [B, OUT] one-hot. */
function mlpLoss(p: MlpParams, x: Array, y: Array): Array {
  const h = nn.relu(np.matmul(x, p.w1).add(p.b1));
  const logits = np.matmul(h, p.w2).add(p.b2);
  return nn.logSoftmax(logits, -1).mul(y).sum().mul(-1 / MLP.batch);
}

/** Milliseconds per jitted step: valueAndGrad of the loss plus an SGD update. */
async function timeMlpStep(): Promise<number> {
  const step = jit((p: MlpParams, x: Array, y: Array) => {
    const [loss, grads] = valueAndGrad(mlpLoss)(tree.ref(p), x, y) as [Array, MlpParams];
    const next = tree.map((w: Array, g: Array) => w.sub(g.mul(MLP.lr)), p, grads) as MlpParams;
    return [loss, next];
  });
  let params: MlpParams = {
    w1: randomArray([MLP.input, MLP.hidden], 3).mul(1 / Math.sqrt(MLP.input)),
    b1: np.zeros([MLP.hidden]),
    w2: randomArray([MLP.hidden, MLP.output], 4).mul(1 / Math.sqrt(MLP.hidden)),
    b2: np.zeros([MLP.output]),
  };
  const x = randomArray([MLP.batch, MLP.input], 5);
  const labels = Int32Array.from({ length: MLP.batch }, (_, i) => i % MLP.output);
  const y = nn.oneHot(np.array(labels, { dtype: np.int32 }), MLP.output);
  const seconds = await time(async () => {
    const [loss, next] = step(params, x.ref, y.ref) as [Array, MlpParams];
    params = next;
    await Promise.all([loss.data(), ...tree.leaves(params).map((w) => w.blockUntilReady())]);
  });
  step.dispose();
  tree.dispose([params, x, y]);
  return seconds * 1000;
}

async function child(): Promise<void> {
  await startEngine();
  const matmul = [];
  for (const [m, k, n] of SHAPES) matmul.push({ m, k, n, seconds: await timeMatmul(m, k, n) });
  const mlpStepMs = await timeMlpStep();
  const { threads, spawned } = engineWorkerStats();
  const result: ChildResult = { threads: threads || 1, pool: { workers_spawned: spawned }, matmul, mlpStepMs };
  console.log(JSON.stringify(result));
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));

function parent(): void {
  const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const counts = (flag("threads") ?? "1,2").split(",").map(Number);
  if (counts[0] !== 1 || counts.some((t) => !Number.isInteger(t) || t < 1)) throw new Error(`--threads must start with 1 and list positive integers, got ${flag("threads")}`);
  const rounds = Number(flag("rounds") ?? 3);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${flag("rounds")}`);
  const all: ChildResult[][] = counts.map(() => []);
  const script = fileURLToPath(import.meta.url);
  for (let r = 0; r < rounds; r++) counts.forEach((t, i) => all[i].push(runThreadsChild<ChildResult>(script, t, [])));
  // Best round per thread count: the least disturbed by other processes.
  const runs = all.map((results): ChildResult => ({
    ...results[0],
    matmul: results[0].matmul.map((row, i) => ({ ...row, seconds: Math.min(...results.map((res) => res.matmul[i].seconds)) })),
    mlpStepMs: Math.min(...results.map((res) => res.mlpStepMs)),
  }));
  const last = counts.at(-1) ?? 1;
  const shapes = SHAPES.map(([m, k, n], i) => {
    const row: Record<string, number> = { m, k, n };
    for (const r of runs) row[`gflops_${r.threads}t`] = round((2 * m * k * n) / r.matmul[i].seconds / 1e9);
    for (const t of counts.slice(1, -1)) row[`speedup_${t}t`] = round(row[`gflops_${t}t`] / row.gflops_1t);
    row.speedup = round(row[`gflops_${last}t`] / row.gflops_1t);
    return row;
  });
  const mlp: Record<string, number | string> = { shape: `[${MLP.batch},${MLP.input}]→${MLP.hidden}→${MLP.output}, valueAndGrad + SGD, jit` };
  for (const r of runs) mlp[`ms_${r.threads}t`] = round(r.mlpStepMs);
  mlp.speedup = round(runs[0].mlpStepMs / runs[runs.length - 1].mlpStepMs);
  const host = { node: process.version, cpus: availableParallelism(), rounds };
  console.log(JSON.stringify({ host, shapes, mlp_step: mlp }, null, 2));
}

if (process.argv.includes("--child")) await child();
else parent();
