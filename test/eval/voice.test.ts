import { beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../../src/engine/index.ts";
import { loadSpokenDigits } from "../../src/data/speech.ts";
import { voiceAccuracy, voiceEmbedding, voiceIdentifier } from "../../src/eval/voice.ts";

beforeAll(startEngine);

describe("voice identification", () => {
  it("summarizes the voiced frames only: mean and spread per band", () => {
    // 3 frames of 2 bands: two voiced frames, one 60 dB quieter (silence) that must not count
    const quiet = -20;
    const map = Float32Array.of(1, 3, 3, 5, quiet, quiet);
    expect(Array.from(voiceEmbedding(map, 2))).toEqual([2, 4, 1, 1]);
  });

  it("names the held-out speakers of real clips far above chance", async () => {
    const { test } = loadSpokenDigits();
    const clips = test.clips.map((c) => ({ samples: c.samples, voice: c.speaker }));
    const identify = await voiceIdentifier(clips.filter((_, i) => i % 2 === 0), 16000);
    const acc = await voiceAccuracy(identify, clips.filter((_, i) => i % 2 === 1));
    expect(new Set(clips.map((c) => c.voice)).size).toBe(4);
    expect(acc).toBeGreaterThan(0.7); // 0.85 measured; chance 0.25
  });
});
