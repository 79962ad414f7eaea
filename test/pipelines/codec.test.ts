import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readWav } from "../../src/io/wav.ts";
import { inProcess, mmntp as spawned } from "../helpers/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-codec-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Training through the real entry (bin/mmntp.js); the commands after it in this process, where
// a spawned CLI would spend a second or two starting tsx and the engine.
const mmntp = (...args: string[]) => spawned(args);

const CLIPS = ["data/speech/clips/en-us_f4_seven_s140_p35.wav", "data/speech/clips/en_m3_a-handwritten-three_s165_p50.wav"];

describe("mmntp codec", () => {
  const codec = join(dir, "codec");
  it("trains a small codec on a WAV folder, measures it level by level, and round-trips WAV files through token files", async () => {
    // a folder of six clips with its transcript, as a user's data would be
    const data = join(dir, "speech");
    mkdirSync(data);
    const six = ["en-us_m1_zero_s140_p35", "en_f2_one_s190_p65", "en-gb-scotland_m3_two_s140_p65", "en-029_f4_three_s190_p35", "en-us_m1_a-handwritten-four_s165_p50", "en_m1_five_s140_p35"];
    for (const f of six) copyFileSync(`data/speech/clips/${f}.wav`, join(data, `${f}.wav`));
    writeFileSync(join(data, "transcript.tsv"), six.map((f) => `${f}.wav\t${f.split("_")[2]!.replace(/-/g, " ")}\n`).join(""));
    const small = ["--set", "codec.channels=4", "--set", "codec.rvq.levels=2", "--set", "codec.rvq.codebookSize=16", "--set", "train.batchSize=4"];
    const t = mmntp("codec", "train", "--data", data, "-o", codec, "--steps", "3", ...small, "--json");
    expect(t.err).not.toMatch(/Error/);
    expect(t.code).toBe(0);
    expect(JSON.parse(readFileSync(join(codec, "codec.json"), "utf8")).training).toMatchObject({ steps: 3, data, clips: 6 });

    const ev = await inProcess("codec", "eval", "--codec", codec, "--data", data, "--json");
    expect(ev.code).toBe(0);
    const report = JSON.parse(ev.out) as { clips: number; rows: { levels: number; kbps: number; siSnr: number; melDistance: number; encodeRtf: number }[] };
    expect(report.clips).toBe(6);
    expect(report.rows.map((r) => [r.levels, r.kbps])).toEqual([
      [1, 0.4],
      [2, 0.8],
    ]);
    for (const r of report.rows) expect(Number.isFinite(r.siSnr) && r.melDistance > 0 && r.encodeRtf > 0).toBe(true);

    const enc = await inProcess("codec", "encode", ...CLIPS, "--codec", codec, "-o", join(dir, "tokens"), "--json");
    expect(enc.code).toBe(0);
    const encoded = JSON.parse(enc.out) as { files: string[]; levels: number; kbps: number };
    expect(encoded.levels).toBe(2);
    const dec = await inProcess("codec", "decode", ...encoded.files, "--codec", codec, "-o", join(dir, "wav"), "--levels", "1", "--json");
    expect(dec.code).toBe(0);
    expect(JSON.parse(dec.out)).toMatchObject({ levels: 1, kbps: 0.4 }); // the first level of each file only
    for (const clip of CLIPS) {
      const name = clip.split("/").pop()!;
      const back = readWav(join(dir, "wav", name));
      expect(back.samples.length).toBe(readWav(clip).samples.length);
      expect(existsSync(join(dir, "wav", name.replace(/\.wav$/, ".png")))).toBe(true);
    }
  });

  it("refuses bad input naming the file and what was expected", async () => {
    const notWav = join(dir, "notes.wav");
    writeFileSync(notWav, "hello");
    expect((await inProcess("codec", "encode", notWav, "--codec", codec, "-o", join(dir, "t2"))).err).toContain(`${notWav} is not a WAV file: expected a RIFF/WAVE header`);
    expect((await inProcess("codec", "encode", CLIPS[0]!, "--codec", join(dir, "none"), "-o", join(dir, "t2"))).err).toContain(`${join(dir, "none")} is not a codec folder`);
    expect((await inProcess("codec", "encode", CLIPS[0]!, "--codec", codec, "--levels", "3", "-o", join(dir, "t2"))).err).toContain("codec levels: expected an integer in [1, 2], got 3");
    expect((await inProcess("codec", "decode", CLIPS[0]!, "--codec", codec, "-o", join(dir, "t2"))).err).toMatch(/en-us_f4_seven_s140_p35\.wav/);
    expect((await inProcess("codec", "encode", "--codec", codec, "-o", join(dir, "t2"))).err).toContain("missing argument <files...>");
    expect((await inProcess("codec", "tune")).err).toContain('unknown codec action "tune"; expected one of: train, encode, decode, eval');
    expect((await inProcess("codec", "train", "--set", "codec.strides=[4,0]", "-o", join(dir, "c2"))).err).toContain("--set codec.strides: expected 1 to 6 integers in [1, 64]");
  });
});
