import { beforeAll, describe, expect, it } from "vitest";
import { startEngine, tree } from "../../src/engine/index.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import { cropFrames, recognize, synthesize, trainSpeech, type SpeechExample } from "../../src/pipelines/speech.ts";
import { speechFeatures } from "../../src/pipelines/speech-units.ts";
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
  it.each([false, true])("learns both directions: recognition writes each clip's words, synthesis its codes under the delay pattern (textCondition %s)", async (textCondition) => {
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
      balance: "clips",
      voicePrompt: 0,
      concat: 0,
      textCondition,
      model: { contextLength: 16, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "rope" },
    });
    try {
      expect(await recognize(model, text, examples)).toEqual(words);
      // hidden features for units: one [F, dim] per clip, the same alone as in a batch
      const feats = await speechFeatures(model, examples, 1);
      expect(feats.map((f) => f.length)).toEqual(examples.map((e) => e.frames * 32));
      expect(Array.from((await speechFeatures(model, [examples[2]!], 1))[0]!)).toEqual(Array.from(feats[2]!));
      await expect(speechFeatures(model, examples, 3)).rejects.toThrow(/layer must be an integer in \[1, 2\], got 3/);
      // without guidance, and with it (each text decoded beside its blank twin)
      for (const guidance of [1, 2]) {
        const made = await synthesize(model, examples.map((e) => e.text), { sampling: GREEDY, seed: 0, maxFrames: 10, minFrames: 1, guidance });
        made.forEach((m, i) => {
          expect(m.frames).toBe(examples[i]!.frames);
          expect(Array.from(m.codes)).toEqual(Array.from(examples[i]!.codes));
        });
      }
      // no <eoa> before minFrames: the greedy clip goes on past where it would end
      const longer = await synthesize(model, examples.map((e) => e.text), { sampling: GREEDY, seed: 0, maxFrames: 10, minFrames: 7, guidance: 1 });
      longer.forEach((m, i) => {
        expect(m.frames).toBeGreaterThanOrEqual(7);
        expect(Array.from(m.codes.subarray(0, examples[i]!.frames * levels))).toEqual(Array.from(examples[i]!.codes));
      });
    } finally {
      tree.dispose(model.params);
    }
  });

  it("continues a voice: after a prompt clip of one voice, synthesis speaks the text in that voice", async () => {
    // the same word sounds different in each voice: codes depend on both, and only the prompt tells the voice
    const words = ["zero", "one", "two"];
    const voices = ["A", "B"];
    const text = TextTokenizer.fromJSON(await trainTextTokenizer(words));
    const levels = 2;
    const examples: SpeechExample[] = voices.flatMap((voice, v) =>
      words.map((w, i) => {
        const frames = 3 + i;
        const codes = Int32Array.from({ length: frames * levels }, (_, j) => (j % levels === 0 ? 4 * v + ((j + i) % 4) : 4 * v + i));
        return { codes, frames, text: text.encodeText(w), transcript: w, voice };
      }),
    );
    const model = await trainSpeech(examples, text, 8, {
      seed: 2,
      steps: 600,
      batchSize: 8,
      lr: 5e-3,
      levels,
      shifts: [0],
      textDropout: 0,
      balance: "clips",
      voicePrompt: 2,
      concat: 0,
      textCondition: true,
      model: { contextLength: 16, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "rope" },
    });
    try {
      // every word in every voice, prompted with the start of another word's clip in that voice
      const prompts = examples.map((e) => cropFrames(examples.find((o) => o.voice === e.voice && o.transcript !== e.transcript)!, 2, levels));
      expect(prompts.every((p) => p.frames === 2 && p.codes.length === 2 * levels)).toBe(true);
      const made = await synthesize(model, examples.map((e) => e.text), { sampling: GREEDY, seed: 0, maxFrames: 8, minFrames: 1, guidance: 1 }, prompts);
      made.forEach((m, i) => expect(Array.from(m.codes)).toEqual(Array.from(examples[i]!.codes)));
      // the prompt decides: voice B's prompt before voice A's word gives voice B's codes
      const swapped = await synthesize(model, [examples[0]!.text], { sampling: GREEDY, seed: 0, maxFrames: 8, minFrames: 1, guidance: 1 }, [prompts[3]!]);
      expect(Array.from(swapped[0]!.codes)).toEqual(Array.from(examples[3]!.codes));
    } finally {
      tree.dispose(model.params);
    }
  });
});
