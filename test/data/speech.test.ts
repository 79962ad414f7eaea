/**
 * The committed spoken digits (data/speech/, scripts/make-speech.ts) and the WAV-folder loader:
 * the data set is what its manifest says (800 clips at 16 kHz, split by speaker, every word in
 * both splits, speech-like loudness and lengths), and a transcript that does not match its folder
 * is refused naming the file and the line.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DIGIT_WORDS } from "../../src/data/captions.ts";
import { loadSpeechFolder, loadSpokenDigits, SPEECH_DIR, type SpokenDigits } from "../../src/data/speech.ts";
import { writeWav } from "../../src/io/wav.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-speech-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the spoken digits", () => {
  const { train, test } = loadSpokenDigits();

  it("hold 800 clips at 16 kHz, 4 of 16 speakers held out, every word in both splits", () => {
    expect(train.sampleRate).toBe(16000);
    expect(train.clips.length + test.clips.length).toBe(800);
    expect(test.clips.length).toBe(200);
    const speakers = (s: SpokenDigits) => new Set(s.clips.map((c) => c.speaker));
    expect(speakers(train).size).toBe(12);
    expect(speakers(test).size).toBe(4);
    expect([...speakers(test)].filter((s) => speakers(train).has(s))).toEqual([]);
    for (const s of [train, test]) for (let d = 0; d < 10; d++) expect(s.clips.filter((c) => c.label === d).length).toBe(s.clips.length / 10);
    for (const c of [...train.clips, ...test.clips]) expect(c.text.endsWith(DIGIT_WORDS[c.label]!)).toBe(true);
  });

  it("sound like speech: 0.2–2.5 s, loud enough, not clipped", () => {
    for (const c of [...train.clips, ...test.clips]) {
      const seconds = c.samples.length / 16000;
      expect(seconds, c.file).toBeGreaterThan(0.2);
      expect(seconds, c.file).toBeLessThan(2.5);
      const rms = Math.sqrt(c.samples.reduce((a, v) => a + v * v, 0) / c.samples.length);
      expect(rms, c.file).toBeGreaterThan(0.02);
      expect(Math.max(...c.samples.map(Math.abs)), c.file).toBeLessThan(1);
    }
  });

  it("differ between speakers saying the same word", () => {
    const sevens = train.clips.filter((c) => c.text === "seven");
    const lengths = new Set(sevens.map((c) => c.samples.length));
    expect(lengths.size).toBeGreaterThan(sevens.length / 2);
  });
});

describe("loadSpeechFolder refuses a transcript that does not match its folder", () => {
  const folder = (name: string, transcript: string | undefined, wavs: string[]) => {
    const d = join(dir, name);
    mkdirSync(join(d, "sub"), { recursive: true });
    for (const w of wavs) writeWav(join(d, w), { samples: Float32Array.from({ length: 800 }, (_, i) => Math.sin(i / 5) / 2), sampleRate: 8000 });
    if (transcript !== undefined) writeFileSync(join(d, "transcript.tsv"), transcript);
    return d;
  };

  it("reads a good folder, resampled to 16 kHz", () => {
    const d = folder("good", "a.wav\tseven\nsub/b.wav\ta handwritten two\n", ["a.wav", "sub/b.wav"]);
    const s = loadSpeechFolder(d);
    expect(s.clips.map((c) => [c.file, c.text, c.samples.length])).toEqual([["a.wav", "seven", 1600], ["sub/b.wav", "a handwritten two", 1600]]);
  });

  it.each([
    ["no-transcript", undefined, ["a.wav"], "has no transcript.tsv"],
    ["no-tab", "a.wav seven\n", ["a.wav"], 'transcript.tsv:1: expected "<file.wav><TAB><text>"'],
    ["missing", "a.wav\tseven\nb.wav\tfour\n", ["a.wav"], "transcript.tsv:2: b.wav is listed but not in"],
    ["unlisted", "a.wav\tseven\n", ["a.wav", "sub/c.wav"], "1 WAV file is not listed (sub/c.wav)"],
    ["twice", "a.wav\tseven\na.wav\tsix\n", ["a.wav"], "transcript.tsv:2: a.wav is listed twice (first on line 1)"],
    ["empty-text", "a.wav\t  \n", ["a.wav"], "transcript.tsv:1: a.wav has an empty transcript"],
    ["outside", "../a.wav\tseven\n", ["a.wav"], "must be a path inside"],
  ])("%s", (name, transcript, wavs, message) => {
    const d = folder(name, transcript, wavs);
    expect(() => loadSpeechFolder(d)).toThrow(message);
  });

  it("a clip in it that is not a WAV", () => {
    const d = folder("bad-clip", "a.wav\tseven\n", []);
    copyFileSync(join(SPEECH_DIR, "transcript.tsv"), join(d, "a.wav"));
    expect(() => loadSpeechFolder(d)).toThrow(/a\.wav is not a WAV file/);
  });
});
