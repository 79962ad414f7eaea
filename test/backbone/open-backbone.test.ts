import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, grad, np, startEngine, tree, type Array as JaxArray } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { causalMask } from "../../src/backbone/masks.ts";
import { checkTransformerConfig, countParameters, embedInputs, forward, hidden, initTransformer, lmHead, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { compileSequence } from "../../src/backbone/sequence/compile.ts";
import { JointVocab } from "../../src/backbone/sequence/vocab.ts";
import { Decoder } from "../../src/generate/decode.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import { sequenceLogProbs, tokenLogProbs, weightedCrossEntropy } from "../../src/train/losses.ts";
import { expectClose } from "../helpers/fixtures.ts";

beforeAll(startEngine);

const cfg: TransformerConfig = { vocabSize: 20, contextLength: 12, dim: 16, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" };
const host = (a: JaxArray) => Array.from(a.dataSync() as Float32Array);
const ids = (rows: number[][]) => fromHost(Int32Array.from(rows.flat()), [rows.length, rows[0]!.length]);

describe("open backbone: embed → hidden → heads", () => {
  it("forward = lmHead(hidden(embedInputs(ids))) exactly, and embeddings in give the same as their ids", () => {
    const p = initTransformer(new KeyStream(1), cfg);
    const seq = [[1, 5, 7, 2, 9], [3, 3, 4, 0, 19]];
    const want = host(forward(tree.ref(p), ids(seq), causalMask(5), cfg));
    const { tok, head, ...body } = tree.ref(p);
    const staged = host(lmHead(head, hidden(body, embedInputs(tok, { ids: ids(seq) }), causalMask(5), cfg)));
    expect(staged).toEqual(want);
    // the same rows of the embedding table, given as continuous inputs
    const rows = np.take(p.tok.table.ref, ids(seq), 0);
    const { head: h2, tok: _t, ...body2 } = tree.ref(p);
    _t.table.dispose();
    expectClose(host(lmHead(h2, hidden(body2, embedInputs(p.tok, { embeddings: rows }), causalMask(5), cfg))), want, 1e-6);
    tree.dispose({ ...p, tok: undefined });
  });

  it("places continuous embeddings at the placeholder slots a layout compiles, and only there", () => {
    const vocab = JointVocab.build({ text: { size: 10, pad: 0 }, specials: ["<bos>", "<image>"], modalities: [], placeholders: ["<image>"] });
    const c = compileSequence(vocab, { segments: [{ kind: "special", name: "<bos>" }, { kind: "text", ids: [4, 5] }, { kind: "placeholder", name: "image", slots: 3, token: "<image>" }, { kind: "text", ids: [6] }] });
    const slots = c.placeholders.flatMap((ph) => Array.from({ length: ph.slots }, (_, i) => ph.start + i));
    expect(slots).toEqual([3, 4, 5]);
    const small: TransformerConfig = { ...cfg, vocabSize: vocab.size };
    const p = initTransformer(new KeyStream(2), small);
    const t = c.length;
    const e = fromHost(Float32Array.from({ length: 3 * 16 }, (_, i) => Math.sin(i)), [1, 3, 16]);
    const x = host(embedInputs(tree.ref(p.tok), { ids: fromHost(c.ids, [1, t]), embeddings: e.ref, slots }));
    const table = host(p.tok.table.ref);
    const ev = host(e);
    for (let r = 0; r < t; r++) {
      const want = slots.includes(r) ? ev.slice(slots.indexOf(r) * 16, slots.indexOf(r) * 16 + 16) : table.slice(c.ids[r]! * 16, c.ids[r]! * 16 + 16);
      expectClose(x.slice(r * 16, r * 16 + 16), want, 1e-6);
    }
    // gradients reach the placed embeddings (a projector in front of them trains)
    const g = grad((emb: JaxArray) => embedInputs(tree.ref(p.tok), { ids: fromHost(c.ids, [1, t]), embeddings: emb, slots }).sum())(fromHost(new Float32Array(48), [1, 3, 16]));
    expect(host(g)).toEqual(new Array(48).fill(1));
    expect(() => embedInputs(tree.ref(p.tok), { ids: fromHost(c.ids, [1, t]), embeddings: fromHost(new Float32Array(32), [1, 2, 16]), slots })).toThrow("3 slots need embeddings [1, 3, 16], got [1, 2, 16]");
    tree.dispose(p);
  });

  it("rope2d: KV-cached greedy decoding with a layout's grid equals full forward passes with that grid", async () => {
    const c2: TransformerConfig = { ...cfg, positions: "rope2d", contextLength: 16 };
    // Scaled-up random weights, so greedy decoding does not settle on one repeated token.
    const p = tree.map((a: JaxArray) => a.mul(8), initTransformer(new KeyStream(3), c2)) as TransformerParams;
    // a 1-D prompt of 3, then a 3×3 block: rows/cols (s + r, s + c) with s = 3
    const grid = new Int32Array(2 * 12);
    for (let t = 0; t < 12; t++) [grid[2 * t], grid[2 * t + 1]] = t < 3 ? [t, t] : [3 + Math.floor((t - 3) / 3), 3 + ((t - 3) % 3)];
    const prompt = [1, 2, 3];
    const decoder = new Decoder(p, c2);
    const [got] = await decoder.generate([prompt], 8, { sampling: GREEDY, grids: [grid] });
    decoder.dispose();
    const seq = [...prompt];
    for (let i = 0; i < 8; i++) {
      const n = seq.length;
      const pos = fromHost(grid.slice(0, 2 * n), [n, 2]);
      const logits = host(forward(tree.ref(p), ids([seq]), causalMask(n), c2, pos)).slice((n - 1) * 20, n * 20);
      seq.push(logits.indexOf(Math.max(...logits)));
    }
    expect(got).toEqual(seq.slice(3));
    expect(new Set(got).size).toBeGreaterThan(2);
    // and the grid matters: default (t, t) positions decode differently
    const plain = new Decoder(p, c2);
    const [other] = await plain.generate([prompt], 8, { sampling: GREEDY });
    plain.dispose();
    expect(other).not.toEqual(got);
    tree.dispose(p);
  });

  it("config checks name the field before any allocation; countParameters matches initTransformer", () => {
    for (const c of [cfg, { ...cfg, mlp: "swiglu" as const, positions: "rope" as const }]) {
      const p = initTransformer(new KeyStream(0), c);
      expect(countParameters(c)).toBe(tree.leaves(p).reduce((n, a) => n + a.size, 0));
      tree.dispose(p);
    }
    expect(() => checkTransformerConfig({ ...cfg, heads: 3 })).toThrow("model config.dim: 16 is not divisible by heads (3)");
    expect(() => checkTransformerConfig({ ...cfg, layers: 1e9 })).toThrow("model config.layers: expected an integer in [1, 1024], got 1000000000");
    expect(() => checkTransformerConfig({ ...cfg, positions: "rope2d", heads: 8 })).toThrow("rope2d needs a head width (dim / heads = 2) divisible by 4");
    expect(() => checkTransformerConfig({ ...cfg, dim: 8192, layers: 1024 })).toThrow("parameters, more than the 1e+9");
    expect(() => checkTransformerConfig(null)).toThrow("model config: expected an object, got null");
  });
});

describe("losses: per-token, per-sequence and mean", () => {
  it("tokenLogProbs is log-softmax at the target; the mean and the sequence sums follow from it", () => {
    const logits = [0.5, -1, 2, 0.1, 0, 0, 3, -2, 1, 1, 1, 1]; // [B=1, T=3, V=4]
    const targets = [2, 0, 3];
    const w = [0.5, 0, 1];
    const lp = targets.map((y, t) => {
      const row = logits.slice(4 * t, 4 * t + 4);
      return row[y]! - Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
    });
    const L = () => fromHost(Float32Array.from(logits), [1, 3, 4]);
    const Y = () => fromHost(Int32Array.from(targets), [1, 3]);
    const W = () => fromHost(Float32Array.from(w), [1, 3]);
    expectClose(host(tokenLogProbs(L(), Y())), lp, 1e-5);
    expectClose(host(sequenceLogProbs(L(), Y(), W())), [0.5 * lp[0]! + lp[2]!], 1e-5);
    expectClose(host(weightedCrossEntropy(L(), Y(), W())), [-(0.5 * lp[0]! + lp[2]!) / 1.5], 1e-5);
  });
});
