/**
 * Where does a step of the benchmark GPT (bench/lib/gpt.ts) spend its time?
 *
 *   npm run bench:profile                  # markdown tables, then the same data as JSON
 *   npm run bench:profile -- --json profile.json --reps 3
 *
 * 1. Kernels: jax-js's profiler times every kernel of one jitted `Trainer.step` and of one
 *    jitted KV-cached decode step (`forwardCached`, batch 1), grouped by signature
 *    (bench/lib/trace.ts). Needs MMNTP_THREADS=1, where each dispatch runs to completion.
 * 2. Pieces: embedding, LayerNorm, attention, MLP, LM head, loss and the AdamW update, each
 *    as its own jitted function (forward, and forward + backward), since a kernel cannot be
 *    traced back to the model op that made it; times × calls per step, next to the full step.
 * 3. Experiments: the KV-cache write (one-hot blend, select, and the in-place row copy the
 *    decoder uses now), and
 *    a batched matmul with a per-batch rhs (attention's QKᵀ and PV) vs the same work with one
 *    rhs shared by the batch (projections), which jax-js 0.1.25 runs about 2× faster.
 */
import { writeFileSync } from "node:fs";
import { copyRunsInPlace, fromHost, jit, np, random, startEngine, tree, valueAndGrad, type Array, type JsTree } from "../src/engine/node.ts";
import { KeyStream } from "../src/engine/rng.ts";
import { engineWorkerStats } from "../src/engine/workers.ts";
import { causalMask } from "../src/backbone/masks.ts";
import { forwardCached, initCaches, initTransformer, type TransformerParams } from "../src/backbone/transformer.ts";
import { nextTokenLoss, weightedCrossEntropy, type NextTokenBatch } from "../src/train/losses.ts";
import { Decoder } from "../src/generate/decode.ts";
import { GREEDY } from "../src/generate/sampling.ts";
import { attention, attentionCached, writeFresh, type KVCache } from "../src/nn/attention.ts";
import { embed } from "../src/nn/embedding.ts";
import { linear } from "../src/nn/linear.ts";
import { mlp } from "../src/nn/mlp.ts";
import { layerNorm } from "../src/nn/norm.ts";
import { adamwUpdate, initAdamW, type AdamWState, type Params } from "../src/train/optim.ts";
import { Trainer } from "../src/train/step.ts";
import { benchArgs } from "./lib/cli.ts";
import { BATCH, countParams, deviceBatch, flopsPerToken, GPT, LR, syntheticTokens, TORCH_ADAMW } from "./lib/gpt.ts";
import { loadAverage, machineInfo, median, round, today, versions } from "./lib/machine.ts";
import { markdownTable } from "./lib/markdown.ts";
import { groupKernels, summarizeKinds, traceKernels, type KernelRecord, type OpSignature } from "./lib/trace.ts";
import { engineMemoryBytes as wasmMemoryBytes } from "../src/engine/node.ts";

const SPEC = {
  usage: "npm run bench:profile --",
  description: "Per-kernel and per-piece time of one training step and one decode step of the benchmark GPT (1 thread).",
  options: [
    { name: "reps", type: "number", default: 5, help: "timed calls per piece and per step (median reported)" },
    { name: "top", type: "number", default: 20, help: "kernel signatures listed per step" },
    { name: "json", type: "string", help: "also write the JSON report to this file" },
  ],
} as const;

const { vocabSize: V, contextLength: S, dim: D, heads: H, layers: L } = GPT;
const [B, T, F, DH] = [BATCH, GPT.contextLength, GPT.dim * GPT.mlpRatio, GPT.dim / GPT.heads];
const MIB = 2 ** 20;
const DECODE_REPS = 20; // decode steps timed / traced; decode pieces take at least as many calls
const GENERATE_TOKENS = 128;
const log = (msg: string) => process.stderr.write(`[bench:profile] ${msg}\n`);

/**
 * The model's contractions at [b, t], to name kernel signatures (decode: against the S-slot
 * cache; its embeddings are gathers and its cache write a select, so neither is a matmul).
 */
