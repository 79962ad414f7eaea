import { beforeAll, describe, expect, it } from "vitest";
import { startEngine, tree } from "../../src/engine/index.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import { compileDialogue, dialogueVocab, reply, trainDialogue, type Dialogue } from "../../src/pipelines/dialogue.ts";

beforeAll(startEngine);

describe("two-speaker streams (toy codes)", () => {
  const levels = 2;
  // word w is 2 frames of codes (1 + w, 5 + w) per level; silence is code 0 in both levels
  const word = (w: number) => [1 + w, 5 + w, 1 + w, 5 + w];
  const dialogue = (w: number, turnGap: number): Dialogue => {
    const frames = 2 + turnGap + 2 + 1;
    const a = new Int32Array(frames * levels);
    a.set(word(w), 0);
    const b = new Int32Array(frames * levels);
    b.set(word((w + 1) % 3), (2 + turnGap) * levels);
    return { a, b, frames, turn: 2 };
  };

  it("puts B's level k after all of A's frame, with loss on B's cells only", () => {
    const vocab = dialogueVocab(levels, 8);
    const seq = compileDialogue(vocab, dialogue(0, 1), levels);
    const k2 = 2 * levels;
    // B's level 0 of frame 3 (the reply's first frame) sits at start + 3 + K
    const start = seq.audio[0]!.start;
    expect(seq.ids[(start + 3 + levels) * k2 + levels]).toBe(vocab.range("audio2").start + 2);
    expect(seq.ids[(start + 3) * k2 + 0]).toBe(vocab.range("audio0").start + 0); // A is silent then
    const onA = seq.weights.filter((_, i) => i % k2 < levels).reduce((a, w) => a + w, 0);
    expect(onA).toBe(0);
    expect(seq.weights.reduce((a, w) => a + w, 0)).toBeCloseTo(1, 6);
  });

  it("learns to answer what it hears, in B's stream, silent while A speaks", async () => {
    const dialogues = [0, 1, 2].flatMap((w) => [dialogue(w, 1), dialogue(w, 1)]);
    const model = await trainDialogue(dialogues, 8, {
      seed: 0,
      steps: 250,
      batchSize: 6,
      lr: 5e-3,
      levels,
      replyFrames: 4,
      gapFrames: 1,
      partners: 1,
      model: { contextLength: 16, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "rope" },
    });
    try {
      const b = await reply(model, [0, 1, 2].map((w) => ({ codes: dialogue(w, 1).a, frames: dialogue(w, 1).frames })), { sampling: GREEDY, seed: 0 });
      b.forEach((codes, w) => expect(Array.from(codes)).toEqual(Array.from(dialogue(w, 1).b)));
    } finally {
      tree.dispose(model.params);
    }
  });
});
