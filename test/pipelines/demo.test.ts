import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../../src/engine/index.ts";
import { loadMnist } from "../../src/data/mnist.ts";
import { encodeGrayPng } from "../../src/io/png.ts";
import { applyOverrides } from "../../src/cli/args.ts";
import { checkDemoConfig, DEFAULT_DEMO, runDemo, type DemoConfig, type DemoMetrics } from "../../src/pipelines/demo.ts";
import { disposeRun, loadRun, saveRun } from "../../src/pipelines/run.ts";
import { caption, generate } from "../../src/pipelines/use-run.ts";
import { generateImages } from "../../src/pipelines/unified.ts";
import { generateWithOrder } from "../../src/pipelines/orders.ts";
import { Decoder } from "../../src/generate/decode.ts";
import { OrderDecoder } from "../../src/generate/order-decoder.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import { inProcess } from "../helpers/cli.ts";

/**
 * The whole demo pipeline at toy size (a few steps of each stage, a tiny model), then the saved
 * run used as a user would: loadRun, caption, generate, and the CLI on the same folder. The
 * numbers are not the point (a toy model captions at chance); the plumbing is.
 */
const TOY: DemoConfig = {
  ...DEFAULT_DEMO,
  testSize: 100,
  tokenizerSteps: 4,
  judgeSteps: 4,
  modelSteps: 3,
  batchSize: 8,
  model: { ...DEFAULT_DEMO.model, dim: 32, layers: 1, heads: 2 },
  captionImages: 20,
  samplesPerClass: 1,
};

const dir = mkdtempSync(join(tmpdir(), "mmntp-demo-"));
const run = join(dir, "run");
let metrics: DemoMetrics;