function opSignatures(b: number, t: number, train: boolean): OpSignature[] {
  const op = (name: string, shape: number[], k: number): OpSignature => ({ name, shape, k });
  const ops = [
    op("qkv", [b, t, 3 * D], D),
    op("attn out", [b, t, D], D),
    op("MLP up", [b, t, F], D),
    op("MLP down", [b, t, D], F),
    op("LM head", [b, t, V], D),
  ];
  if (!train) return [...ops, op("QKᵀ", [b, H, t, S], DH), op("PV", [b, H, t, DH], S)];
  const n = b * t;
  return [
    op("tok-embed one-hot", [b, t, D], V),
    ...ops,
    op("QKᵀ", [b, H, t, t], DH),
    op("PV", [b, H, t, DH], t),
    op("CE pick shifted·onehot", [b, t], V),
    op("LM head dX", [b, t, D], V),
    op("MLP down dX", [b, t, F], D),
    op("MLP up dX", [b, t, D], F),
    op("attn out dX", [b, t, D], D),
    op("qkv dX", [b, t, D], 3 * D),
    op("PV dP", [b, H, t, t], DH),
    op("softmax bwd Σ p·dp", [b, H, t], t),
    op("PV dV", [b, H, t, DH], t),
    op("QKᵀ dQ", [b, H, t, DH], t),
    op("QKᵀ dK", [b, H, t, DH], t),
    op("LM head dW", [D, V], n),
    op("MLP up dW", [D, F], n),
    op("MLP down dW", [F, D], n),
    op("attn out dW", [D, D], n),
    op("qkv dW", [D, 3 * D], n),
    op("tok-embed dW", [V, D], n),
  ];
}

const randn = (shape: number[], seed: number): Array => random.normal(random.key(seed), shape);
const ready = async (out: JsTree<Array>) => {
  await Promise.all(tree.leaves(out).map((a) => a.blockUntilReady()));
  tree.dispose(out);
};

/**
 * Fastest and median ms of `run` over `reps` calls, after one warm-up (compile) call. The
 * fastest is the estimate used: on a shared machine, slower calls mostly waited for a core.
 */
async function timeMs(run: () => Promise<void>, reps: number): Promise<{ best: number; median: number }> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return { best: Math.min(...times), median: median(times) };
}

/** A model piece: `f(diff, rest)`; `diff` (params and float inputs) is what backward differentiates. */
type Piece = { name: string; calls: number; fwdFlops: number; diff: JsTree<Array>; rest: Array[]; f: (diff: never, rest: Array[]) => Array };
type PieceTime = { name: string; calls: number; fwd_ms: number; fwd_bwd_ms?: number; ms_per_step: number; pct?: number; gflops?: number };

async function timePiece(piece: Piece, reps: number, backward: boolean): Promise<PieceTime> {
  const args = () => [tree.ref(piece.diff), piece.rest.map((r) => r.ref)] as const;
  const fwd = jit((d: JsTree<Array>, r: Array[]) => piece.f(d as never, r));
  const probe = fwd(...args());
  const ct = randn(probe.shape, 7); // cotangent of the output: backward gets a full-size gradient
  probe.dispose();
  const fwdMs = (await timeMs(() => ready(fwd(...args())), reps)).best;
  fwd.dispose();
  let fwdBwdMs: number | undefined;
  if (backward) {
    const fb = jit((d: JsTree<Array>, r: Array[], c: Array) => valueAndGrad((dd: JsTree<Array>, rr: Array[], cc: Array) => piece.f(dd as never, rr).mul(cc).sum())(d, r, c));
    fwdBwdMs = (await timeMs(() => ready(fb(...args(), ct.ref) as JsTree<Array>), reps)).best;
    fb.dispose();
  }
  ct.dispose();
  tree.dispose([piece.diff, piece.rest]);
  const ms = fwdBwdMs ?? fwdMs;
  const flops = backward ? 3 * piece.fwdFlops : piece.fwdFlops; // backward ≈ 2× forward
  log(`  ${piece.name}: ${fwdMs.toFixed(2)} ms fwd${fwdBwdMs === undefined ? "" : `, ${fwdBwdMs.toFixed(2)} ms fwd+bwd`}`);
  return { name: piece.name, calls: piece.calls, fwd_ms: round(fwdMs, 3), ...(fwdBwdMs === undefined ? {} : { fwd_bwd_ms: round(fwdBwdMs, 3) }), ms_per_step: round(ms * piece.calls, 2), ...(flops > 0 ? { gflops: round(flops / ms / 1e6, 1) } : {}) };
}

