/**
 * KV-cached decoding of multi-stream sequences (backbone/streams.ts): each pass reads K ids per
 * row (their embeddings summed) and its logits [V] choose the K ids of the next position. Rows
 * may have prompts of different lengths: all rows share positions, a row reads its prompt until
 * the prompt ends and its own choices after that, so one batch serves clips of every length
 * without left padding (the shortest prompt is prefilled in one pass, the rest one position at
 * a time).
 *
 * What to emit is the caller's (`StreamChooser`): the speech tasks of pipelines/speech.ts pick
 * text in stream 0 for recognition, and for synthesis K codes under the delay pattern's rules.
 */
import { blockUntilReady, fromHost, np, tree, type Array, type OwnedFunction } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import { conditionStreams, conditionWidth, type StreamCondition } from "../backbone/streams.ts";
import { writeFresh, type FreshKV, type KVCache } from "../nn/attention.ts";
import { checkIds } from "../nn/embedding.ts";
import { cachedBlocks, initCaches, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";

/**
 * The K ids of row `row`'s position (prompt length + `j`), from that row's logits [V] at the
 * position before (a copy: the caller may modify it); `logitsOf(r)` reads any row's logits of
 * this pass (classifier-free guidance pairs rows). Rows are asked in index order within a pass.
 * null = the row is finished (it reads pads from then on).
 */
export type StreamChooser = (row: number, j: number, logits: Float32Array, logitsOf: (row: number) => Float32Array) => Int32Array | null;

type Step = (tokens: Array[], conditions: Array[], caches: KVCache[], start: Array) => { logits: Array; fresh: FreshKV[] };

export class StreamDecoder {
  readonly #step: OwnedFunction<Step>;

  constructor(
    readonly params: TransformerParams,
    readonly config: TransformerConfig,
    readonly levels: number,
    readonly padId: number,
  ) {
    if (config.positions === "rope2d") throw new Error("StreamDecoder: streams use 1-D positions (learned or rope), got rope2d");
    this.#step = inferenceJit((tokens: Array[], conditions: Array[], caches: KVCache[], start: Array) => {
      const p = tree.ref(params);
      const t = tokens[0]!.shape[1];
      const positions = np.arange(t).astype(np.int32).add(start.ref); // [T]
      // rows gathered rather than one-hot: this pass is never differentiated
      let x = np.take(p.tok.table.ref, tokens[0]!, 0);
      for (const s of tokens.slice(1)) x = x.add(np.take(p.tok.table.ref, s, 0));
      for (const c of conditions) {
        const on = np.greaterEqual(c.ref, 0).astype(x.dtype).reshape([...c.shape, 1]);
        x = x.add(np.take(p.tok.table.ref, np.maximum(c, 0), 0).mul(on));
      }
      p.tok.table.dispose();
      if (p.pos) x = x.add(np.take(p.pos.table, positions.ref, 0));
      return cachedBlocks(p, x, caches, start, positions, config); // rotary positions (unused by learned ones)
    });
  }

  /**
   * prompts: one [P·K] id grid per row (position-major, as `compileStreams` makes them); decodes
   * until every row's chooser returned null or `maxLength` positions are filled. Returns each
   * row's whole grid (prompt included) up to the position where it finished. `conditions`: each
   * row's (its compiled prompt's); one open at the prompt's last position covers what follows.
   */
  async run(prompts: readonly Int32Array[], maxLength: number, choose: StreamChooser, conditions?: readonly (readonly StreamCondition[])[]): Promise<Int32Array[]> {
    const k = this.levels;
    const b = prompts.length;
    if (b === 0) throw new Error("StreamDecoder.run: no prompts");
    if (maxLength > this.config.contextLength) throw new Error(`StreamDecoder.run: ${maxLength} positions exceed the context of ${this.config.contextLength}`);
    const lengths = prompts.map((p, i) => {
      if (p.length === 0 || p.length % k !== 0) throw new Error(`StreamDecoder.run: prompt ${i} has ${p.length} ids, expected a non-empty multiple of ${k} streams`);
      checkIds(p, this.config.vocabSize, `prompt ${i} id`);
      if (p.length / k > maxLength) throw new Error(`StreamDecoder.run: prompt ${i} has ${p.length / k} positions, more than maxLength ${maxLength}`);
      return p.length / k;
    });
    await blockUntilReady(this.params);
    const grids = prompts.map((p) => {
      const g = new Int32Array(maxLength * k).fill(this.padId);
      g.set(p);
      return g;
    });
    if (conditions && conditions.length !== b) throw new Error(`StreamDecoder.run: ${conditions.length} rows of conditions for ${b} prompts`);
    const conds = conditions ? conditionStreams(conditions, maxLength, conditionWidth(conditions.map((c) => ({ conditions: c }))), lengths) : [];
    const ends = lengths.map(() => -1); // the position where each row finished
    const caches = initCaches(this.config, b);
    const v = this.config.vocabSize;
    try {
      let pos = 0;
      let n = Math.min(...lengths);
      while (pos + n < maxLength && ends.some((e) => e < 0)) {
        const tokens = globalThis.Array.from({ length: k }, (_, s) => {
          const host = new Int32Array(b * n);
          for (let i = 0; i < b; i++) for (let t = 0; t < n; t++) host[i * n + t] = grids[i]![(pos + t) * k + s]!;
          return fromHost(host, [b, n]);
        });
        const condTokens = conds.map((c) => {
          const host = new Int32Array(b * n);
          for (let i = 0; i < b; i++) host.set(c.subarray(i * maxLength + pos, i * maxLength + pos + n), i * n);
          return fromHost(host, [b, n]);
        });
        const r = this.#step(tokens, condTokens, tree.ref(caches), np.array(pos, { dtype: np.int32 }));
        const logits = (await r.logits.data()) as Float32Array; // [B, V]
        for (let l = 0; l < caches.length; l++) await writeFresh(caches[l]!, r.fresh[l]!, pos);
        pos += n;
        n = 1;
        const logitsOf = (r: number) => logits.subarray(r * v, (r + 1) * v);
        for (let i = 0; i < b; i++) {
          if (ends[i]! >= 0 || pos < lengths[i]!) continue;
          const ids = choose(i, pos - lengths[i]!, logits.slice(i * v, (i + 1) * v), logitsOf);
          if (ids === null) ends[i] = pos;
          else {
            if (ids.length !== k) throw new Error(`StreamDecoder.run: the chooser returned ${ids.length} ids for row ${i}, expected ${k}`);
            grids[i]!.set(ids, pos * k);
          }
        }
      }
    } finally {
      tree.dispose(caches);
    }
    return grids.map((g, i) => g.slice(0, (ends[i]! >= 0 ? ends[i]! : maxLength) * k));
  }

  dispose(): void {
    this.#step.dispose();
  }
}
