import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readWav, writeWav } from "../../src/io/wav.ts";
import { PNG } from "pngjs";
import { inProcess, mmntp as spawned } from "../helpers/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-speech-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Training through the real entry (bin/mmntp.js); the commands after it in this process, where
// a spawned CLI would spend a second or two starting tsx and the engine.
const mmntp = (...args: string[]) => spawned(args);

const SIX = ["en-us_m1_zero_s140_p35", "en_f2_one_s190_p65", "en-gb-scotland_m3_two_s140_p65", "en-029_f4_three_s190_p35", "en-us_m1_a-handwritten-four_s165_p50", "en_m1_five_s140_p35"];

describe("mmntp speech, asr and tts", () => {
  const data = join(dir, "speech");
  const codec = join(dir, "codec");
  const run = join(dir, "run");

  it("trains a small speech model on a WAV folder, recognizes files and speaks a text into WAV + spectrogram", async () => {
    mkdirSync(data);
    for (const f of SIX) copyFileSync(`data/speech/clips/${f}.wav`, join(data, `${f}.wav`));
    // the third column names the speaker: en-us_m1 says "zero" and "a handwritten four"
    writeFileSync(join(data, "transcript.tsv"), SIX.map((f) => `${f}.wav\t${f.split("_")[2]!.replace(/-/g, " ")}\t${f.split("_").slice(0, 2).join("_")}\n`).join(""));
    const c = mmntp("codec", "train", "--data", data, "-o", codec, "--steps", "2", "--set", "codec.channels=4", "--set", "codec.rvq.levels=2", "--set", "codec.rvq.codebookSize=16", "--set", "train.batchSize=4");
    expect(c.code).toBe(0);

    const small = ["--set", "levels=2", "--set", "batchSize=4", "--set", "model.dim=16", "--set", "model.heads=2", "--set", "model.layers=1", "--set", "model.mlpRatio=2"];
    const t = mmntp("speech", "train", "--data", data, "--codec", codec, "-o", run, "--steps", "4", ...small, "--set", "voicePrompt=4", "--set", "textCondition=true", "--json");
    expect(t.err).not.toMatch(/Error/);
    expect(t.code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(run, "speech.json"), "utf8"));
    expect(manifest).toMatchObject({ format: "mmntp-speech", levels: 2, textCondition: true, training: { steps: 4, data, clips: 6, textCondition: true } });
    for (const f of ["model.safetensors", "model.json", "tokenizer.json", "codec/codec.safetensors", "codec/codec.json"]) expect(existsSync(join(run, f))).toBe(true);

    const clip = join(data, `${SIX[0]}.wav`);
    const a = await inProcess("asr", clip, join(data, `${SIX[4]}.wav`), "--run", run, "--spectrograms", join(dir, "pngs"), "--json");
    expect(a.code).toBe(0);
    const heard = JSON.parse(a.out) as { files: { file: string; text: string; spectrogram: string }[]; realTimeFactor: number };
    expect(heard.files.map((f) => f.file)).toEqual([clip, join(data, `${SIX[4]}.wav`)]);
    // an untrained model's words, but only words of the tokenizer (no pads, no specials)
    for (const f of heard.files) expect(f.text).toMatch(/^(|(zero|one|two|three|four|five|a|handwritten)( (zero|one|two|three|four|five|a|handwritten))*)$/);
    expect(PNG.sync.read(readFileSync(heard.files[0]!.spectrogram)).width).toBeGreaterThan(10);
    expect(heard.realTimeFactor).toBeGreaterThan(0);

    const out = join(dir, "said.wav");
    const s = await inProcess("tts", "a handwritten four", "-o", out, "--run", run, "--count", "2", "--max-seconds", "0.3", "--json");
    expect(s.err).not.toMatch(/Error/);
    expect(s.code).toBe(0);
    const said = JSON.parse(s.out) as { files: { wav: string; spectrogram: string; seconds: number; recognized: string }[] };
    expect(said.files.map((f) => f.wav)).toEqual([join(dir, "said-1.wav"), join(dir, "said-2.wav")]);
    for (const f of said.files) {
      const w = readWav(f.wav);
      expect(w.sampleRate).toBe(16000);
      expect(w.samples.length).toBe(Math.round(f.seconds * 16000));
      expect(f.seconds).toBeGreaterThan(0);
      expect(f.seconds).toBeLessThanOrEqual(0.3 + 1e-9);
      expect(existsSync(f.spectrogram)).toBe(true);
    }

    // in the voice of a clip: its first 4 frames are the prompt
    const v = await inProcess("tts", "five", "-o", join(dir, "voiced.wav"), "--run", run, "--voice", clip, "--max-seconds", "0.2", "--json");
    expect(v.err).not.toMatch(/Error/);
    expect(JSON.parse(v.out).files[0].seconds).toBeGreaterThan(0);

    const ev = await inProcess("speech", "eval", "--run", run, "--data", data, "--samples", "1", "--json");
    expect(ev.code).toBe(0);
    const report = JSON.parse(ev.out) as { clips: number; synthesized: number; asrWordAccuracy: number; ttsRecognized: number; ttsByTranscript: Record<string, number>; voice: { voices: number; requests: number; chance: number } };
    // voices with two clips of different transcripts: en-us_m1 alone, one continuation
    expect(report.voice).toMatchObject({ voices: 5, requests: 1, chance: 0.2 });
    expect(report.clips).toBe(6);
    expect(report.synthesized).toBe(6); // six distinct transcripts, one synthesis each
    expect(report.asrWordAccuracy).toBeLessThanOrEqual(1);
    expect(report.ttsRecognized).toBeGreaterThanOrEqual(0);
    // per transcript: the six texts, whose shares average to the whole
    const shares = Object.values(report.ttsByTranscript);
    expect(shares).toHaveLength(6);
    expect(shares.reduce((a, x) => a + x, 0) / 6).toBeCloseTo(report.ttsRecognized, 12);
    // the synthesis flags reach the evaluation, and are checked
    expect((await inProcess("speech", "eval", "--run", run, "--data", data, "--guidance", "-1")).err).toContain("--guidance must be a finite number ≥ 0 (1 = off), got -1");
    expect((await inProcess("tts", "five", "-o", join(dir, "x.wav"), "--run", run, "--min-frames", "0")).err).toContain("--min-frames must be an integer ≥ 1, got 0");
    expect((await inProcess("tts", "five", "-o", join(dir, "x.wav"), "--run", run, "--min-frames-per-token", "-2")).err).toContain("--min-frames-per-token must be a finite number ≥ 0 (0 = off), got -2");
    expect((await inProcess("speech", "eval", "--run", run, "--data", data, "--seed", "1.5")).err).toContain("--seed must be an integer in [0, 4294967295], got 1.5");
  });

  it("continues a run's model with --from: its weights, codec, tokenizer, data and config", async () => {
    // at a learning rate far below any weight's ulp, two more steps leave every weight as it was: a fresh model would not
    const cont = join(dir, "continued");
    const c = await inProcess("speech", "train", "--from", run, "-o", cont, "--steps", "2", "--set", "lr=1e-30", "--json");
    expect(c.err).not.toMatch(/Error/);
    expect(c.code).toBe(0);
    expect(readFileSync(join(cont, "model.safetensors")).equals(readFileSync(join(run, "model.safetensors")))).toBe(true);
    expect(readFileSync(join(cont, "tokenizer.json"), "utf8")).toBe(readFileSync(join(run, "tokenizer.json"), "utf8"));
    const manifest = JSON.parse(readFileSync(join(cont, "speech.json"), "utf8"));
    expect(manifest.training).toMatchObject({ steps: 2, lr: 1e-30, data, voicePrompt: 4, textCondition: true, from: { run, steps: 4 } });
    const again = await inProcess("speech", "train", "--from", cont, "-o", join(dir, "again"), "--steps", "1", "--json");
    expect(again.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "again", "speech.json"), "utf8")).training.from).toEqual({ run: cont, steps: 6 });
    expect((await inProcess("speech", "train", "--from", run, "-o", join(dir, "c2"), "--set", "model.dim=32")).err).toContain(`--from ${run}: its model.dim is 16, the training's 32; a model continues with its own`);
    expect((await inProcess("speech", "train", "--from", run, "-o", run)).err).toContain(`--from ${run} is also --out`);
  });

  it("refuses bad input naming the file or word and what was expected", async () => {
    expect((await inProcess("tts", "a handwritten seven", "-o", join(dir, "x.wav"), "--run", run)).err).toContain('the speech model does not know the word "seven" in "a handwritten seven"; it knows: ');
    const notWav = join(dir, "notes.wav");
    writeFileSync(notWav, "hello");
    expect((await inProcess("asr", notWav, "--run", run)).err).toContain(`${notWav} is not a WAV file: expected a RIFF/WAVE header`);
    expect((await inProcess("speech", "train", "--codec", join(dir, "none"), "-o", join(dir, "r2"))).err).toContain(`${join(dir, "none")} is not a codec folder`);
    expect((await inProcess("speech", "train", "--data", data, "--codec", codec, "-o", join(dir, "r3"), "--set", "levels=3")).err).toContain("levels 3 is more than the codec's 2");
    expect((await inProcess("speech", "train", "--data", data, "--codec", codec, "-o", join(dir, "r5"), "--set", "synthesisShare=1.5")).err).toContain("--set: synthesisShare must be a number in [0, 1], got 1.5");
    expect((await inProcess("speech", "train", "--data", data, "--codec", codec, "-o", join(dir, "r4"), "--set", "levels=2", "--set", "voicePrompt=400")).err).toContain("voicePrompt is 400, but no clip has another clip of its voice with another transcript and at least 400 frames");
    expect((await inProcess("tts", "five", "-o", join(dir, "x.wav"), "--run", run, "--voice", join(dir, "none.wav"))).err).toContain(`no such WAV file: ${join(dir, "none.wav")} (--voice)`);
    const blip = join(dir, "blip.wav");
    writeWav(blip, { samples: new Float32Array(16), sampleRate: 16000 });
    expect((await inProcess("tts", "five", "-o", join(dir, "x.wav"), "--run", run, "--voice", blip)).err).toContain("the voice prompt is 0.00 s long; this run's prompts are 0.04 s (4 frames)");
    const plain = join(dir, "plain-run");
    cpSync(run, plain, { recursive: true });
    const m = JSON.parse(readFileSync(join(plain, "speech.json"), "utf8"));
    writeFileSync(join(plain, "speech.json"), JSON.stringify({ ...m, training: { ...m.training, voicePrompt: 0 } }));
    expect((await inProcess("tts", "five", "-o", join(dir, "x.wav"), "--run", plain, "--voice", blip)).err).toContain("this speech run was trained without voice prompts");
    writeFileSync(join(plain, "speech.json"), JSON.stringify({ ...m, textCondition: "yes" }));
    expect((await inProcess("tts", "five", "-o", join(dir, "x.wav"), "--run", plain)).err).toContain(`${join(plain, "speech.json")}: textCondition must be true or false, got "yes"`);
  });
});
