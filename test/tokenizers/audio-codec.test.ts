import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, np, startEngine, tree } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { siSnr } from "../../src/eval/audio.ts";
import { initRVQ, quantize } from "../../src/tokenizers/quantizers/rvq.ts";
import { bitrate, decodeWave, encodeWave, hopOf, initCodec, type CodecConfig } from "../../src/tokenizers/audio/codec.ts";
import { checkCodecConfig, CodecTokenizer, DEFAULT_CODEC } from "../../src/tokenizers/audio/codec-tokenizer.ts";
import { codecUnitTargets, drawCodecBatch, trainCodec } from "../../src/train/codec.ts";
import { hostRng } from "../../src/engine/rng.ts";
import { uniformValues } from "../helpers/values.ts";

beforeAll(startEngine);

const SMALL: CodecConfig = { sampleRate: 16000, channels: 4, strides: [4, 5, 2], dilations: [1], latentDim: 4, rvq: { levels: 3, codebookSize: 16, beta: 0.25, dropout: 0.5, minLevels: 1 } };

/** A voiced sound: harmonics of f0 under a slow envelope, like a vowel. */
function vowel(n: number, f0: number, sampleRate = 16000): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => {
    const t = i / sampleRate;
    const env = Math.sin((Math.PI * i) / n);
    return 0.3 * env * (Math.sin(2 * Math.PI * f0 * t) + 0.5 * Math.sin(4 * Math.PI * f0 * t) + 0.25 * Math.sin(6 * Math.PI * f0 * t));
  });
}

describe("SI-SNR", () => {
  it("is 10 dB for an orthogonal error of a tenth of the power, whatever the gain", () => {
    const n = 1000;
    const s = Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * 5 * i) / n));
    const e = Float32Array.from({ length: n }, (_, i) => Math.sqrt(0.1) * Math.cos((2 * Math.PI * 5 * i) / n)); // ⟂ s, 1/10 its power
    const est = s.map((v, i) => v + e[i]!);
    expect(siSnr(s, est)).toBeCloseTo(10, 3);
    expect(siSnr(s, est.map((v) => 3 * v))).toBeCloseTo(10, 3);
    expect(siSnr(s, s.map((v) => v + 0.5))).toBe(100); // an offset is not error
    expect(() => siSnr(new Float32Array(4), new Float32Array(4))).toThrow(/reference is silent/);
    expect(() => siSnr(s, s.subarray(1))).toThrow(/same positive length, got 1000 and 999/);
  });
});

describe("RVQ level mask", () => {
  it("a mask of [1, 1, 0] gives the codes and losses of 2 active levels", async () => {
    const opts = { levels: 3, codebookSize: 8, dim: 4, beta: 0.25, distance: "l2" as const, dropout: 0, minLevels: 1 };
    const p = initRVQ(new KeyStream(3), opts);
    const x = fromHost(uniformValues(40, 1), [10, 4]);
    const two = quantize(tree.ref(p), x.ref, opts, 2);
    const masked = quantize(tree.ref(p), x.ref, opts, 3, fromHost(Float32Array.of(1, 1, 0), [3]));
    const twoCodes = await two.codes.data();
    expect(await masked.codes.data()).toEqual(twoCodes);
    expect((await masked.losses.commitment!.data())[0]).toBeCloseTo((await two.losses.commitment!.data())[0]!, 6);
    expect((await masked.losses.codebook!.data())[0]).toBeCloseTo((await two.losses.codebook!.data())[0]!, 6);
    const ids3 = (await masked.indices.data()) as Int32Array;
    const ids2 = (await two.indices.data()) as Int32Array;
    for (let r = 0; r < 10; r++) expect([ids3[r * 3], ids3[r * 3 + 1]]).toEqual([ids2[r * 2], ids2[r * 2 + 1]]);
    const full = quantize(p, x, opts, 3);
    expect(await full.codes.data()).not.toEqual(twoCodes);
  });
});

