/**
 * Speech's acceptance (slow suite, about an hour on 2 cores): `mmntp codec train` then
 * `mmntp speech train` with their defaults on the spoken digits' 12 training speakers, measured
 * on the 4 held-out speakers (200 clips neither model saw): recognition word accuracy ≥ 90%, and
 * synthesized speech, decoded to audio and encoded again, recognized as the digit asked for
 * ≥ 80% of the time.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "mmntp-speech-slow-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mmntp = (...args: string[]) => spawnSync(process.execPath, ["bin/mmntp.js", ...args], { encoding: "utf8", timeout: 6_000_000 });

describe("the default speech model on held-out speakers", () => {
  it("recognizes ≥ 90% of words and speaks words it recognizes ≥ 80% of the time", () => {
    const codec = join(dir, "codec");
    const c = mmntp("codec", "train", "-o", codec);
    expect(c.status, c.stderr).toBe(0);
    const s = mmntp("speech", "train", "--codec", codec, "-o", join(dir, "speech"));
    expect(s.status, s.stderr).toBe(0);
    const report = (JSON.parse(readFileSync(join(dir, "speech", "speech.json"), "utf8")) as { eval: { clips: number; asrWordAccuracy: number; ttsRecognized: number } }).eval;
    expect(report.clips).toBe(200);
    expect(report.asrWordAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(report.ttsRecognized).toBeGreaterThanOrEqual(0.8);
  });
});
