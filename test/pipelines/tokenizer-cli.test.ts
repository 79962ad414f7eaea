import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadMnist, subset } from "../../src/data/mnist.ts";
import { writeIdx } from "../../src/data/idx.ts";
import { readImageFile } from "../../src/data/image-folder.ts";
import { startEngine } from "../../src/engine/index.ts";
import { encodeGrayPng, readGrayImage } from "../../src/io/png.ts";
import { loadImageTokenizer } from "../../src/pipelines/tokenizer-run.ts";
import { inProcess, mmntp } from "../helpers/cli.ts";

/**
 * `mmntp tokenizer` as a user runs it, in child processes: a run killed (SIGKILL) between
 * checkpoints and resumed ends with the same weights, history and metrics as one never killed;
 * `eval` reproduces the saved metrics; encode → decode round-trips PNG files; bad input is
 * refused with the file and the problem named, and leaves no output behind.
 */
const dir = mkdtempSync(join(tmpdir(), "mmntp-tok-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, MMNTP_THREADS: "1" };
const cli = (args: string[]) => mmntp(["tokenizer", ...args], { env });
const TINY = ["--steps", "60", "--set", "checkpointEvery=5", "--set", "featureSteps=10", "--set", "testSize=100", "--set", "tokenizer.channels=[8,16]"];
const [A, B] = [join(dir, "a"), join(dir, "b")];

beforeAll(() => {
  const r = cli(["train", ...TINY, "-o", A, "--json"]);
  expect(r.code, r.err).toBe(0);
}, 300_000);

describe("mmntp tokenizer train", () => {
  it("killed mid-run and resumed, ends bit-identical to the run that was never killed", async () => {
    const child = spawn(process.execPath, ["bin/mmntp.js", "tokenizer", "train", ...TINY, "-o", B], { env, stdio: "ignore" });
    const state = join(B, "checkpoint", "state.json");
    let killedAt = -1;
    while (killedAt < 0 && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 20));
      try {
        const step = (JSON.parse(readFileSync(state, "utf8")) as { step: number }).step;
        if (step >= 20) (killedAt = step), child.kill("SIGKILL");
      } catch {
        // not written yet, or being replaced
      }
    }
    await new Promise((r) => (child.exitCode === null && child.signalCode === null ? child.once("exit", r) : r(null)));
    expect(killedAt, "the run finished before it could be killed").toBeGreaterThanOrEqual(20);
    expect(existsSync(join(B, "metrics.json"))).toBe(false);
    const refused = cli(["train", ...TINY, "-o", B]);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/already holds a tokenizer run; --resume continues it/);
    const r = cli(["train", "--resume", "-o", B]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/resumed at step \d+/);
    for (const f of ["image-tokenizer.safetensors", "image-tokenizer.json", "features.safetensors", "history.json", "metrics.json"]) {
      expect(readFileSync(join(B, f)).equals(readFileSync(join(A, f))), f).toBe(true);
    }
    expect(existsSync(join(B, "checkpoint"))).toBe(false);
    expect(cli(["train", "--resume", "-o", B]).err).toMatch(/finished run: nothing to resume/);
  }, 300_000);

  it("writes its pictures and metrics; eval reproduces the metrics from the saved run", () => {
    for (const f of ["reconstructions.png", "codebook-usage.png", "loss.png", "loss.svg", "psnr.png", "psnr.svg", "run.json"]) expect(existsSync(join(A, f)), f).toBe(true);
    const saved = JSON.parse(readFileSync(join(A, "metrics.json"), "utf8")) as Record<string, number>;
    expect(saved.images).toBe(100);
    expect(saved.tokensPerImage).toBe(49);
    expect(saved.bitsPerImage).toBe(49 * 8);
    const r = cli(["eval", "--run", A, "--json"]);
    expect(r.code, r.err).toBe(0);
    expect((JSON.parse(r.out) as { metrics: unknown }).metrics).toEqual(saved);
  }, 120_000);
});

