import { beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../../src/engine/index.ts";
import { hostRng } from "../../src/engine/rng.ts";
import { bagOf, probeAccuracy } from "../../src/eval/probe.ts";
import { DEFAULT_SEMANTIC, encodeUnits, fitSemanticUnits, mfccFrames } from "../../src/tokenizers/audio/semantic.ts";

beforeAll(startEngine);

const tone = (hz: number, n: number, sr = 16000) => Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * hz * i) / sr));

describe("semantic units (k-means over MFCC frames)", () => {
  it("gives one unit per codec frame, separates different sounds and ignores a clip's constant gain", async () => {
    const cfg = { ...DEFAULT_SEMANTIC, units: 4, iters: 10 };
    // two sounds, each clip one sound for its first half and the other after it
    const tones = new Map([300, 2500].map((hz) => [hz, tone(hz, 8000)]));
    const halves = (a: number, b: number, gain: number) => Float32Array.from({ length: 8000 }, (_, i) => gain * (i < 4000 ? tones.get(a)![i]! : tones.get(b)![i]!));
    const clips = [300, 2500].flatMap((a) => [0, 1].map((s) => halves(a, a === 300 ? 2500 : 300, 1 + s)));
    const units = await fitSemanticUnits(clips, cfg);
    const frames = await mfccFrames([tone(300, 1601)], cfg);
    expect(frames[0]!.length).toBe(Math.ceil(1601 / 160) * 39);
    const ids = await encodeUnits(units, [halves(300, 2500, 1), halves(300, 2500, 4)]);
    expect(ids[0]!.length).toBe(50);
    // away from the edges and the switch (frames 22–28), the first half is one unit and the second another (the switch's frames, all delta, may take units of their own)
    const first = ids[0]![5]!;
    for (let t = 5; t < 20; t++) expect(ids[0]![t]).toBe(first);
    const second = ids[0]![40]!;
    expect(second).not.toBe(first);
    for (let t = 30; t < 45; t++) expect(ids[0]![t]).toBe(second);
    // 4× louder: the same units (a gain is an offset of c0, removed per clip)
    expect(Array.from(ids[1]!.subarray(5, 45))).toEqual(Array.from(ids[0]!.subarray(5, 45)));
  });
});

describe("bag-of-ids probe", () => {
  it("reads a label that the ids carry and stays near chance when they carry none", () => {
    const rng = hostRng(3);
    const make = (n: number, informative: boolean) => {
      const labels = Array.from({ length: n }, () => Math.floor(rng() * 5));
      const bags = labels.map((l) => bagOf(Array.from({ length: 20 }, () => (informative && rng() < 0.5 ? l : 5 + Math.floor(rng() * 11))), 16));
      return { bags, labels };
    };
    expect(probeAccuracy(make(200, true), make(200, true), 5)).toBeGreaterThan(0.95);
    expect(probeAccuracy(make(200, false), make(400, false), 5)).toBeLessThan(0.35);
    expect(() => bagOf([0, 16], 16)).toThrow(/id 16 at 1 is outside \[0, 15\]/);
  });
});
