import { beforeAll, describe, expect, it } from "vitest";
import { startEngine, tree } from "../../src/engine/index.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import { cropFrames, recognize, synthesize, trainSpeech, type SpeechExample, type SpeechTrainConfig, type SynthesisOptions } from "../../src/pipelines/speech.ts";
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

/** Four "words" whose clips are fixed code sequences of different lengths, 2 levels of 8 codes. */
async function toyWords() {
  const words = ["zero", "one", "a handwritten two", "three"];
  const text = TextTokenizer.fromJSON(await trainTextTokenizer(words));
  const levels = 2;
  const examples: SpeechExample[] = words.map((w, i) => {
    const frames = 3 + i;
    const codes = Int32Array.from({ length: frames * levels }, (_, j) => (j * (i + 3) + i) % 8);
    return { codes, frames, text: text.encodeText(w), transcript: w };
  });
  return { words, text, levels, examples };
}

const toyConfig = (over: Partial<SpeechTrainConfig>): SpeechTrainConfig => ({
  seed: 1,
  steps: 200,
  batchSize: 8,
  lr: 5e-3,
  levels: 2,
  shifts: [0],
  textDropout: 0.2,
  balance: "clips",
  voicePrompt: 0,
  concat: 0,
  textCondition: false,
  synthesisShare: 0.5,
  model: { contextLength: 16, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "rope" },
  ...over,
});

/** Greedy synthesis, no minimum length, no guidance unless asked. */
const greedy = (over: Partial<SynthesisOptions>): SynthesisOptions => ({ sampling: GREEDY, seed: 0, maxFrames: 10, minFrames: 1, minFramesPerToken: 0, guidance: 1, ...over });

describe("speech in the unified model (toy codes)", () => {
  it.each([false, true])("learns both directions: recognition writes each clip's words, synthesis its codes under the delay pattern (textCondition %s)", async (textCondition) => {
    const { words, text, levels, examples } = await toyWords();
    const model = await trainSpeech(examples, text, 8, toyConfig({ textCondition }));
    try {
      expect(await recognize(model, text, examples)).toEqual(words);
      // hidden features for units: one [F, dim] per clip, the same alone as in a batch
      const feats = await speechFeatures(model, examples, 1);
      expect(feats.map((f) => f.length)).toEqual(examples.map((e) => e.frames * 32));
      expect(Array.from((await speechFeatures(model, [examples[2]!], 1))[0]!)).toEqual(Array.from(feats[2]!));
      await expect(speechFeatures(model, examples, 3)).rejects.toThrow(/layer must be an integer in \[1, 2\], got 3/);
      // without guidance, and with it (each text decoded beside its blank twin)
      for (const guidance of [1, 2]) {
        const made = await synthesize(model, examples.map((e) => e.text), greedy({ guidance }));
        made.forEach((m, i) => {
          expect(m.frames).toBe(examples[i]!.frames);
          expect(Array.from(m.codes)).toEqual(Array.from(examples[i]!.codes));
        });
      }
      // no <eoa> before minFrames: the greedy clip goes on past where it would end
      const longer = await synthesize(model, examples.map((e) => e.text), greedy({ minFrames: 7 }));
      longer.forEach((m, i) => {
        expect(m.frames).toBeGreaterThanOrEqual(7);
        expect(Array.from(m.codes.subarray(0, examples[i]!.frames * levels))).toEqual(Array.from(examples[i]!.codes));
      });
      // per text token: only the three-word text (5 frames) is held to 3 × 2.5 frames; the others end as trained
      const perToken = await synthesize(model, examples.map((e) => e.text), greedy({ minFramesPerToken: 2.5 }));
      expect(perToken.map((m) => m.frames >= 8)).toEqual([false, false, true, false]);
      perToken.forEach((m, i) => expect(Array.from(m.codes.subarray(0, examples[i]!.frames * levels))).toEqual(Array.from(examples[i]!.codes)));
      expect(perToken.filter((_, i) => i !== 2).map((m) => m.frames)).toEqual([3, 4, 6]);
    } finally {
      tree.dispose(model.params);
    }
  });

  it("synthesisShare picks the task of each row: 0 trains recognition alone, 1 synthesis alone", async () => {
    const { words, text, examples } = await toyWords();
    const opts = greedy({});
    const right = (made: { codes: Int32Array }[]) => made.filter((m, i) => Array.from(m.codes).join() === Array.from(examples[i]!.codes).join()).length;
    const hearing = await trainSpeech(examples, text, 8, toyConfig({ synthesisShare: 0 }));
    const speaking = await trainSpeech(examples, text, 8, toyConfig({ synthesisShare: 1 }));
    try {
      expect(await recognize(hearing, text, examples)).toEqual(words);
      expect(right(await synthesize(hearing, examples.map((e) => e.text), opts))).toBeLessThan(2);
      expect(right(await synthesize(speaking, examples.map((e) => e.text), opts))).toBe(4);
      const heard = await recognize(speaking, text, examples);
      expect(heard.filter((h, i) => h === words[i]).length).toBeLessThan(2);
    } finally {
      tree.dispose(hearing.params);
      tree.dispose(speaking.params);
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
    const model = await trainSpeech(examples, text, 8, toyConfig({ seed: 2, steps: 600, textDropout: 0, voicePrompt: 2, textCondition: true }));
    try {
      // every word in every voice, prompted with the start of another word's clip in that voice
      const prompts = examples.map((e) => cropFrames(examples.find((o) => o.voice === e.voice && o.transcript !== e.transcript)!, 2, levels));
      expect(prompts.every((p) => p.frames === 2 && p.codes.length === 2 * levels)).toBe(true);
      const made = await synthesize(model, examples.map((e) => e.text), greedy({ maxFrames: 8 }), prompts);
      made.forEach((m, i) => expect(Array.from(m.codes)).toEqual(Array.from(examples[i]!.codes)));
      // the prompt decides: voice B's prompt before voice A's word gives voice B's codes
      const swapped = await synthesize(model, [examples[0]!.text], greedy({ maxFrames: 8 }), [prompts[3]!]);
      expect(Array.from(swapped[0]!.codes)).toEqual(Array.from(examples[3]!.codes));
    } finally {
      tree.dispose(model.params);
    }
  });
});
