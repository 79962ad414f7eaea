/**
 * KV-cached decoding with each step in one native call (native/decode.c): the `Decoder`'s API
 * and sampling loop (`generateFrom`), but the backbone's step runs in the addon on a host copy
 * of the weights instead of as ~100 jax-js kernels. Node only, where the native GEMM builds.
 *
 * Why: at decode sizes jax-js's per-kernel dispatch costs more than the arithmetic
 * (docs/performance.md: 98 kernels a token for the benchmark GPT); one call per step leaves the
 * weights streamed once. The maths is transformer.ts's and the logits agree with `Decoder`'s to
 * float32 rounding (test/generate/native-decoder.test.ts), not bit for bit, so greedy tokens can
 * differ where two logits tie to rounding.
 *
 * The weights are copied once when the decoder is made: training them afterwards does not
 * change what it decodes. A prompt is stepped one token at a time (no batched prefill).
 */
import { paramsToTensors } from "../engine/params.ts";
import { loadNativeKernels, nativeStats } from "../engine/native.ts";
import { threadsFromEnv } from "../engine/workers.ts";
import type { TransformerConfig, TransformerParams } from "../backbone/transformer.ts";
import { checkStreamPrompts, generateFrom, type DecodeStream, type GenerateOptions } from "./decode.ts";

// native/decode.c's spec layout: 17 fields, then 14 weight offsets per layer.
const LAYER_FIELDS = ["ln1.g", "ln1.b", "attn.qkv.w", "attn.qkv.b", "attn.out.w", "attn.out.b", "ln2.g", "ln2.b", "mlp.up.w", "mlp.up.b", "mlp.gate.w", "mlp.gate.b", "mlp.down.w", "mlp.down.b"] as const;
const HEADER = 17;
const SLOTS = 1;
const BATCH = 8;
const SLOT = 9;
const MLP_CODE = { gelu: 0, swiglu: 1 } as const;
const POSITION_CODE = { learned: 0, rope: 1, rope2d: 2 } as const;

/** Why `NativeDecoder` cannot run here, or undefined if it can. */
export function nativeDecoderMissing(): string | undefined {
  const native = loadNativeKernels();
  if (!native) return `the native addon is not available: ${nativeStats().reason ?? "unknown reason"}`;
  if (typeof native.decodeStep !== "function") return "the loaded native addon has no decodeStep (an older build)";
  return undefined;
}

export class NativeDecoder {
  #weights: Float32Array | undefined; // undefined once disposed
  readonly #spec: Int32Array; // the header for batch 1 (threads included); each stream copies it with its own B and slot

  /** `NativeDecoder.create` is the way to make one. */
  private constructor(
    readonly config: TransformerConfig,
    weights: Float32Array,
    spec: Int32Array,
  ) {
    this.#weights = weights;
    this.#spec = spec;
  }