describe("the codec's shapes", () => {
  it("maps T samples to T/hop latent frames and back to T samples", () => {
    const p = initCodec(new KeyStream(0), SMALL);
    const hop = hopOf(SMALL);
    expect(hop).toBe(40);
    const z = encodeWave(tree.ref(p.enc), np.zeros([2, 7 * hop]), SMALL);
    expect(z.shape).toEqual([2, 7, 4]);
    const y = decodeWave(p.dec, z, SMALL);
    expect(y.shape).toEqual([2, 7 * hop]);
    expect(() => encodeWave(p.enc, np.zeros([2, 7 * hop + 1]), SMALL)).toThrow(/T a positive multiple of the hop \(40 samples\), got \[2, 281\]/);
    tree.dispose(p.rvq);
  });

  it("states its frame rate and bitrate", () => {
    expect(hopOf(DEFAULT_CODEC)).toBe(160);
    expect(bitrate(DEFAULT_CODEC)).toBe(100 * 8 * 8);
    expect(bitrate(DEFAULT_CODEC, 7)).toBe(5600);
  });
});

describe("CodecTokenizer", () => {
  it("encodes clips of any length in batches exactly as one at a time, and decodes whole frames", async () => {
    const codec = CodecTokenizer.init(SMALL, 1);
    const clips = [333, 40, 8000, 9001, 1].map((n, i) => ({ samples: vowel(n, 120 + 30 * i), sampleRate: 16000 }));
    const together = await codec.encode(clips);
    for (const [i, c] of clips.entries()) {
      const [alone] = await codec.encode([c]);
      expect(alone!.shape).toEqual([Math.max(1, Math.ceil(c.samples.length / 40)), 3]);
      expect(together[i]!.ids).toEqual(alone!.ids);
    }
    const back = await codec.decode(together);
    back.forEach((b, i) => expect(b.samples.length).toBe(together[i]!.shape[0]! * 40));
    // a prefix of the levels is a lower bitrate
    const two = await codec.decode([{ ids: together[0]!.ids.filter((_, j) => j % 3 < 2), shape: [together[0]!.shape[0]!, 2] }]);
    expect(two[0]!.samples.length).toBe(back[0]!.samples.length);
    codec.dispose();
  });

  it("saves and loads to the same ids, and refuses bad input naming it", async () => {
    const codec = CodecTokenizer.init(SMALL, 2);
    const clip = { samples: vowel(2000, 150), sampleRate: 16000 };
    const [ids] = await codec.encode([clip]);
    const saved = await codec.save();
    const again = CodecTokenizer.fromSaved(saved);
    expect((await again.encode([clip]))[0]!.ids).toEqual(ids!.ids);
    await expect(codec.encode([{ samples: clip.samples, sampleRate: 8000 }])).rejects.toThrow(/clip 0 is at 8000 Hz, the codec at 16000 Hz/);
    await expect(codec.encode([{ samples: new Float32Array(0), sampleRate: 16000 }])).rejects.toThrow(/clip 0 is empty/);
    await expect(codec.decode([{ ids: Int32Array.of(0, 1, 16), shape: [1, 3] }])).rejects.toThrow(/16/);
    await expect(codec.decode([{ ids: Int32Array.of(0, 1, 2, 3), shape: [1, 4] }])).rejects.toThrow(/expected \[frames, levels\] with 1 ≤ levels ≤ 3/);
    const broken = { ...saved, tensors: { ...saved.tensors } };
    delete (broken.tensors as Record<string, unknown>)["enc.inp.w"];
    expect(() => CodecTokenizer.fromSaved(broken)).toThrow(/enc\.inp\.w/);
    expect(() => new CodecTokenizer(codec.params, SMALL, { levels: 4 })).toThrow(/codec levels: expected an integer in \[1, 3\], got 4/);
    codec.dispose();
    again.dispose();
  });

  it("checks its config field by field", () => {
    const bad = (patch: Record<string, unknown>) => () => checkCodecConfig({ ...SMALL, ...patch });
    expect(bad({ strides: [4, 0] })).toThrow(/codec config\.strides: expected 1 to 6 integers in \[1, 64\], got \[4,0\]/);
    expect(bad({ latentDim: 0 })).toThrow(/codec config\.latentDim: expected an integer in \[1, 1024\], got 0/);
    expect(bad({ rvq: { ...SMALL.rvq, minLevels: 4 } })).toThrow(/rvq\.minLevels: expected an integer in \[1, rvq\.levels = 3\], got 4/);
    expect(bad({ rvq: { ...SMALL.rvq, dropout: 2 } })).toThrow(/rvq\.dropout: expected a probability in \[0, 1\], got 2/);
    expect(bad({ sampleRate: "16k" })).toThrow(/sampleRate: expected an integer in \[1000, 384000\] \(Hz\), got "16k"/);
  });
});

