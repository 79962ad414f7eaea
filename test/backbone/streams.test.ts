import { beforeAll, describe, expect, it } from "vitest";
import { np, startEngine, tree } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { causalMask } from "../../src/backbone/masks.ts";
import { audioSpan, compileStreams, conditionStreams, embedStreams, levelName, levelRanges, readAudio, streamBatch, streamLength, streamVocab, type StreamSegment, type StreamSequence } from "../../src/backbone/streams.ts";
import { hidden, initTransformer, lmHead, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { StreamDecoder } from "../../src/generate/streams.ts";
import { streamLoss } from "../../src/train/losses.ts";

beforeAll(startEngine);

const K = 3;
const vocab = streamVocab({ size: 5, pad: 0 }, K, 4); // text 0..4, 4 specials, 3 levels of 4 codes
const codes = Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 3, 3, 3]); // 5 frames × 3 levels
const doc: StreamSegment[] = [{ kind: "special", name: "<bos>" }, { kind: "audio", codes, frames: 5, loss: 1 }, { kind: "text", ids: [2, 3], end: "<eos>", loss: 1 }];

describe("multi-stream delay layout", () => {
  it("puts level k of frame f at position start + f + k and reads it back", () => {
    const s = compileStreams(vocab, doc);
    expect(s.length).toBe(1 + 1 + audioSpan(5, K) + 3);
    expect(s.length).toBe(streamLength(doc, K));
    expect(s.audio).toEqual([{ start: 2, frames: 5 }]);
    for (let f = 0; f < 5; f++) for (let k = 0; k < K; k++) expect(s.ids[(2 + f + k) * K + k]).toBe(vocab.toJoint(levelName(k), codes[f * K + k]!));
    expect(Array.from(readAudio(vocab, s.ids, 2, 5))).toEqual(Array.from(codes));
    // <eoa> in stream 0 right after the last level-0 code; the text after the last delayed level
    expect(s.ids[(2 + 5) * K]).toBe(vocab.special("<eoa>"));
    expect(s.ids[(2 + audioSpan(5, K)) * K]).toBe(2);
    // cells before a level starts and after it ends are pads with no loss
    expect(s.ids[2 * K + 1]).toBe(vocab.padId);
    expect(s.weights[2 * K + 1]).toBe(0);
    // each segment's weights sum to its loss: the codes and <eoa> share 1, the text and <eos> share 1
    const sum = Array.from(s.weights).reduce((a, b) => a + b, 0);
    expect(sum).toBeCloseTo(2, 5);
  });

  it("refuses codes outside a level's codebook and shapes that do not match, naming the segment", () => {
    expect(() => compileStreams(vocab, [{ kind: "audio", codes: Int32Array.from([0, 4, 0]), frames: 1 }])).toThrow(/segment 0 \(audio\): frame 0 level 1 code 4 is outside \[0, 3\]/);
    expect(() => compileStreams(vocab, [{ kind: "audio", codes: Int32Array.from([0, 1]), frames: 1 }])).toThrow(/expected codes \[1 frames · 3 levels\] = 3, got 2/);
    expect(() => compileStreams(vocab, [{ kind: "text", ids: [0] }])).toThrow(/other than the pad id 0/);
  });

  it("a conditioned audio block adds its ids' embeddings from its <boa> to its last delayed level", async () => {
    const conditioned: StreamSegment[] = [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [2, 3] }, { kind: "audio", codes, frames: 5, condition: [3, 1] }, { kind: "text", ids: [4] }];
    const s = compileStreams(vocab, conditioned);
    expect(s.conditions).toEqual([{ from: 3, to: 4 + audioSpan(5, K), ids: [3, 1] }]);
    const [c0, c1] = conditionStreams([s.conditions], s.length, 3);
    expect(Array.from(c0!)).toEqual(Array.from({ length: s.length }, (_, p) => (p >= 3 && p < 4 + audioSpan(5, K) ? 3 : -1)));
    expect(Array.from(c1!).filter((x) => x === 1).length).toBe(1 + audioSpan(5, K));
    expect(conditionStreams([s.conditions], s.length, 3)[2]!.every((x) => x === -1)).toBe(true);
    // a prompt's <boa> condition stays on after the prompt
    const prompt = compileStreams(vocab, [{ kind: "special", name: "<bos>" }, { kind: "special", name: "<boa>", condition: [2] }]);
    expect(Array.from(conditionStreams([prompt.conditions], 5, 1, [prompt.length])[0]!)).toEqual([-1, 2, 2, 2, 2]);
    expect(() => conditionStreams([s.conditions], s.length, 1)).toThrow(/row 0 has a condition of 2 ids, more than the 1 condition streams/);
    expect(() => compileStreams(vocab, [{ kind: "audio", codes, frames: 5, condition: [0] }])).toThrow(/segment 0 \(audio\) condition: text id 0 is not a text id/);
    // the embedding of a conditioned position is its streams' plus its condition's rows; −1 adds nothing
    const p = initTransformer(new KeyStream(2), cfg);
    const b = streamBatch(vocab, [s], s.length - 1);
    tree.dispose([b.targets, b.weights]);
    const x = (await embedStreams(tree.ref(p.tok), [...b.inputs, ...b.conditions]).data()) as Float32Array;
    const table = (await p.tok.table.ref.data()) as Float32Array;
    const d = cfg.dim;
    for (const pos of [1, 3, 6]) {
      const ids = [...Array.from({ length: K }, (_, k) => s.ids[pos * K + k]!), ...(pos >= 3 ? [3, 1] : [])];
      for (let i = 0; i < d; i++) expect(x[pos * d + i]).toBeCloseTo(ids.reduce((a, id) => a + table[id * d + i]!, 0), 5);
    }
    tree.dispose(p);
  });

  it("batches inputs and next-position targets per stream, level targets as local codes", async () => {
    const s = compileStreams(vocab, doc);
    const b = streamBatch(vocab, [s], 16);
    const inputs = await Promise.all(b.inputs.map((a) => a.data()));
    const targets = await Promise.all(b.targets.map((a) => a.data()));
    const weights = await Promise.all(b.weights.map((a) => a.data()));
    for (let t = 0; t < 16; t++) {
      for (let k = 0; k < K; k++) {
        expect(inputs[k]![t]).toBe(t < s.length ? s.ids[t * K + k] : vocab.padId);
        const w = t + 1 < s.length ? s.weights[(t + 1) * K + k]! : 0;
        expect(weights[k]![t]).toBeCloseTo(w, 6);
        if (w > 0) expect(targets[k]![t]).toBe(s.ids[(t + 1) * K + k]! - (k === 0 ? 0 : vocab.range(levelName(k)).start));
      }
    }
  });
});

