import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../../src/engine/index.ts";
import { tokenizerPreset, type TokenizerRunConfig } from "../../src/pipelines/tokenizer-config.ts";
import { trainTokenizerRun } from "../../src/pipelines/tokenizer-run.ts";

beforeAll(startEngine);
const dir = mkdtempSync(join(tmpdir(), "mmntp-tok-run-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A VQGAN run stopped after its checkpoint and resumed through the run folder ends with the same
 * weights as one never stopped: the checkpoint carries the adaptive weight λ, which was last
 * computed before the checkpoint's step (λ at steps 2 and 5, checkpoint at 7).
 */
describe("tokenizer run folders", () => {
  const base = tokenizerPreset("mnist");
  const cfg: TokenizerRunConfig = {
    ...base,
    testSize: 64,
    checkpointEvery: 7,
    featureSteps: 5,
    tokenizer: { ...base.tokenizer, channels: [4, 8] },
    train: { ...base.train, steps: 10, batchSize: 16, restartEvery: 0, vqgan: { perceptualWeight: 0.1, discWeight: 0.5, discStart: 2, adaptiveEvery: 3, discLr: 2e-4 } },
  };

  it("resumes a VQGAN run bit-exactly, λ included", async () => {
    await trainTokenizerRun(join(dir, "whole"), cfg);
    await expect(
      trainTokenizerRun(join(dir, "cut"), cfg, {
        onStep: (step) => {
          if (step === 8) throw new Error("killed");
        },
      }),
    ).rejects.toThrow("killed");
    const state = JSON.parse(readFileSync(join(dir, "cut", "checkpoint", "state.json"), "utf8")) as { step: number; ganWeight: number };
    expect(state.step).toBe(7);
    expect(state.ganWeight).toBeGreaterThan(0);
    const r = await trainTokenizerRun(join(dir, "cut"), undefined, { resume: true });
    expect(r.resumedAt).toBe(7);
    const bytes = (run: string) => readFileSync(join(dir, run, "image-tokenizer.safetensors"));
    expect(bytes("cut").equals(bytes("whole"))).toBe(true);
  }, 120_000);
});
