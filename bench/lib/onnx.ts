/**
 * bench:backbone's second anchor: the benchmark GPT exported to ONNX by
 * reference/torch_gpt_onnx.py (mmntp's architecture in PyTorch, seeded weights, a decode-step
 * graph whose KV cache grows by concatenation, as transformers.js-style exports have it) and run
 * with onnxruntime-node on the CPU, the engine a JavaScript user who only runs models already has.
 * The same weights load into mmntp (`referenceParams`), so the greedy tokens of PyTorch, ONNX
 * Runtime and mmntp can be compared.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { paramsOfInit } from "../../src/engine/params.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { decodeSafetensors } from "../../src/io/safetensors.ts";
import { backboneFromTorch } from "../../src/backbone/torch-names.ts";
import { initTransformer, type TransformerParams } from "../../src/backbone/transformer.ts";
import { tree } from "../../src/engine/index.ts";
import type { Decoder } from "../../src/generate/decode.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import { lastJsonLine } from "./child.ts";
import type { EngineName } from "./cli.ts";
import { GPT } from "./gpt.ts";
import { mean, median, round } from "./machine.ts";

/** Where the export lies and PyTorch's greedy tokens from token 0 (the 0 first). */
export type OnnxExport = { dir: string; torchTokens: number[]; torch: string; dispose: () => void };

/** Runs reference/torch_gpt_onnx.py into a temporary folder; `tokens` counts the leading 0. */
export function exportOnnx(python: string, tokens: number): OnnxExport {
  const dir = mkdtempSync(join(tmpdir(), "mmntp-onnx-"));
  const script = fileURLToPath(new URL("../../reference/torch_gpt_onnx.py", import.meta.url));
  const out = spawnSync(python, [script, "--out", dir, "--tokens", String(tokens)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (out.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`reference/torch_gpt_onnx.py failed with status ${out.status ?? out.signal}`);
  }
  const greedy = readGreedy(dir);
  return { dir, torchTokens: greedy.tokens, torch: greedy.torch, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** PyTorch's greedy tokens as the export wrote them. */
export const readGreedy = (dir: string) => JSON.parse(readFileSync(join(dir, "greedy.json"), "utf8")) as { tokens: number[]; torch: string };

/** The export's weights as mmntp parameters (through the PyTorch names `mmntp import` uses). */
export function referenceParams(dir: string): TransformerParams {
  const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(join(dir, "weights.safetensors"))));
  const init = () => {
    const keys = new KeyStream(0);
    const p = initTransformer(keys, GPT);
    keys.dispose();
    return p;
  };
  return paramsOfInit(backboneFromTorch(tensors, GPT, "the ONNX export's weights"), init, "the ONNX export's weights");
}

/** Where two token lists first differ (undefined if they are equal). */
export function firstMismatch(a: readonly number[], b: readonly number[]): number | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return undefined;
}

/** Decode-throughput figures shared by mmntp's and ONNX Runtime's batched runs. */
export type BatchDecode = {
  batch: number;
  steps: number;
  tokens_per_s_per_sequence: number;
  tokens_per_s_total: number;
  ms_per_step: number;
  calls_s: number[];
  warmup_calls_s: number[];
};

export const DECODE_CALLS = 5; // timed calls; the median counts
// Untimed full-length calls first: right after training, the first few calls ran up to 2× slower
// than the rest (V8 re-optimizing the decode path, GC of the training's garbage).
export const DECODE_WARMUP_CALLS = 2;

/** Times `call` (one full decode of `steps` steps at batch `batch`): warm-up calls, then the median of the timed ones. */
export async function timeBatchDecode(batch: number, steps: number, call: () => Promise<unknown>): Promise<BatchDecode> {
  const timed = async () => {
    const t0 = performance.now();
    await call();
    return (performance.now() - t0) / 1000;
  };
  const warm: number[] = [];
  for (let i = 0; i < DECODE_WARMUP_CALLS; i++) warm.push(await timed());
  const calls: number[] = [];
  for (let i = 0; i < DECODE_CALLS; i++) calls.push(await timed());
  const s = median(calls);
  return {
    batch,
    steps,
    tokens_per_s_per_sequence: round(steps / s, 1),
    tokens_per_s_total: round((batch * steps) / s, 1),
    ms_per_step: round((1000 * s) / steps, 3),
    calls_s: calls.map((c) => round(c, 3)),
    warmup_calls_s: warm.map((c) => round(c, 3)),
  };
}