/** Training pieces at [B, T]; `p` is borrowed. */
function trainPieces(p: TransformerParams): Piece[] {
  const blk = p.blocks[0];
  const x = () => randn([B, T, D], 1);
  const ids = fromHost(syntheticTokens().inputs, [B, T]);
  const attnFlops = 2 * B * T * D * 4 * D + 4 * B * T * T * D;
  return [
    // as `forward`: token one-hot matmul, learned positions 0..T−1 sliced from the table
    { name: "embedding (tok one-hot matmul + pos slice)", calls: 1, fwdFlops: 0, diff: { tok: tree.ref(p.tok), pos: tree.ref(p.pos!) }, rest: [ids], f: (d: TransformerParams, [i]: Array[]) => embed(d.tok, i).add(d.pos!.table.slice([0, T])) },
    { name: "LayerNorm", calls: 2 * L + 1, fwdFlops: 0, diff: { p: tree.ref(blk.ln1), x: x() }, rest: [], f: (d: { p: typeof blk.ln1; x: Array }) => layerNorm(d.p, d.x) },
    { name: "attention (qkv, QKᵀ, softmax, PV, out)", calls: L, fwdFlops: attnFlops, diff: { p: tree.ref(blk.attn), x: x() }, rest: [causalMask(T), np.arange(T).astype(np.int32)], f: (d: { p: typeof blk.attn; x: Array }, [m, pos]: Array[]) => attention(d.p, d.x, m, pos, { heads: H }) },
    { name: "MLP (up, GELU, down)", calls: L, fwdFlops: 4 * B * T * D * F, diff: { p: tree.ref(blk.mlp), x: x() }, rest: [], f: (d: { p: typeof blk.mlp; x: Array }) => mlp(d.p, d.x) },
    { name: "LM head", calls: 1, fwdFlops: 2 * B * T * D * V, diff: { p: tree.ref(p.head), x: x() }, rest: [], f: (d: { p: typeof p.head; x: Array }) => linear(d.p, d.x) },
    { name: "loss (log-softmax cross-entropy)", calls: 1, fwdFlops: 0, diff: randn([B, T, V], 2), rest: [fromHost(syntheticTokens().targets, [B, T]), np.ones([B, T])], f: (logits: Array, [tg, w]: Array[]) => weightedCrossEntropy(logits, tg, w) },
  ];
}

/** One decode token's pieces at [1, 1] against a 256-slot cache; `p` is borrowed. */
function decodePieces(p: TransformerParams): Piece[] {
  const blk = p.blocks[0];
  const x = () => randn([1, 1, D], 3);
  const pos = 100; // the cache is full-size, so the position does not change the work
  const slots = np.arange(S).astype(np.int32).reshape([1, S]);
  const cacheFlops = 2 * (4 * D * D) + 4 * H * S * DH;
  return [
    // as `forwardCached`: rows gathered (no gradient is taken while decoding)
    { name: "embedding (tok + pos gathers)", calls: 1, fwdFlops: 0, diff: { tok: tree.ref(p.tok), pos: tree.ref(p.pos!) }, rest: [fromHost(Int32Array.of(5), [1, 1]), fromHost(Int32Array.of(pos), [1])], f: (d: TransformerParams, [i, ps]: Array[]) => np.take(d.tok.table, i, 0).add(np.take(d.pos!.table, ps, 0)) },
    { name: "LayerNorm", calls: 2 * L + 1, fwdFlops: 0, diff: { p: tree.ref(blk.ln1), x: x() }, rest: [], f: (d: { p: typeof blk.ln1; x: Array }) => layerNorm(d.p, d.x) },
    {
      name: "attention, KV-cached (QKᵀ, two-part softmax, PV; the row write is a host copy)",
      calls: L,
      fwdFlops: cacheFlops,
      diff: { p: tree.ref(blk.attn), x: x(), k: randn([1, S, H, DH], 4), v: randn([1, S, H, DH], 5) },
      rest: [slots.less(pos), np.ones([1, 1]).astype(np.bool), fromHost(Int32Array.of(pos), [1])],
      f: (d: { p: typeof blk.attn; x: Array; k: Array; v: Array }, [visible, fresh, ps]: Array[]) => {
        const out = attentionCached(d.p, d.x, { k: d.k, v: d.v }, visible, fresh, ps, { heads: H });
        tree.dispose([out.fresh, d.k, d.v]);
        return out.y;
      },
    },
    { name: "MLP (up, GELU, down)", calls: L, fwdFlops: 4 * D * F, diff: { p: tree.ref(blk.mlp), x: x() }, rest: [], f: (d: { p: typeof blk.mlp; x: Array }) => mlp(d.p, d.x) },
    { name: "LM head", calls: 1, fwdFlops: 2 * D * V, diff: { p: tree.ref(p.head), x: x() }, rest: [], f: (d: { p: typeof p.head; x: Array }) => linear(d.p, d.x) },
  ];
}