describe("mmntp tokenizer encode | decode", () => {
  it("round-trips PNG files through token files", async () => {
    const digits = subset(loadMnist(), [0, 1]);
    const pngs = [0, 1].map((i) => {
      const f = join(dir, `d${i}.png`);
      writeFileSync(f, encodeGrayPng(digits.images.subarray(i * 784, (i + 1) * 784), 28, 28));
      return f;
    });
    const enc = cli(["encode", ...pngs, "--run", A, "-o", join(dir, "tokens"), "--json"]);
    expect(enc.code, enc.err).toBe(0);
    const tokenFiles = (JSON.parse(enc.out) as { files: string[] }).files;
    expect(tokenFiles.map((f) => f.split("/").pop())).toEqual(["d0.tokens.json", "d1.tokens.json"]);
    const t = JSON.parse(readFileSync(tokenFiles[0]!, "utf8")) as { shape: number[]; ids: number[] };
    expect(t.shape).toEqual([7, 7]);
    expect(t.ids.every((v) => Number.isInteger(v) && v >= 0 && v < 256)).toBe(true);
    const dec = cli(["decode", ...tokenFiles, "--run", A, "-o", join(dir, "decoded")]);
    expect(dec.code, dec.err).toBe(0);
    // The files hold what the saved tokenizer computes in this process: the ids of the PNG's
    // pixels, and the decoded image of those ids (to 8-bit rounding).
    await startEngine();
    const tok = loadImageTokenizer(A);
    try {
      const image = await readImageFile(pngs[0]!, { height: 28, width: 28, channels: 1 });
      const [ids] = await tok.encode([{ data: image, channels: 1, height: 28, width: 28 }]);
      expect(t.ids).toEqual(Array.from(ids!.ids));
      const [decoded] = await tok.decode([ids!]);
      const png = readGrayImage(join(dir, "decoded", "d0.png"));
      for (let i = 0; i < 784; i++) expect(Math.abs(png[i]! - decoded!.data[i]!)).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
    } finally {
      tok.dispose();
    }
  }, 120_000);
});

describe("mmntp tokenizer: bad input", () => {
  // In this process: the entry's exit codes are cli/main.test.ts's; a spawn costs a second each.
  const refuse = async (args: string[], message: RegExp) => {
    const r = await inProcess("tokenizer", ...args);
    expect(r.code, r.out).toBe(1);
    expect(r.err).toMatch(message);
  };

  it("names the file and the problem, and writes nothing", async () => {
    const bad = join(dir, "bad");
    mkdirSync(bad, { recursive: true });
    const good = encodeGrayPng(new Float32Array(784).fill(0.5), 28, 28);
    writeFileSync(join(bad, "cut.png"), good.subarray(0, 40));
    await refuse(["encode", join(bad, "cut.png"), "--run", A, "-o", join(dir, "out1")], /cut\.png is not a readable PNG\/JPEG image/);
    expect(existsSync(join(dir, "out1"))).toBe(false);
    writeFileSync(join(bad, "x.tokens.json"), JSON.stringify({ format: "mmntp-image-tokens", shape: [8, 8], codebookSize: 256, ids: [] }));
    await refuse(["decode", join(bad, "x.tokens.json"), "--run", A, "-o", join(dir, "out2")], /x\.tokens\.json: tokens of a \[8,8\] grid of 256 codes; this tokenizer makes \[7,7\]/);
    expect(existsSync(join(dir, "out2"))).toBe(false);

    // A folder with one corrupt file among good ones: the run folder is never made.
    const folder = join(dir, "folder");
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(join(folder, `ok${i}.png`), good);
    writeFileSync(join(folder, "broken.jpg"), Buffer.from("not a jpeg at all"));
    await refuse(["train", "--data", folder, "-o", join(dir, "run1")], /broken\.jpg is not a readable PNG\/JPEG image/);
    expect(existsSync(join(dir, "run1"))).toBe(false);
    rmSync(join(folder, "broken.jpg"));
    await refuse(["train", "--data", folder, "--set", "tokenizer.imageChannels=3", "-o", join(dir, "run2")], /ok0\.png is grayscale \(1 channel\); the tokenizer takes colour \(3 channels\) images/);
    expect(existsSync(join(dir, "run2"))).toBe(false);

    await refuse(["train", "--set", "tokenizer.height=30", "-o", join(dir, "run3")], /tokenizer\.height: expected a multiple of 4 .*got 30/);
    expect(existsSync(join(dir, "run3"))).toBe(false);

    const idx = writeIdx([20, 28, 28], new Uint8Array(20 * 784));
    const wrongMagic = Uint8Array.from(idx);
    wrongMagic[0] = 0x12;
    writeFileSync(join(bad, "magic.idx"), wrongMagic);
    await refuse(["train", "--data", join(bad, "magic.idx"), "-o", join(dir, "run4")], /magic\.idx: IDX: bad magic number/);
    writeFileSync(join(bad, "short.idx"), idx.subarray(0, idx.length - 100));
    await refuse(["train", "--data", join(bad, "short.idx"), "-o", join(dir, "run5")], /short\.idx: IDX: truncated data for shape \[20, 28, 28\]/);
    expect(readdirSync(dir).filter((f) => f.startsWith("run"))).toEqual([]);
  }, 120_000);
});