type Ort = typeof import("onnxruntime-node");
type Session = import("onnxruntime-node").InferenceSession;
type Tensor = import("onnxruntime-node").Tensor;

/**
 * `steps` greedy steps at batch `batch` from token 0 at position 0, the cache fed back from the
 * previous step's `present_*` outputs. Returns every row's tokens, the leading 0 included.
 */
async function ortGreedy(ort: Ort, session: Session, batch: number, steps: number): Promise<number[][]> {
  const { layers, heads, dim, vocabSize: v } = GPT;
  const rows = Array.from({ length: batch }, () => [0]);
  let feeds: Record<string, Tensor> = { ids: new ort.Tensor("int64", new BigInt64Array(batch), [batch, 1]) };
  for (let i = 0; i < layers; i++) for (const kv of "kv") feeds[`past_${kv}_${i}`] = new ort.Tensor("float32", new Float32Array(0), [batch, heads, 0, dim / heads]);
  for (let t = 0; t < steps; t++) {
    feeds.pos = new ort.Tensor("int64", BigInt64Array.of(BigInt(t)), [1]);
    const out = await session.run(feeds);
    const logits = out.logits!.data as Float32Array;
    const ids = new BigInt64Array(batch);
    for (let b = 0; b < batch; b++) {
      let best = 0;
      for (let j = 1; j < v; j++) if (logits[b * v + j]! > logits[b * v + best]!) best = j;
      rows[b]!.push(best);
      ids[b] = BigInt(best);
    }
    feeds = { ids: new ort.Tensor("int64", ids, [batch, 1]) };
    for (let i = 0; i < layers; i++) for (const kv of "kv") feeds[`past_${kv}_${i}`] = out[`present_${kv}_${i}`]!;
  }
  return rows;
}

export type OrtResult = {
  threads: number;
  version: string;
  tokens_match_torch: boolean;
  first_mismatch?: number;
  decode: BatchDecode[];
  peak_rss_mib: number;
};

