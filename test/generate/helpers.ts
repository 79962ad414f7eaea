import { fromHost, np, tree } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { initTargetPositions, orderLogits, type OrderParams } from "../../src/backbone/orders/forward.ts";
import { JointVocab } from "../../src/backbone/sequence/vocab.ts";
import { initTransformer, type TransformerConfig } from "../../src/backbone/transformer.ts";

/** text ids 0..5 (pad 0), `<bos> <boi> <eoi> <eos> <mask>`, 8 image codes: V = 19. */
export const vocab = JointVocab.build({
  text: { size: 6, pad: 0 },
  specials: ["<bos>", "<boi>", "<eoi>", "<eos>", "<mask>"],
  modalities: [{ name: "image", size: 8, begin: "<boi>", end: "<eoi>" }],
});
export const IMG = vocab.range("image");
export const BOS = vocab.special("<bos>");
export const BOI = vocab.special("<boi>");
export const MASK = vocab.special("<mask>");
/** `<bos> c <boi>` (the caption-free one: c = the pad 0). */
export const prompt = (c: number): number[] => [BOS, c, BOI];

export const config = (contextLength = 24): TransformerConfig => ({ vocabSize: vocab.size, contextLength, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" });

/** A fresh model; with `targets`, RAR's target-position table for that many image positions. */
export function model(seed: number, cfg: TransformerConfig, targets?: number): OrderParams {
  const keys = new KeyStream(seed);
  const p: OrderParams = initTransformer(keys, cfg);
  if (targets !== undefined) p.target = initTargetPositions(keys, targets, cfg.dim);
  keys.dispose();
  return p;
}

/**
 * The oracle's forward: one sequence, a mask given as a function (row, column) → visible, no
 * batching, no selection → logits [T][V]. Does not consume p.
 */
export function logitsOf(p: OrderParams, cfg: TransformerConfig, ids: readonly number[], sees: (q: number, k: number) => boolean, extra: { positions?: readonly number[]; target?: readonly number[] } = {}): number[][] {
  const t = ids.length;
  const m = Int32Array.from({ length: t * t }, (_, i) => (sees(Math.floor(i / t), i % t) ? 1 : 0));
  const logits = orderLogits(tree.ref(p), {
    ids: fromHost(Int32Array.from(ids), [1, t]),
    mask: fromHost(m, [t, t]).astype(np.bool),
    ...(extra.positions ? { positions: fromHost(Int32Array.from(extra.positions), [1, t]) } : {}),
    ...(extra.target ? { target: fromHost(Int32Array.from(extra.target), [1, t]) } : {}),
  }, cfg);
  return (logits.js() as number[][][])[0]!;
}

/** Argmax over the image codes of one logits row → the local code (ties: lower code). */
export function bestImageCode(row: readonly number[]): number {
  let best = IMG.start;
  for (let i = IMG.start; i < IMG.end; i++) if (row[i]! > row[best]!) best = i;
  return best - IMG.start;
}

/** softmax over the image codes of one row, at code c. */
export function imageProb(row: readonly number[], c: number): number {
  const xs = row.slice(IMG.start, IMG.end);
  const m = Math.max(...xs);
  const z = xs.reduce((a, x) => a + Math.exp(x - m), 0);
  return Math.exp(xs[c]! - m) / z;
}
