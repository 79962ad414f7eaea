import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, startEngine, tree } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { CaptionWords, checkObjective, DEFAULT_OBJECTIVES, initObjective, maskPatches, objectiveTerm } from "../../src/train/objectives.ts";

beforeAll(startEngine);

const logSumExp = (xs: number[]) => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
};

describe("tokenizer training objectives", () => {
  it("masked: blanks whole patches, about `ratio` of them, the same for the same (seed, step)", () => {
    const n = 2 * 28 * 28;
    const images = new Float32Array(n).fill(1);
    const o = { kind: "masked" as const, ratio: 0.5, patch: 4 };
    const a = maskPatches(images, [2, 1, 28, 28], o, 3, 10);
    expect(maskPatches(images, [2, 1, 28, 28], o, 3, 10)).toEqual(a);
    expect(maskPatches(images, [2, 1, 28, 28], o, 3, 11)).not.toEqual(a);
    let blanked = 0;
    for (let b = 0; b < 2; b++) {
      for (let py = 0; py < 7; py++) {
        for (let px = 0; px < 7; px++) {
          const vals = new Set<number>();
          for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) vals.add(a[b * 784 + (py * 4 + y) * 28 + px * 4 + x]!);
          expect(vals.size, "a patch is blanked whole or not at all").toBe(1);
          if (vals.has(0)) blanked++;
        }
      }
    }
    expect(blanked / 98).toBeGreaterThan(0.35);
    expect(blanked / 98).toBeLessThan(0.65);
    expect(images.every((v) => v === 1)).toBe(true); // the input is not modified
  });

  it("caption words: sorted vocabulary from 1, 0-padded rows", () => {
    const w = new CaptionWords(["a handwritten 7", "the digit seven"]);
    expect(w.words).toEqual(["7", "a", "digit", "handwritten", "seven", "the"]);
    expect(Array.from(w.ids(["the digit seven", "a 7"]))).toEqual([6, 3, 5, 2, 1, 0]);
  });

  it("supervised: weight × the cross-entropy of the head on the grid-mean of the codes", () => {
    const o = DEFAULT_OBJECTIVES.supervised as { kind: "supervised"; weight: number };
    const aux = initObjective(new KeyStream(1), o, 2, { classes: 3, labels: new Int32Array(0) });
    const codes = [1, 2, 3, 4, -1, 0, 1, 2]; // [2, 1, 2, 2]: image 0 pools to (2, 3), image 1 to (0, 1)
    const w = Array.from(aux.head!.w.ref.dataSync() as Float32Array);
    const b = Array.from(aux.head!.b!.ref.dataSync() as Float32Array);
    const labels = [2, 0];
    const pooled = [[2, 3], [0, 1]];
    const want = pooled.map((p, i) => {
      const logits = [0, 1, 2].map((k) => p[0]! * w[k]! + p[1]! * w[3 + k]! + b[k]!);
      return logSumExp(logits) - logits[labels[i]!]!;
    });
    const [term, m] = objectiveTerm(o, aux, fromHost(Float32Array.from(codes), [2, 1, 2, 2]), { labels: fromHost(Int32Array.from(labels), [2]) });
    expect(m.supervised!.ref.dataSync()[0]).toBeCloseTo((want[0]! + want[1]!) / 2, 5);
    expect(term.dataSync()[0]).toBeCloseTo((o.weight * (want[0]! + want[1]!)) / 2, 5);
    tree.dispose(m);
  });

  it("contrastive: the symmetric InfoNCE of normalized image and caption features", () => {
    const o = { kind: "contrastive" as const, weight: 1, temperature: 0.5, dim: 3 };
    const words = new CaptionWords(["a b", "c"]);
    const aux = initObjective(new KeyStream(2), o, 2, { classes: 1, labels: new Int32Array(0) }, words);
    const codes = fromHost(Float32Array.from([1, 0, 0.5, 2]), [2, 1, 1, 2]);
    const ids = words.ids(["a b", "c"]);
    const host = (a: { ref: { dataSync(): ArrayLike<number> } }) => Array.from(a.ref.dataSync());
    const [E, Wt, bt, Wi, bi] = [host(aux.words!.table), host(aux.text!.w), host(aux.text!.b!), host(aux.image!.w), host(aux.image!.b!)];
    const lin = (x: number[], W: number[], bias: number[]) => bias.map((bb, j) => bb + x.reduce((s, xi, i) => s + xi * W[i * 3 + j]!, 0));
    const unit = (v: number[]) => v.map((x) => x / Math.hypot(...v));
    const text = [[1, 2], [3]].map((row) => unit(lin([0, 1, 2].map((d) => row.reduce((s, id) => s + E[id * 3 + d]!, 0) / row.length), Wt, bt)));
    const image = [[1, 0], [0.5, 2]].map((p) => unit(lin(p, Wi, bi)));
    const logits = image.map((u) => text.map((v) => u.reduce((s, x, i) => s + x * v[i]!, 0) / o.temperature));
    const i2t = logits.map((row, i) => logSumExp(row) - row[i]!);
    const t2i = [0, 1].map((j) => logSumExp(logits.map((r) => r[j]!)) - logits[j]![j]!);
    const want = ((i2t[0]! + i2t[1]!) / 2 + (t2i[0]! + t2i[1]!) / 2) / 2;
    const [term, m] = objectiveTerm(o, aux, codes, { caption: fromHost(ids, [2, words.length]) });
    expect(term.dataSync()[0]).toBeCloseTo(want, 5);
    tree.dispose(m);
  });

  it("refuses unknown kinds and out-of-range settings, naming the field", () => {
    expect(() => checkObjective({ kind: "clip" })).toThrow("objective.kind: expected one of autoencode, masked, supervised, contrastive");
    expect(() => checkObjective({ kind: "masked", ratio: 1, patch: 4 })).toThrow("objective.ratio: expected a number in (0, 1), got 1");
    expect(() => checkObjective({ kind: "contrastive", weight: 1, temperature: 0.1, dim: 2.5 })).toThrow("objective.dim: expected an integer");
  });
});