beforeAll(async () => {
  await startEngine();
  metrics = await runDemo(run, TOY);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const digitPng = (i: number, file: string) => writeFileSync(file, encodeGrayPng(loadMnist().images.slice(i * 784, (i + 1) * 784), 28, 28));

describe("the demo pipeline, toy size", () => {
  it("writes its pictures, metrics.json naming each figure, and a committed run", () => {
    for (const f of ["recon.png", "samples.png", "metrics.json", "run.json"]) expect(existsSync(join(run, f)), f).toBe(true);
    const saved = JSON.parse(readFileSync(join(run, "metrics.json"), "utf8")) as Record<string, unknown>;
    for (const key of ["tokenizer_psnr_db", "tokenizer_ssim", "codebook_usage", "codebook_perplexity", "judge_accuracy", "caption_accuracy", "generation_accuracy", "seconds"]) {
      expect(typeof saved[key], key).toBe("number");
      expect(saved[key]).toBe(metrics[key as keyof DemoMetrics]);
    }
    expect(metrics.generation_accuracy_by_digit).toHaveLength(10);
    expect(metrics.tokenizer_psnr_db).toBeGreaterThan(5); // 4 steps already beat a blank image (≈ 4.5 dB)
    // SSIM lies in [−1, 1]; a 4-step tokenizer's reconstructions are far from their originals
    expect(Math.abs(metrics.tokenizer_ssim)).toBeLessThan(0.9);
  });

  it("saveRun → loadRun gives the same tokenizers, vocabulary and weights", async () => {
    const a = loadRun(run);
    const again = join(dir, "again");
    await saveRun(again, a);
    const b = loadRun(again);
    expect(b.vocab.toJSON()).toEqual(a.vocab.toJSON());
    expect(b.text.toJSON()).toBe(a.text.toJSON());
    expect(b.model.config).toEqual(a.model.config);
    const [sa, sb] = [await a.image.save(), await b.image.save()];
    expect(Object.keys(sb.tensors)).toEqual(Object.keys(sa.tensors));
    for (const k of Object.keys(sa.tensors)) expect(Array.from(sb.tensors[k]!.data), k).toEqual(Array.from(sa.tensors[k]!.data));
    const tokens = await a.image.encodeImages(loadMnist().images.slice(0, 3 * 784), 3);
    expect(Array.from(await b.image.encodeImages(loadMnist().images.slice(0, 3 * 784), 3))).toEqual(Array.from(tokens));
    disposeRun(a);
    disposeRun(b);
  });

  it("captions several files in order and generates a grid, deterministically per seed", async () => {
    const files = [0, 1, 2].map((i) => join(dir, `digit-${i}.png`));
    files.forEach((f, i) => digitPng(i * 1000, f));
    const out = await caption(run, files);
    expect(out.map((c) => c.file)).toEqual(files);
    for (const c of out) expect(typeof c.caption).toBe("string");
    const one = await caption(run, [files[1]!]);
    expect(one[0]!.caption).toBe(out[1]!.caption); // batching does not change a caption
    const opts = { count: 3, temperature: 1, topK: 0, seed: 7, guidance: 2 };
    await generate(run, "a handwritten 7", join(dir, "a.png"), opts);
    await generate(run, "a handwritten 7", join(dir, "b.png"), opts);
    await generate(run, "a handwritten 7", join(dir, "c.png"), { ...opts, seed: 8 });
    const [a, b, c] = ["a.png", "b.png", "c.png"].map((f) => readFileSync(join(dir, f)));
    expect(a.equals(b!)).toBe(true);
    expect(a.equals(c!)).toBe(false);
    await expect(generate(run, "a handwritten zebra", join(dir, "z.png"), opts)).rejects.toThrow('the prompt has a word the model never saw: "zebra"');
    await expect(generate(run, "a handwritten 7", join(dir, "m.png"), { ...opts, order: "maskgit" })).rejects.toThrow("--order maskgit: this run's model was trained for the raster order and decodes only that");
    await expect(generate(run, "a handwritten 7", join(dir, "m.png"), { ...opts, steps: 8 })).rejects.toThrow("--steps applies to the maskgit order only");
    const previews = join(dir, "previews");
    const r = await generate(run, "a handwritten 7", join(dir, "p.png"), { ...opts, preview: previews });
    expect(r.previews).toHaveLength(49 + 1); // one grid per raster step, then steps.gif
    expect(readFileSync(join(dir, "p.png")).equals(a!)).toBe(true); // previews do not change the samples
  });

  it("generate decodes the paired model through the orders' decoder as the demo's evaluation does (greedy: same codes)", async () => {
    const r = loadRun(run);
    const words = [r.text.encodeText("a handwritten 4"), r.text.encodeText("a handwritten 9")];
    const decoder = new Decoder(r.model.params, r.model.config);
    const viaLayout = await generateImages(decoder, r.vocab, words, r.image.tokenShape, { sampling: GREEDY, seed: 0, guidance: 2, layout: r.layout });
    decoder.dispose();
    const orders = new OrderDecoder({ params: r.model.params, config: r.model.config, order: { name: "raster" } }, r.vocab);
    const viaOrders = await generateWithOrder(orders, r.vocab, words, r.image.tokenShape, { order: { name: "raster" }, sampling: GREEDY, seed: 0, guidance: 2, layout: r.layout });
    orders.dispose();
    expect(viaOrders).toEqual(viaLayout);
    disposeRun(r);
  });

  it("the CLI: caption takes files and folders, every command has --json", async () => {
    const folder = join(dir, "pngs");
    rmSync(folder, { recursive: true, force: true });
    spawnSync("mkdir", [folder]);
    [3, 4].forEach((i) => digitPng(i * 1000, join(folder, `d${i}.png`)));
    const text = await inProcess("caption", join(dir, "digit-0.png"), folder, "--run", run);
    expect(text.code, text.err).toBe(0);
    const lines = text.out.trim().split("\n");
    expect(lines.map((l) => l.split("\t")[0])).toEqual([join(dir, "digit-0.png"), join(folder, "d3.png"), join(folder, "d4.png")]);
    const json = await inProcess("caption", folder, "--run", run, "--json");
    expect(json.code, json.err).toBe(0);
    const parsed = JSON.parse(json.out) as { captions: { file: string; caption: string }[] };
    expect(parsed.captions.map((c) => c.caption)).toEqual(lines.slice(1).map((l) => l.split("\t")[1]));
    const gen = await inProcess("generate", "a handwritten 3", "-o", join(dir, "g.png"), "--run", run, "--count", "2", "--seed", "3", "--json");
    expect(gen.code, gen.err).toBe(0);
    expect(JSON.parse(gen.out)).toMatchObject({ count: 2, file: join(dir, "g.png") });
  });

  it("refuses a run whose files changed after it was saved, or whose manifest is gone", () => {
    const copy = join(dir, "tampered");
    spawnSync("cp", ["-r", run, copy]);
    const manifest = JSON.parse(readFileSync(join(copy, "run.json"), "utf8")) as { checkpoint: string };
    const model = join(copy, manifest.checkpoint, "model.json");
    writeFileSync(model, readFileSync(model, "utf8").replace('"heads": 2', '"heads": 1'));
    expect(() => loadRun(copy)).toThrow(`${model} does not match run.json (sha-256 differs)`);
    rmSync(join(copy, "run.json"));
    expect(() => loadRun(copy)).toThrow(`${copy} is not a run folder`);
  });
});

describe("demo config checks (before any work)", () => {
  it.each([
    ["modelSteps=-5", "demo config: modelSteps must be an integer in [1, 10000000], got -5"],
    ["modelSteps=1.5", "demo config: modelSteps must be an integer in [1, 10000000], got 1.5"],
    ["batchSize=0", "demo config: batchSize must be an integer in [2, 4096], got 0"],
    ["model.heads=5", "demo config: model.dim: 96 is not divisible by heads (5)"],
    ["model.mlp=bogus", 'demo config: model.mlp: expected one of gelu, swiglu, got "bogus"'],
    ["model.layers=1000000000", "demo config: model.layers: expected an integer in [1, 1024], got 1000000000"],
    ["seed=-1", "demo config: seed must be an integer in [0, 2147483647], got -1"],
    ["layout.captionSlot=-3", "demo config: layout.captionSlot: expected an integer in [0, 4096] (0 = no padding), got -3"],
    ['tokenizer.quantizer={"name":"fsq","options":{"levels":[8,5,5,5],"bogus":1}}', 'demo config: tokenizer.quantizer.options.bogus: not an option of "fsq"'],
  ])("--set %s", (assignment, message) => {
    expect(() => checkDemoConfig(applyOverrides(DEFAULT_DEMO, [assignment]))).toThrow(message);
  });
});