/** The AdamW update of every parameter, jitted alone (gradients: zeros of the right shapes). */
async function timeAdamW(params: Params, reps: number): Promise<PieceTime> {
  const grads = tree.map((a: Array) => np.zerosLike(a.ref), params);
  const state = initAdamW(params);
  const lr = np.array(LR);
  const update = jit((p: Params, g: Params, s: AdamWState, r: Array) => adamwUpdate(p, g, s, r, TORCH_ADAMW) as unknown as JsTree<Array>);
  const { best: ms } = await timeMs(() => ready(update(tree.ref(params), tree.ref(grads), tree.ref(state as unknown as JsTree<Array>) as unknown as AdamWState, lr.ref)), reps);
  update.dispose();
  tree.dispose([params, grads, state as unknown as JsTree<Array>, lr]);
  log(`  AdamW update: ${ms.toFixed(2)} ms`);
  return { name: "AdamW update (all params)", calls: 1, fwd_ms: round(ms, 3), ms_per_step: round(ms, 2) };
}

/**
 * Decode writes one new key/value row into each cache. Until 2026-11-23 a jitted step rewrote
 * the whole [1, H, S, Dh] cache: first as a one-hot blend (cache·keep + scatterᵀ·new, a K = T = 1
 * matmul), then as a select; now the decoder copies the row in place (`copyRunsInPlace`, via
 * `writeFresh`). Times all three (µs per call, fastest of 50) and checks they agree.
 */
async function cacheWriteExperiment(): Promise<{ blend_us: number; select_us: number; in_place_us: number; max_abs_diff: number }> {
  const cache = randn([1, H, S, DH], 8);
  const row = randn([1, H, 1, DH], 9);
  const w = np.arange(S).astype(np.int32).reshape([1, S]).equal(100).astype(np.float32); // [T = 1, S]
  const blend = jit((c: Array, n: Array, wm: Array) => {
    const keep = np.subtract(1, wm.ref.sum(0)).reshape([1, 1, -1, 1]);
    return c.mul(keep).add(np.matmul(wm.transpose([1, 0]).reshape([1, 1, -1, 1]), n));
  });
  const select = jit((c: Array, n: Array, wm: Array) => np.where(wm.reshape([1, 1, -1, 1]).greater(0), n, c));
  const us = async (f: typeof blend) => 1000 * (await timeMs(() => ready(f(cache.ref, row.ref, w.ref)), 50)).best;
  // in place: the same row into slot 100 of each head of a cache the copy owns alone
  const owned = cache.ref.add(0);
  await ready(owned.ref);
  const runs = globalThis.Array.from({ length: H }, (_, h) => [(h * S + 100) * DH, h * DH, DH]).flat();
  const inPlace = 1000 * (await timeMs(() => copyRunsInPlace(owned, row.ref, runs), 50)).best;
  const result = { blend_us: round(await us(blend), 1), select_us: round(await us(select), 1), in_place_us: round(inPlace, 1), max_abs_diff: 0 };
  const diff = np.maximum(np.abs(blend(cache.ref, row.ref, w.ref).sub(select(cache.ref, row.ref, w.ref))).max(), np.abs(select(cache.ref, row.ref, w.ref).sub(owned)).max());
  result.max_abs_diff = (await diff.data())[0];
  tree.dispose([cache, row, w]);
  blend.dispose();
  select.dispose();
  return result;
}