const cfg: TransformerConfig = { vocabSize: vocab.size, contextLength: 24, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "rope" };

/** Full-forward logits [T, V] of one compiled sequence (with its conditions). */
async function fullLogits(p: TransformerParams, ids: Int32Array, t: number, conditions: StreamSequence["conditions"] = []): Promise<Float32Array> {
  const s = { length: t, levels: K, ids, weights: new Float32Array(t * K), audio: [], conditions };
  const b = streamBatch(vocab, [s], t);
  tree.dispose([b.targets, b.weights]);
  const { tok, head, ...body } = tree.ref(p);
  return (await lmHead(head, hidden(body, embedStreams(tok, [...b.inputs, ...b.conditions]), causalMask(t), cfg)).data()) as Float32Array;
}

describe("multi-stream loss and decoding", () => {
  it("the loss is stream 0's full softmax plus each level's softmax over its own codes, weighted", async () => {
    const p = initTransformer(new KeyStream(3), cfg);
    const s = compileStreams(vocab, doc);
    const t = s.length - 1;
    const logits = await fullLogits(p, s.ids, t);
    const v = vocab.size;
    const ranges = [vocab.range("text"), ...levelRanges(vocab)];
    let num = 0;
    let den = 0;
    for (let q = 0; q < t; q++) {
      for (let k = 0; k < K; k++) {
        const w = s.weights[(q + 1) * K + k]!;
        if (w === 0) continue;
        const [lo, hi] = k === 0 ? [0, v] : [ranges[k]!.start, ranges[k]!.end];
        const row = Array.from(logits.subarray(q * v + lo, q * v + hi));
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
        num -= w * (row[s.ids[(q + 1) * K + k]! - lo]! - lse);
        den += w;
      }
    }
    const [loss, aux] = streamLoss(tree.ref(p), streamBatch(vocab, [s], t), cfg, levelRanges(vocab));
    expect(await loss.item()).toBeCloseTo(num / den, 4);
    tree.dispose(aux);
    tree.dispose(p);
  });

  it("KV-cached decoding from prompts of different lengths gives the full forward's logits", async () => {
    const p = initTransformer(new KeyStream(4), cfg);
    const s = compileStreams(vocab, doc);
    const full = await fullLogits(p, s.ids, s.length);
    const v = vocab.size;
    const decoder = new StreamDecoder(p, cfg, K, vocab.padId);
    // two rows with the same sequence but prompts of 3 and 6 positions: each is teacher-forced on it
    const cuts = [3, 6];
    const seen: number[][] = [[], []];
    const grids = await decoder.run(cuts.map((c) => s.ids.slice(0, c * K)), s.length, (row, j, logits) => {
      const at = cuts[row]! + j;
      const want = full.subarray((at - 1) * v, at * v);
      seen[row]!.push(Math.max(...Array.from(logits, (x, i) => Math.abs(x - want[i]!))));
      return at < s.length - 1 ? s.ids.slice(at * K, (at + 1) * K) : null;
    });
    decoder.dispose();
    expect(seen[0]!.length).toBe(s.length - 3);
    expect(seen[1]!.length).toBe(s.length - 6);
    expect(Math.max(...seen.flat())).toBeLessThan(1e-4);
    expect(Array.from(grids[0]!)).toEqual(Array.from(s.ids.slice(0, (s.length - 1) * K)));
    tree.dispose(p);
  });

  it("decoding after a conditioned <boa> gives the full forward's logits of the conditioned block", async () => {
    const p = initTransformer(new KeyStream(6), cfg);
    const head: StreamSegment[] = [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [2, 3] }];
    const s = compileStreams(vocab, [...head, { kind: "audio", codes, frames: 5, condition: [2, 3] }]);
    const prompt = compileStreams(vocab, [...head, { kind: "special", name: "<boa>", condition: [2, 3] }]);
    const full = await fullLogits(p, s.ids, s.length, s.conditions);
    const plain = await fullLogits(p, s.ids, s.length);
    const v = vocab.size;
    const decoder = new StreamDecoder(p, cfg, K, vocab.padId);
    const gaps: number[] = [];
    await decoder.run([prompt.ids], s.length, (_, j, logits) => {
      const at = prompt.length + j;
      gaps.push(Math.max(...Array.from(logits, (x, i) => Math.abs(x - full[(at - 1) * v + i]!))));
      return at < s.length ? s.ids.slice(at * K, (at + 1) * K) : null;
    }, [prompt.conditions]);
    decoder.dispose();
    expect(gaps.length).toBe(s.length - prompt.length);
    expect(Math.max(...gaps)).toBeLessThan(1e-4);
    // and the condition matters: without it the logits differ
    expect(Math.max(...Array.from(plain.subarray((prompt.length - 1) * v), (x, i) => Math.abs(x - full[(prompt.length - 1) * v + i]!)))).toBeGreaterThan(1e-3);
    tree.dispose(p);
  });

  it("refuses prompts that are not whole positions or exceed the context", async () => {
    const p = initTransformer(new KeyStream(5), cfg);
    const decoder = new StreamDecoder(p, cfg, K, vocab.padId);
    await expect(decoder.run([new Int32Array(4)], 8, () => null)).rejects.toThrow(/prompt 0 has 4 ids, expected a non-empty multiple of 3 streams/);
    await expect(decoder.run([new Int32Array(3)], 99, () => null)).rejects.toThrow(/99 positions exceed the context of 24/);
    await expect(decoder.run([Int32Array.from([0, 0, 99])], 8, () => null)).rejects.toThrow(/prompt 0 id 99/);
    decoder.dispose();
    tree.dispose(p);
    void np;
  });
});
