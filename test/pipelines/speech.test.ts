import { beforeAll, describe, expect, it } from "vitest";
import { startEngine, tree } from "../../src/engine/index.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import { recognize, synthesize, trainSpeech, type SpeechExample } from "../../src/pipelines/speech.ts";
import { TextTokenizer } from "../../src/tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../../src/tokenizers/text/train.ts";
import { wordAccuracy, wordErrors } from "../../src/eval/asr.ts";

beforeAll(startEngine);

describe("word accuracy", () => {
  it("counts substitutions, deletions and insertions against the reference", () => {
    expect(wordErrors("a handwritten seven", "a handwritten seven")).toEqual({ errors: 0, words: 3 });
    expect(wordErrors("a handwritten seven", "a seven")).toEqual({ errors: 1, words: 3 });
    expect(wordErrors("seven", "a handwritten seven")).toEqual({ errors: 2, words: 1 });
    expect(wordErrors("one two", "two one")).toEqual({ errors: 2, words: 2 });
    expect(wordAccuracy(["seven", "one two"], ["Seven", "one three"])).toBeCloseTo(1 - 1 / 3, 9);
    expect(() => wordAccuracy(["a"], [])).toThrow(/1 references but 0 hypotheses/);
  });
});

describe("speech in the unified model (toy codes)", () => {
  it("learns both directions: recognition writes each clip's words, synthesis its codes under the delay pattern", async () => {
    // four "words" whose clips are fixed code sequences of different lengths, 2 levels of 8 codes
    const words = ["zero", "one", "a handwritten two", "three"];
    const text = TextTokenizer.fromJSON(await trainTextTokenizer(words));
    const levels = 2;
    const examples: SpeechExample[] = words.map((w, i) => {
      const frames = 3 + i;
      const codes = Int32Array.from({ length: frames * levels }, (_, j) => (j * (i + 3) + i) % 8);
      return { codes, frames, text: text.encodeText(w), transcript: w };
    });
    const model = await trainSpeech(examples, text, 8, {
      seed: 1,
      steps: 200,
      batchSize: 8,
      lr: 5e-3,
      levels,
      shifts: [0],
      textDropout: 0.2,
      model: { contextLength: 16, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "rope" },
    });
    try {
      expect(await recognize(model, text, examples)).toEqual(words);
      // without guidance, and with it (each text decoded beside its blank twin)
      for (const guidance of [1, 2]) {
        const made = await synthesize(model, examples.map((e) => e.text), { sampling: GREEDY, seed: 0, maxFrames: 10, guidance });
        made.forEach((m, i) => {
          expect(m.frames).toBe(examples[i]!.frames);
          expect(Array.from(m.codes)).toEqual(Array.from(examples[i]!.codes));
        });
      }
    } finally {
      tree.dispose(model.params);
    }
  });
});