/**
 * Attention's per-head matmuls run at under half the speed of the projections'. The same
 * [B·H, T, T] @ [·, T, Dh] work (PV's shape), jitted alone, with a different rhs per batch
 * entry (as in attention) and with one rhs shared by the batch (as a weight matrix is):
 * ms per call, fastest of `reps`. jax-js 0.1.25's wasm matmul shares the rhs loads of a
 * register tile's 4 rows only when it can prove they read the same rhs row; an rhs index that
 * depends on the batch (gidx / (T·Dh)) defeats that proof, so each row loads its own copy.
 */
async function batchedMatmulExperiment(reps: number): Promise<{ per_batch_rhs_ms: number; shared_rhs_ms: number; gflop: number }> {
  const lhs = randn([B * H, T, T], 10);
  const rhs = randn([B * H, T, DH], 11);
  const shared = randn([1, T, DH], 12);
  const mm = jit((a: Array, b: Array) => np.matmul(a, b));
  const ms = async (b: Array) => (await timeMs(() => ready(mm(lhs.ref, b.ref)), reps)).best;
  const result = { per_batch_rhs_ms: round(await ms(rhs), 2), shared_rhs_ms: round(await ms(shared), 2), gflop: round((2 * B * H * T * T * DH) / 1e9, 3) };
  tree.dispose([lhs, rhs, shared]);
  mm.dispose();
  return result;
}

function kernelReport(kernels: KernelRecord[], wallMs: number, ops: OpSignature[], top: number) {
  const kernelMs = kernels.reduce((t, k) => t + k.ms, 0);
  const small = kernels.filter((k) => k.size <= 1024).map((k) => k.ms * 1000);
  return {
    wall_ms: round(wallMs, 1),
    kernels: kernels.length,
    kernel_ms: round(kernelMs, 1),
    executed_contraction_gflop: round(kernels.reduce((t, k) => t + k.flops, 0) / 1e9, 3),
    kernel_output_mib: round(kernels.reduce((t, k) => t + 4 * k.size, 0) / MIB, 1),
    small_kernels: { count: small.length, median_us: small.length > 0 ? round(median(small), 1) : undefined },
    by_kind: summarizeKinds(kernels),
    top: groupKernels(kernels, ops).slice(0, top),
  };
}

function withShares(rows: PieceTime[]): PieceTime[] {
  const total = rows.reduce((t, r) => t + r.ms_per_step, 0);
  return rows.map((r) => ({ ...r, pct: round((100 * r.ms_per_step) / total, 1) }));
}