  /**
   * A decoder over `params` (borrowed, copied to the host) with `threads` threads for the
   * matrix products (default MMNTP_THREADS, else 1). Throws, saying why, where the addon is missing.
   */
  static async create(params: TransformerParams, config: TransformerConfig, { threads = threadsFromEnv() }: { threads?: number } = {}): Promise<NativeDecoder> {
    const missing = nativeDecoderMissing();
    if (missing) throw new Error(`NativeDecoder: ${missing}; use Decoder instead`);
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`NativeDecoder: threads must be a positive integer, got ${threads}`);
    const tensors = await paramsToTensors(params);
    const names = ["tok.table", ...(config.positions === "learned" ? ["pos.table"] : []), "lnf.g", "lnf.b", "head.w"];
    for (let l = 0; l < config.layers; l++) for (const f of LAYER_FIELDS) if (config.mlp === "swiglu" || !f.startsWith("mlp.gate")) names.push(`blocks.${l}.${f}`);
    const offsets = new Map<string, number>();
    let total = 0;
    for (const name of names) {
      const t = tensors[name];
      if (!t || t.dtype !== "F32") throw new Error(`NativeDecoder: params has no float32 tensor "${name}" (config: ${config.mlp}, ${config.positions} positions)`);
      offsets.set(name, total);
      total += t.data.length;
    }
    const weights = new Float32Array(total);
    for (const name of names) weights.set(tensors[name]!.data as Float32Array, offsets.get(name)!);
    const at = (name: string) => offsets.get(name) ?? -1;
    const spec = new Int32Array(HEADER + LAYER_FIELDS.length * config.layers);
    spec.set([
      config.vocabSize, config.contextLength, config.dim, config.layers, config.heads, config.dim * config.mlpRatio,
      MLP_CODE[config.mlp], POSITION_CODE[config.positions], 1, 0, threads, config.contextLength,
      at("tok.table"), at("pos.table"), at("lnf.g"), at("lnf.b"), at("head.w"),
    ]);
    for (let l = 0; l < config.layers; l++) LAYER_FIELDS.forEach((f, i) => (spec[HEADER + LAYER_FIELDS.length * l + i] = at(`blocks.${l}.${f}`)));
    return new NativeDecoder(config, weights, spec);
  }

  /** As `Decoder.generate`: B equal-length prompts, up to `maxNew` new tokens each. */
  generate(prompts: readonly (readonly number[])[], maxNew: number, options: GenerateOptions): Promise<number[][]> {
    return generateFrom((rows, what, grids) => this.#stream(rows, maxNew, what, grids), this.config.vocabSize, prompts, maxNew, options);
  }

  /** As `Decoder.open`: a stream of its own over `prompts`, which the caller disposes. */
  async open(prompts: readonly (readonly number[])[], maxNew: number, grids?: readonly Int32Array[], what = "prompts"): Promise<DecodeStream> {
    return this.#stream(prompts, maxNew, what, grids);
  }

  #stream(prompts: readonly (readonly number[])[], maxNew: number, what: string, grids?: readonly Int32Array[]): DecodeStream {
    if (!this.#weights) throw new Error("NativeDecoder: used after dispose()");
    const { b, len, flat } = checkStreamPrompts(prompts, maxNew, this.config, what, grids);
    const native = loadNativeKernels()!;
    const { dim: d, layers, vocabSize: v } = this.config;
    const slots = len + maxNew - 1; // every position the stream will fill
    const f = d * this.config.mlpRatio;
    const spec = this.#spec.slice();
    spec[SLOTS] = slots;
    spec[BATCH] = b;
    let cache: Float32Array | undefined = new Float32Array(2 * layers * b * slots * d);
    const scratch = new Float32Array(b * (6 * d + 2 * f) + this.config.heads * slots);
    const tokens = new Int32Array(b);
    const positions = new Int32Array(2 * b);
    let pos = 0;
    // as Decoder: grids only place rope2d positions; other kinds count positions from 0
    const rowsAndColumns = this.config.positions === "rope2d" ? grids : undefined;
    const step = (): Float32Array => {
      const weights = this.#weights;
      if (!cache || !weights) throw new Error("NativeDecoder: stream used after dispose()");
      if (pos >= slots) throw new Error(`NativeDecoder: stream has filled its ${slots} positions (prompt ${len} + ${maxNew} new)`);
      spec[SLOT] = pos;
      for (let i = 0; i < b; i++) {
        positions[2 * i] = rowsAndColumns ? rowsAndColumns[i]![2 * pos]! : pos;
        positions[2 * i + 1] = rowsAndColumns ? rowsAndColumns[i]![2 * pos + 1]! : pos;
      }
      const logits = new Float32Array(b * v);
      native.decodeStep!(weights, spec, cache, scratch, tokens, positions, logits);
      pos++;
      return logits;
    };
    return {
      advance: async () => {
        if (pos === 0) {
          // the prompt, one position at a time: the last one's logits are the stream's first
          let logits: Float32Array | undefined;
          for (let t = 0; t < len; t++) {
            for (let i = 0; i < b; i++) tokens[i] = flat[i * len + t]!;
            logits = step();
          }
          return logits!;
        }
        return step();
      },
      feed: (next: Int32Array) => {
        if (next.length !== b) throw new Error(`NativeDecoder: feed got ${next.length} tokens, expected one per row (${b})`);
        tokens.set(next);
      },
      dispose: () => {
        cache = undefined;
      },
    };
  }

  /** Drops the host copy of the weights; the decoder cannot be used afterwards. */
  dispose(): void {
    this.#weights = undefined;
  }
}
