import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/**
 * The acceptance figures of `mmntp tokenizer train`'s presets, from the CLI as a user runs it,
 * on held-out images the tokenizers never trained on (slow suite: 4–5 min each on 2 cores).
 */
const dir = mkdtempSync(join(tmpdir(), "mmntp-tok-presets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const train = (preset: string) => {
  const out = join(dir, preset);
  const r = spawnSync(process.execPath, ["bin/mmntp.js", "tokenizer", "train", "--preset", preset, "-o", out, "--json"], { encoding: "utf8", timeout: 1_800_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")) as { psnr: number; usage: number; scenesPassed?: number };
};

describe("tokenizer presets (slow)", () => {
  it("mnist: PSNR ≥ 24 dB at 7×7 tokens, codebook usage ≥ 95%", () => {
    const m = train("mnist");
    expect(m.psnr).toBeGreaterThanOrEqual(24);
    expect(m.usage).toBeGreaterThanOrEqual(0.95);
  }, 1_800_000);

  it("shapes: RGB PSNR ≥ 26 dB at 8×8 tokens; the exact scene checker passes ≥ 95% of the reconstructions", () => {
    const m = train("shapes");
    expect(m.psnr).toBeGreaterThanOrEqual(26);
    expect(m.scenesPassed).toBeGreaterThanOrEqual(0.95);
  }, 1_800_000);
});