async function main(): Promise<void> {
  const v = benchArgs(SPEC);
  if (!v) return;
  const { reps, top, json } = v;
  if (!Number.isInteger(reps) || reps < 1 || !Number.isInteger(top) || top < 1) throw new Error(`--reps and --top must be positive integers, got ${reps}, ${top}`);
  await startEngine();
  if (engineWorkerStats().threads > 1) throw new Error("bench:profile needs MMNTP_THREADS=1: with the worker pool a traced dispatch times only the hand-off, not the kernel");

  const keys = new KeyStream(0);
  const counts = countParams(initTransformer(new KeyStream(0), GPT));
  const trainer = new Trainer<NextTokenBatch>(initTransformer(keys, GPT), (p, b) => nextTokenLoss(p as TransformerParams, b, GPT), TORCH_ADAMW);
  keys.dispose();
  const host = syntheticTokens();
  const trainStep = async () => void (await trainer.step(deviceBatch(host), LR));
  log("training step: compile, time, trace");
  const trainMs = await timeMs(trainStep, Math.min(reps, 3));
  const trainTrace = await traceKernels(trainStep, Math.min(reps, 3));
  const wasmAfterTrain = wasmMemoryBytes();
  const params = () => tree.ref(trainer.params) as TransformerParams;

  log("decode step: compile, time, trace");
  const decodeStep = jit((p: TransformerParams, tokens: Array, caches: KVCache[], start: Array) => forwardCached(p, tokens, caches, start, GPT));
  const caches = initCaches(GPT, 1);
  let pos = 0;
  const oneToken = async () => {
    const r = decodeStep(params(), fromHost(Int32Array.of(1), [1, 1]), tree.ref(caches), np.array(pos, { dtype: np.int32 }));
    await r.logits.data();
    for (let i = 0; i < caches.length; i++) await writeFresh(caches[i], r.fresh[i], pos);
    pos++;
  };
  const decodeMs = await timeMs(oneToken, DECODE_REPS);
  const decodeTrace = await traceKernels(oneToken, DECODE_REPS);
  tree.dispose(caches);
  decodeStep.dispose();
  const decoder = new Decoder(params(), GPT);
  const generateMs = (await timeMs(async () => void (await decoder.generate([[0]], GENERATE_TOKENS, { sampling: GREEDY })), 3)).best / GENERATE_TOKENS;
  decoder.dispose();

  log("dispatch floor: a 1-element jitted add");
  const tiny = jit((x: Array) => x.add(1));
  const one = np.zeros([1]);
  const floorUs = 1000 * (await timeMs(() => ready(tiny(one.ref)), 200)).best;
  tiny.dispose();
  one.dispose();
  log("experiment: KV-cache write, one-hot blend vs select");
  const cacheWrite = await cacheWriteExperiment();
  log("experiment: batched matmul, per-batch vs shared rhs");
  const batchedMatmul = await batchedMatmulExperiment(Math.max(reps, 5));

  log("training pieces");
  const train: PieceTime[] = [];
  for (const piece of trainPieces(trainer.params as TransformerParams)) train.push(await timePiece(piece, reps, true));
  train.push(await timeAdamW(tree.ref(trainer.params), reps));
  log("decode pieces");
  const decode: PieceTime[] = [];
  for (const piece of decodePieces(trainer.params as TransformerParams)) decode.push(await timePiece(piece, Math.max(reps, DECODE_REPS), false));
  trainer.dispose();

  const flops = flopsPerToken(counts);
  const report = {
    date: today(),
    machine: { ...machineInfo(), load_avg: loadAverage() },
    versions: versions(),
    model: { ...GPT, batch: B, params: counts.total },
    settings: { threads: 1, reps },
    train_step: {
      best_ms: round(trainMs.best, 1),
      median_ms: round(trainMs.median, 1),
      trace_runs: Math.min(reps, 3),
      trace_cpu_busy: round(trainTrace.cpuBusy),
      model_gflop: round((flops.train * B * T) / 1e9, 3),
      wasm_mib: round(wasmAfterTrain / MIB, 1),
      ...kernelReport(trainTrace.kernels, trainTrace.wallMs, opSignatures(B, T, true), top),
    },
    decode_step: {
      best_ms: round(decodeMs.best, 2),
      median_ms: round(decodeMs.median, 2),
      trace_runs: DECODE_REPS,
      trace_cpu_busy: round(decodeTrace.cpuBusy),
      generate_ms_per_token: round(generateMs, 2),
      model_gflop: round(flops.decode / 1e9, 4),
      ...kernelReport(decodeTrace.kernels, decodeTrace.wallMs, opSignatures(1, 1, false), top),
    },
    dispatch_floor_us: round(floorUs, 1),
    cache_write_experiment: cacheWrite,
    batched_matmul_experiment: batchedMatmul,
    pieces: { train: withShares(train), decode: withShares(decode) },
  };
  console.log(markdown(report));
  console.log("\n```json\n" + JSON.stringify(report, null, 2) + "\n```");
  if (json !== undefined) writeFileSync(json, JSON.stringify(report, null, 2) + "\n");
}

type StepTimes = { best_ms: number; median_ms: number; trace_runs: number; trace_cpu_busy: number };
type Report = {
  train_step: ReturnType<typeof kernelReport> & StepTimes & { model_gflop: number; wasm_mib: number };
  decode_step: ReturnType<typeof kernelReport> & StepTimes & { generate_ms_per_token: number; model_gflop: number };
  pieces: { train: PieceTime[]; decode: PieceTime[] };
  dispatch_floor_us: number;
  cache_write_experiment: Awaited<ReturnType<typeof cacheWriteExperiment>>;
  batched_matmul_experiment: Awaited<ReturnType<typeof batchedMatmulExperiment>>;
  date: string;
  machine: ReturnType<typeof machineInfo> & { load_avg: number[] };
  versions: ReturnType<typeof versions>;
};

