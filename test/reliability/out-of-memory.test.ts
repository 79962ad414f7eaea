import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { during, EngineMemoryError, engineMemoryError, formatBytes, WASM32_LIMIT_BYTES } from "../../src/engine/out-of-memory.ts";
import { heapCapFromEnv } from "../../src/engine/memory.ts";
import { describeFailure } from "../../src/cli/failure.ts";
import { InputError } from "../../src/io/errors.ts";

/**
 * Running out of engine memory (#26): a configuration too big for the wasm heap must end in an
 * EngineMemoryError that names what was running (the model, the batch) and the memory it needed,
 * and the CLI must print it as the user's to fix. Real runs against a small `MMNTP_MAX_HEAP`, each
 * in a process of its own (the cap is read at the engine's first growth).
 */
const ROOT = new URL("../..", import.meta.url).pathname;
const child = (env: Record<string, string>, args: string[]) =>
  spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, MMNTP_THREADS: "1", ...env }, timeout: 600_000 });

describe("out of engine memory", () => {
  it("a training step past the cap names the model, the batch and the heap it needed; without the cap it trains", () => {
    const step = (env: Record<string, string>) => {
      const r = child(env, ["--import", "tsx", "test/reliability/oom-child.ts"]);
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { loss?: number; error?: string; message?: string; neededBytes?: number };
    };
    const capped = step({ MMNTP_MAX_HEAP: "12MiB" });
    expect(capped.error).toBe("EngineMemoryError");
    expect(capped.message).toMatch(/^out of engine memory in a training step of the test transformer \(dim 64, 2 layers, 2 heads, context 128, vocab 512\), with 140\.8K parameters and a batch of 64×128: /);
    expect(capped.message).toContain("past the 12.0 MiB cap set by MMNTP_MAX_HEAP");
    expect(capped.neededBytes).toBeGreaterThan(12 * 2 ** 20);
    expect(capped.message).toContain(`to at least ${formatBytes(capped.neededBytes!)}`);
    const free = step({ MMNTP_MAX_HEAP: "" });
    expect(free.error).toBeUndefined();
    expect(free.loss).toBeGreaterThan(0);
  });

  it("the CLI prints it as the user's error (exit 1, no stack), naming the stage that ran out", () => {
    const name = `oom-test-${process.pid}`;
    const r = child({ MMNTP_MAX_HEAP: "16MiB" }, ["bin/mmntp.js", "demo", "--quick", "--name", name]);
    rmSync(join(ROOT, "runs", name), { recursive: true, force: true }); // the run folder it made before failing
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/mmntp: out of engine memory in training the image auto-encoder \(28×28, channels 32\/64, vq quantizer of 256 codes\): it needed the heap to grow from [\d.]+ MiB to at least [\d.]+ MiB, past the 16\.0 MiB cap set by MMNTP_MAX_HEAP/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it("jax-js's 4 GiB refusal becomes the same error; other errors pass through", async () => {
    const refusal = new RangeError("Allocation exceeds the 4 GiB memory32 limit");
    const e = engineMemoryError(refusal, () => "decoding the test model");
    expect(e).toBeInstanceOf(EngineMemoryError);
    expect((e as EngineMemoryError).limitBytes).toBe(WASM32_LIMIT_BYTES);
    expect((e as Error).message).toMatch(/^out of engine memory in decoding the test model: .*32-bit wasm's 4 GiB limit.*; use a smaller batch, context or model$/);
    expect((e as Error).cause).toBe(refusal);
    const other = new RangeError("Invalid array length");
    expect(engineMemoryError(other, () => "x")).toBe(other);
    await expect(during("training X", async () => { throw refusal; })).rejects.toThrow(/^out of engine memory in training X: /);
    await expect(during("training X", async () => { throw other; })).rejects.toBe(other);
    expect(describeFailure(e)).toEqual({ text: `mmntp: ${(e as Error).message}`, exitCode: 1 });
  });

  it("MMNTP_MAX_HEAP takes sizes up to 4GiB and refuses others, naming the value", () => {
    expect(heapCapFromEnv(undefined)).toBe(2 ** 32);
    expect(heapCapFromEnv("512MiB")).toBe(512 * 2 ** 20);
    expect(heapCapFromEnv("1.5GiB")).toBe(1.5 * 2 ** 30);
    expect(heapCapFromEnv("4GiB")).toBe(2 ** 32);
    expect(heapCapFromEnv("65536")).toBe(65536);
    for (const bad of ["lots", "0", "5GiB", "-1MiB", "12 MB"]) {
      expect(() => heapCapFromEnv(bad)).toThrow(InputError);
      expect(() => heapCapFromEnv(bad)).toThrow(`got ${JSON.stringify(bad)}`);
    }
  });
});
