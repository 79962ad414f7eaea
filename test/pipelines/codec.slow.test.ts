/**
 * The audio codec's acceptance (slow suite, ~15 min on 2 cores): `mmntp codec train` with its
 * defaults on the spoken digits, then measured on the four held-out speakers (200 clips it never
 * saw): SI-SNR ≥ 5 dB at ≤ 6 kbps. Its speed is a benchmark (bench/codec.ts), not a test.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "mmntp-codec-slow-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the default codec on held-out speakers", () => {
  it("reaches SI-SNR ≥ 5 dB at ≤ 6 kbps", () => {
    const r = spawnSync(process.execPath, ["bin/mmntp.js", "codec", "train", "-o", join(dir, "codec"), "--json"], { encoding: "utf8", timeout: 3_000_000, env: { ...process.env, MMNTP_THREADS: "1" } });
    expect(r.status, r.stderr).toBe(0);
    const rows = (JSON.parse(readFileSync(join(dir, "codec", "eval.json"), "utf8")) as { rows: { kbps: number; siSnr: number; encodeRtf: number; decodeRtf: number }[] }).rows;
    const best = Math.max(...rows.filter((x) => x.kbps <= 6).map((x) => x.siSnr));
    expect(best).toBeGreaterThanOrEqual(5);
    // more levels never hurt much: quantizer dropout trained every prefix
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.siSnr).toBeGreaterThan(rows[i - 1]!.siSnr - 0.3);
  });
});