describe("trainCodec", () => {
  it("learns to reconstruct held-out vowels far better than its initialization", async () => {
    const cfg: CodecConfig = { ...SMALL, channels: 8, latentDim: 8, rvq: { ...SMALL.rvq, levels: 4, codebookSize: 32, dropout: 0 } };
    const train = Array.from({ length: 12 }, (_, i) => vowel(2400, 100 + 17 * i));
    const heldOut = [vowel(2400, 131), vowel(2400, 177)];
    const score = async (codec: CodecTokenizer) => {
      const out = await codec.decode(await codec.encode(heldOut.map((samples) => ({ samples, sampleRate: 16000 }))));
      return heldOut.reduce((a, s, i) => a + siSnr(s, out[i]!.samples), 0) / heldOut.length;
    };
    const init = CodecTokenizer.init(cfg, 0);
    const before = await score(init);
    init.dispose();
    const losses: number[] = [];
    const params = await trainCodec(train, cfg, { steps: 120, batchSize: 4, segment: 1200, lr: 3e-3, seed: 0, spectralWeight: 0.005, resolutions: [64, 128], restartEvery: 20, semanticWeight: 0, semanticUnits: 64 }, (_, f) => losses.push(f.l1!));
    const trained = new CodecTokenizer(params, cfg);
    const after = await score(trained);
    trained.dispose();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-20))).toBeLessThan(0.5 * mean(losses.slice(0, 10)));
    expect(after).toBeGreaterThan(before + 6);
    expect(after).toBeGreaterThan(3);
  });
});

describe("semantic distillation", () => {
  const hop = hopOf(SMALL);
  // clips of two sounds in turn (a low and a high vowel, then silence), so MFCC units change within a clip
  const clip = (i: number) => {
    const x = new Float32Array(2400 + 160 * (i % 5));
    x.set(vowel(960, 110 + 7 * i), 0);
    x.set(vowel(960, 420 + 5 * i), 960);
    return x;
  };

  it("draws windows on frame boundaries, and each window frame's unit from its clip's frame", () => {
    const clips = [clip(0), vowel(600, 200), clip(3)]; // the middle one is shorter than a window
    const rng = hostRng(4);
    const segment = 20 * hop;
    const frames = segment / hop;
    const drawn = drawCodecBatch(clips, 12, segment, rng, hop);
    const units = clips.map((c, k) => Int32Array.from({ length: Math.ceil(c.length / hop) }, (_, t) => 100 * k + t));
    const { targets, weights } = codecUnitTargets(units, drawn, frames, hop);
    for (let b = 0; b < 12; b++) {
      const c = clips[drawn.clip[b]!]!;
      const at = drawn.at[b]!;
      expect(Math.abs(at % hop)).toBe(0);
      let wrong = 0;
      for (let s = 0; s < segment; s++) if (drawn.wave[b * segment + s] !== (c[at + s] ?? 0)) wrong++;
      expect(wrong).toBe(0);
      for (let f = 0; f < frames; f++) {
        const t = at / hop + f;
        const inside = t >= 0 && t < units[drawn.clip[b]!]!.length;
        expect(weights[b * frames + f]).toBe(inside ? 1 : 0);
        if (inside) expect(targets[b * frames + f]).toBe(100 * drawn.clip[b]! + t);
      }
    }
    expect(drawn.at.some((a) => a < 0)).toBe(true); // the short clip sat inside its window
  });

  it("trains level 0's codes to tell the units apart (a head on undistilled codes does worse)", async () => {
    const cfg: CodecConfig = { ...SMALL, channels: 8, latentDim: 8, rvq: { ...SMALL.rvq, levels: 2, codebookSize: 16, dropout: 0 } };
    const clips = Array.from({ length: 12 }, (_, i) => clip(i));
    const headAccuracy = async (semanticWeight: number) => {
      const acc: number[] = [];
      const params = await trainCodec(clips, cfg, { steps: 150, batchSize: 4, segment: 1200, lr: 3e-3, seed: 0, spectralWeight: 0.005, resolutions: [64, 128], restartEvery: 20, semanticWeight, semanticUnits: 4 }, (_, f) => acc.push(f.unitAccuracy!));
      tree.dispose(params);
      return { first: mean(acc.slice(0, 10)), last: mean(acc.slice(-20)) };
    };
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const distilled = await headAccuracy(1);
    const probe = await headAccuracy(1e-6); // the head still learns (Adam), but barely moves the encoder
    expect(distilled.last).toBeGreaterThan(distilled.first + 0.2);
    expect(distilled.last).toBeGreaterThan(probe.last + 0.1);
  });
});