function markdown(r: Report): string {
  const kinds = (s: ReturnType<typeof kernelReport>) => markdownTable(["kind", "kernels", "ms", "%", "GFLOP/s"], s.by_kind.map((k) => [k.kind, k.count, k.ms, k.pct, k.gflops]));
  const tops = (s: ReturnType<typeof kernelReport>) => markdownTable(["kernel signature", "likely ops", "count", "ms", "%", "µs/call", "GFLOP/s"], s.top.map((g) => [g.signature, g.candidates, g.count, g.ms, g.pct, g.us_per_call, g.gflops]));
  const sum = (rows: PieceTime[]) => round(rows.reduce((t, p) => t + p.ms_per_step, 0), 2);
  const ts = r.train_step;
  const ds = r.decode_step;
  return [
    `# bench:profile — ${r.date}, ${r.machine.cpu} (${r.machine.cores} cores), node ${r.versions.node}, jax-js ${r.versions.jax_js}, 1 thread, load average ${r.machine.load_avg.join(" / ")}`,
    "",
    `Times are the fastest of several calls, and each kernel's the minimum over ${ts.trace_runs} traced training steps / ${ds.trace_runs} traced decode steps: the machine is shared, and slower runs mostly waited for a core.`,
    "",
    `## Training step (batch ${B} × ${T}): best ${ts.best_ms} ms, median ${ts.median_ms} ms; traced ${ts.wall_ms} ms (${ts.trace_cpu_busy} cores busy), ${ts.kernels} kernels = ${ts.kernel_ms} ms`,
    `Executed contraction work ${ts.executed_contraction_gflop} GFLOP (model: ${ts.model_gflop}); kernel outputs ${ts.kernel_output_mib} MiB per step; wasm memory ${ts.wasm_mib} MiB.`,
    `Experiment: [${B * H}, ${T}, ${T}] @ [·, ${T}, ${DH}] (${r.batched_matmul_experiment.gflop} GFLOP), jitted alone: a different rhs per batch entry (as attention's QKᵀ, PV) ${r.batched_matmul_experiment.per_batch_rhs_ms} ms, one rhs shared by the batch (as a weight) ${r.batched_matmul_experiment.shared_rhs_ms} ms.`,
    "",
    kinds(ts),
    "",
    tops(ts),
    "",
    markdownTable(["piece (own jit)", "calls/step", "fwd ms", "fwd+bwd ms", "ms/step", "%", "GFLOP/s"], [
      ...r.pieces.train.map((p) => [p.name, p.calls, p.fwd_ms, p.fwd_bwd_ms, p.ms_per_step, p.pct, p.gflops]),
      ["**sum of pieces**", undefined, undefined, undefined, sum(r.pieces.train), 100, undefined],
      ["**full jitted Trainer.step**", 1, undefined, undefined, ts.best_ms, undefined, undefined],
    ]),
    "",
    `## Decode step (batch 1, 256-slot cache): jitted step + readback best ${ds.best_ms} ms, median ${ds.median_ms} ms; Decoder.generate ${ds.generate_ms_per_token} ms/token`,
    `Traced ${ds.wall_ms} ms (${ds.trace_cpu_busy} cores busy), ${ds.kernels} kernels = ${ds.kernel_ms} ms; ${ds.small_kernels.count} kernels of ≤ 1024 outputs, median ${ds.small_kernels.median_us} µs each. A 1-element jitted add takes ${r.dispatch_floor_us} µs per call.`,
    `Experiment: writing one row into a [1, ${H}, ${S}, ${DH}] cache: one-hot blend, jitted (attentionCached until 2026-11-23) ${r.cache_write_experiment.blend_us} µs; np.where select, jitted (then) ${r.cache_write_experiment.select_us} µs; in-place row copy (copyRunsInPlace, the decoder now) ${r.cache_write_experiment.in_place_us} µs (max |difference| ${r.cache_write_experiment.max_abs_diff}).`,
    "",
    kinds(ds),
    "",
    tops(ds),
    "",
    markdownTable(["piece (own jit)", "calls/token", "ms/call", "ms/token", "%", "GFLOP/s"], [
      ...r.pieces.decode.map((p) => [p.name, p.calls, p.fwd_ms, p.ms_per_step, p.pct, p.gflops]),
      ["**sum of pieces**", undefined, undefined, sum(r.pieces.decode), 100, undefined],
      ["**full jitted step + readback**", 1, undefined, ds.best_ms, undefined, undefined],
    ]),
  ].join("\n");
}

await main();