/** In a child process: ONNX Runtime on `threads` intra-op threads, greedy agreement then each batch timed. */
export async function ortChild(dir: string, threads: number, steps: number, batches: readonly number[]): Promise<OrtResult> {
  const ort = createRequire(import.meta.url)("onnxruntime-node") as Ort;
  const session = await ort.InferenceSession.create(join(dir, "decode.onnx"), { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all" });
  const tokens = (await ortGreedy(ort, session, 1, steps))[0]!;
  const mismatch = firstMismatch(tokens, readGreedy(dir).tokens);
  const decode: BatchDecode[] = [];
  for (const b of batches) decode.push(await timeBatchDecode(b, steps, () => ortGreedy(ort, session, b, steps)));
  await session.release();
  return {
    threads,
    version: ort.env.versions.node ?? "?",
    tokens_match_torch: mismatch === undefined,
    ...(mismatch === undefined ? {} : { first_mismatch: mismatch }),
    decode,
    peak_rss_mib: round((process.resourceUsage().maxRSS * 1024) / 2 ** 20, 1),
  };
}

/** Runs `script --ort-child` in a fresh Node for one thread count and returns its JSON. */
export function runOrtChild(script: string, dir: string, threads: number, steps: number, batches: readonly number[]): OrtResult {
  const flags = ["--ort-child", "--onnx-dir", dir, "--ort-threads", String(threads), "--decode", String(steps), "--batches", batches.join(",")];
  const out = spawnSync(process.execPath, [...process.execArgv, script, ...flags], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 * 2 ** 20 });
  if (out.status !== 0) throw new Error(`ONNX Runtime child (${threads} threads) failed with status ${out.status ?? out.signal}`);
  return lastJsonLine<OrtResult>(out.stdout, `ONNX Runtime child (${threads} threads)`);
}

export type GreedyCheck = { tokens: number; match: boolean; first_mismatch?: number };
type AnyDecoder = { generate: Decoder["generate"]; dispose: () => void };

/** `timeBatchDecode` of an mmntp decoder's greedy `generate` from token 0, at each batch size; `log` gets each result. */
export async function timeDecoderBatches(decoder: AnyDecoder, batches: readonly number[], steps: number, log: (d: BatchDecode) => void): Promise<BatchDecode[]> {
  const out: BatchDecode[] = [];
  for (const b of batches) {
    const prompts = Array.from({ length: b }, () => [0]);
    out.push(await timeBatchDecode(b, steps, () => decoder.generate(prompts, steps, { sampling: GREEDY })));
    log(out.at(-1)!);
  }
  return out;
}

/** mmntp's greedy tokens on the export's weights (from token 0, the 0 first) against PyTorch's. */
export async function greedyVsTorch(dir: string, steps: number, make: (p: TransformerParams) => AnyDecoder | Promise<AnyDecoder>): Promise<GreedyCheck> {
  const params = referenceParams(dir);
  const decoder = await make(params);
  const ours = [0, ...(await decoder.generate([[0]], steps, { sampling: GREEDY }))[0]!];
  decoder.dispose();
  tree.dispose(params);
  const mismatch = firstMismatch(ours, readGreedy(dir).tokens);
  return { tokens: ours.length, match: mismatch === undefined, ...(mismatch === undefined ? {} : { first_mismatch: mismatch }) };
}

/** What `onnxSection` reads of an mmntp bench child: its decode figures per batch and greedy checks. */
export type MmntpDecodeRun = {
  engine: EngineName;
  threads: number;
  decode: { tokens_per_s: number };
  decode_batched: BatchDecode[];
  greedy_vs_torch?: GreedyCheck;
  native_step?: { decode: BatchDecode[]; greedy_vs_torch?: GreedyCheck } | { skipped: string };
};

export type OrtSection = { skipped: string } | { runs: OrtResult[]; torchTokens: number };

/** ONNX Runtime's section and mmntp's ratios to its best thread count (the mean of its before/after runs), per batch. */
export function onnxSection(ort: OrtSection, runs: readonly MmntpDecodeRun[]) {
  if ("skipped" in ort) return { onnxruntime: { skipped: ort.skipped }, ratios: undefined };
  const threads = [...new Set(ort.runs.map((r) => r.threads))];
  const batches = ort.runs[0]!.decode.map((d) => d.batch);
  const perSeq = (t: number, b: number) => mean(ort.runs.filter((r) => r.threads === t).map((r) => r.decode.find((d) => d.batch === b)!.tokens_per_s_per_sequence));
  const best = Object.fromEntries(batches.map((b) => [`batch_${b}`, round(Math.max(...threads.map((t) => perSeq(t, b))), 1)]));
  // every mmntp configuration's tokens/s per sequence at each batch: the jitted Decoder per
  // engine and thread count, and the native engine's NativeDecoder
  const configs: { name: string; engine: EngineName; at: (b: number) => number }[] = runs.flatMap((r) => {
    const step = r.native_step && "decode" in r.native_step ? r.native_step.decode : undefined;
    return [
      { name: `${r.engine}_threads_${r.threads}`, engine: r.engine, at: (b: number) => (b === 1 ? r.decode.tokens_per_s : r.decode_batched.find((d) => d.batch === b)!.tokens_per_s_per_sequence) },
      ...(step ? [{ name: `native_step_threads_${r.threads}`, engine: r.engine, at: (b: number) => step.find((d) => d.batch === b)!.tokens_per_s_per_sequence }] : []),
    ];
  });
  const ratioRow = (at: (b: number) => number) => Object.fromEntries(batches.map((b) => [`decode_batch_${b}`, round(at(b) / best[`batch_${b}`]!, 3)]));
  const ratios = Object.fromEntries(configs.map((c) => [c.name, ratioRow(c.at)]));
  const bestOf = (engines: EngineName[]) => {
    const pool = configs.filter((c) => engines.includes(c.engine));
    return pool.length === 0 ? undefined : ratioRow((b) => Math.max(...pool.map((c) => c.at(b))));
  };
  return {
    onnxruntime: {
      version: ort.runs[0]!.version,
      threads,
      tokens_per_s_per_sequence_best: best,
      tokens_match_torch: ort.runs.every((r) => r.tokens_match_torch),
      mmntp_tokens_match_torch: runs.every((r) => r.greedy_vs_torch?.match === true && (r.native_step === undefined || "skipped" in r.native_step || r.native_step.greedy_vs_torch?.match === true)),
      greedy_tokens_compared: ort.torchTokens,
      runs: ort.runs,
    },
    ratios: { ...ratios, best_configuration: bestOf(["wasm", "native"]), best_wasm_only: bestOf(["wasm"]) },
  };
}
