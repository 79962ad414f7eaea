import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PNG } from "pngjs";
import { startEngine } from "../../src/engine/index.ts";
import { paramsToTensors } from "../../src/engine/params.ts";
import { caption } from "../../src/data/captions.ts";
import { loadMnist } from "../../src/data/mnist.ts";
import { splitTrainTest, subset } from "../../src/data/shuffle.ts";
import { InputError } from "../../src/io/errors.ts";
import { encodeGrayPng } from "../../src/io/png.ts";
import { decodeSafetensors, encodeSafetensors } from "../../src/io/safetensors.ts";
import { DEFAULT_CONTINUOUS, type ContinuousCaptionConfig } from "../../src/pipelines/continuous-config.ts";
import { DEFAULT_MAR, type MarConfig } from "../../src/pipelines/mar-config.ts";
import { DEFAULT_TRANSFUSION, type TransfusionConfig } from "../../src/pipelines/transfusion-config.ts";
import { sampleMar } from "../../src/pipelines/mar.ts";
import { sampleTransfusion } from "../../src/pipelines/transfusion.ts";
import { DEMO_SPLIT } from "../../src/pipelines/demo.ts";
import { designDefaults, disposeDesignRun, loadDesignRun, trainDesignRun, type DesignConfigs, type DesignPreset, type DesignRun } from "../../src/pipelines/design-run.ts";
import { captionDesign, generateWithDesign } from "../../src/pipelines/use-design.ts";
import { trainCommand } from "../../src/cli/train.ts";
import { captionCommand, generateCommand } from "../../src/cli/use.ts";

/** Toy designs: one transformer layer of width 32, 20 steps of batches of 8, 4 denoising steps per sample. */
const BACKBONE = { contextLength: 64, dim: 32, layers: 1, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" } as const;
const TOY: DesignConfigs = {
  "llava-mnist": { ...DEFAULT_CONTINUOUS, steps: 20, batch: 8, cnn: { widths: [8, 16], kernel: 4, activation: "gelu" }, backbone: BACKBONE } satisfies ContinuousCaptionConfig,
  "mar-mnist": { ...DEFAULT_MAR, backbone: BACKBONE, head: { width: 32, depth: 2, steps: 1000 }, multiplier: 2, batch: 8, steps: 20, sampling: { steps: 4, eta: 1, temperature: 1, guidance: 2 } } satisfies MarConfig,
  "transfusion-mnist": { ...DEFAULT_TRANSFUSION, backbone: BACKBONE, timeDim: 16, captionRows: 2, batch: 8, steps: 20, sampling: { steps: 4, eta: 0, guidance: 2 } } satisfies TransfusionConfig,
};
/** What the CLI test passes to `--set` for the same toy sizes. */
const TOY_SET = ["backbone.dim=32", "backbone.layers=1", "backbone.heads=2", "backbone.mlpRatio=2", "batch=8", "timeDim=16", "captionRows=2", "sampling.steps=2"].flatMap((s) => ["--set", s]);
const EVAL = { samplesPerClass: 1, judgeSteps: 5, captionImages: 20 };

const dir = mkdtempSync(join(tmpdir(), "mmntp-design-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const runDir = (p: DesignPreset) => join(dir, p);

let held: ReturnType<typeof subset>;
beforeAll(async () => {
  await startEngine();
  held = subset(splitTrainTest(loadMnist(), DEMO_SPLIT).test, [0, 1, 2, 3, 4, 5]);
});

/** Every tensor's bytes by name. */
async function bytesOf(run: DesignRun): Promise<Record<string, { shape: readonly number[]; bytes: Buffer }>> {
  const t = await paramsToTensors(run.model.params as never);
  return Object.fromEntries(Object.entries(t).map(([k, r]) => [k, { shape: r.shape, bytes: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength) }]));
}

/** What a run makes for a seed: captions of six held-out digits, or three images of a 7. */
async function outputsOf(run: DesignRun): Promise<unknown> {
  const sevens = [0, 1, 2].map(() => run.model.text.encodeText(caption(7, 0)));
  if (run.preset === "llava-mnist") return captionDesign(run, held);
  if (run.preset === "mar-mnist") return Array.from(await sampleMar(run.model, sevens, { seed: 3 }));
  return { captions: await captionDesign(run, held), images: Array.from(await sampleTransfusion(run.model, sevens, { seed: 3 })) };
}

describe.each(["llava-mnist", "mar-mnist", "transfusion-mnist"] as const)("a %s run", (preset) => {
  it("trains, saves and loads back bit-identical parameters that give the same outputs", async () => {
    const { run, report } = await trainDesignRun(preset, runDir(preset), { config: TOY[preset], evaluation: EVAL });
    try {
      const manifest = JSON.parse(readFileSync(join(runDir(preset), "design.json"), "utf8"));
      expect(manifest).toMatchObject({ format: "mmntp-design", version: 1, preset, config: TOY[preset] });
      expect(manifest.captionTokens).toBeGreaterThan(3);
      expect(manifest.eval).toEqual(JSON.parse(JSON.stringify(report)));
      expect(manifest.eval.config).toBeUndefined(); // design.json holds it once
      if (preset !== "mar-mnist") expect((report as { caption_accuracy: number }).caption_accuracy).toBeGreaterThanOrEqual(0);
      if (preset !== "llava-mnist") {
        expect((report as { generation_accuracy_by_digit: readonly number[] }).generation_accuracy_by_digit).toHaveLength(10);
        const png = PNG.sync.read(readFileSync(join(runDir(preset), "samples.png")));
        expect([png.width, png.height]).toEqual([10 * 56 + 11 * 2, 56 + 2 * 2]); // 10 digits × 1 sample, 2× scale, 2-pixel gaps
      } else expect(existsSync(join(runDir(preset), "samples.png"))).toBe(false);

      const loaded = await loadDesignRun(runDir(preset));
      try {
        expect(loaded.preset).toBe(preset);
        expect(loaded.manifest.captionTokens).toBe(manifest.captionTokens);
        const [a, b] = [await bytesOf(run), await bytesOf(loaded)];
        expect(Object.keys(b)).toEqual(Object.keys(a));
        for (const k of Object.keys(a)) {
          expect(b[k]!.shape, k).toEqual(a[k]!.shape);
          expect(b[k]!.bytes.equals(a[k]!.bytes), k).toBe(true);
        }
        expect(await outputsOf(loaded)).toEqual(await outputsOf(run));
      } finally {
        disposeDesignRun(loaded);
      }
    } finally {
      disposeDesignRun(run);
    }
  });
});

describe("loading refuses what is not a design run, naming the file and what was expected", () => {
  /** A copy of the MAR run with `edit` applied to its design.json. */
  const edited = (name: string, edit: (m: Record<string, unknown>) => unknown): string => {
    const d = join(dir, name);
    cpSync(runDir("mar-mnist"), d, { recursive: true });
    const file = join(d, "design.json");
    writeFileSync(file, JSON.stringify(edit(JSON.parse(readFileSync(file, "utf8")))));
    return d;
  };
  const refuse = async (d: string, message: string) => {
    const e = await loadDesignRun(d).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toContain(message);
  };

  it("a folder without design.json, and no folder", async () => {
    const empty = join(dir, "empty");
    mkdirSync(empty);
    await refuse(empty, `${empty} is not a design run: ${join(empty, "design.json")} is missing (make one with \`mmntp train --preset llava-mnist --out ${empty}\`)`);
    await refuse(join(dir, "none"), `no run at ${join(dir, "none")}`);
  });

  it("a wrong format, version, preset or config", async () => {
    const file = (d: string) => join(d, "design.json");
    const f = edited("format", (m) => ({ ...m, format: "mmntp-speech" }));
    await refuse(f, `${file(f)}: format is "mmntp-speech", expected "mmntp-design"`);
    const v = edited("version", (m) => ({ ...m, version: 2 }));
    await refuse(v, `${file(v)}: version 2, this mmntp reads version 1`);
    const p = edited("preset", (m) => ({ ...m, preset: "dalle-mnist" }));
    await refuse(p, `${file(p)}: unknown preset "dalle-mnist"; expected one of: llava-mnist, mar-mnist, transfusion-mnist`);
    const c = edited("config", (m) => ({ ...m, config: { ...(m.config as object), patch: 5 } }));
    await refuse(c, `${file(c)}: mar config: patch: patch size 5 does not divide the image size 28×28`);
    const l = edited("layers", (m) => ({ ...m, config: { ...(m.config as MarConfig), backbone: { ...(m.config as MarConfig).backbone, layers: 2 } } }));
    await refuse(l, `${join(l, "model.json")}: the checkpoint's transformer is`);
  });

  it("a tensor of the wrong shape", async () => {
    const d = edited("shape", (m) => m);
    const file = join(d, "model.safetensors");
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file)));
    const w = tensors["input.w"]!; // [16, 32]: a patch's 16 values into the backbone's width
    writeFileSync(file, encodeSafetensors({ ...tensors, "input.w": { ...w, shape: [32, 16] } }, metadata));
    await refuse(d, `${file} does not fit the model: tensor "input.w" has shape [32,16], expected [16,32]`);
  });
});

describe("mmntp train, caption and generate on design runs", () => {
  const printed: unknown[] = [];
  const print = (_json: boolean, value: unknown) => void printed.push(value);
  const loadEngine = () => import("../../src/engine/node.ts");
  const pngs = [0, 1].map((i) => join(dir, `digit-${i}.png`));

  it("trains --quick into a folder, then captions files and draws a grid with it", async () => {
    const out = join(dir, "cli-transfusion");
    await trainCommand(["--preset", "transfusion-mnist", "--quick", "--out", out, ...TOY_SET, "--json"], print, loadEngine);
    const trained = printed.pop() as { dir: string; preset: string; eval: { generation_accuracy: number; caption_images: number; steps: number } };
    expect(trained).toMatchObject({ dir: out, preset: "transfusion-mnist", eval: { caption_images: 50, steps: 20 } });
    expect(JSON.parse(readFileSync(join(out, "design.json"), "utf8")).config).toMatchObject({ steps: 20, batch: 8, backbone: { dim: 32 }, sampling: { steps: 2 } });

    pngs.forEach((f, i) => writeFileSync(f, encodeGrayPng(held.images.subarray(i * 784, (i + 1) * 784), 28, 28)));
    await captionCommand([...pngs, "--run", out, "--json"], print, loadEngine);
    const captioned = printed.pop() as { captions: { file: string; caption: string }[] };
    expect(captioned.captions.map((c) => c.file)).toEqual(pngs);
    for (const c of captioned.captions) expect(typeof c.caption).toBe("string");

    const grid = join(dir, "sevens.png");
    await generateCommand(["a handwritten 7", "-o", grid, "--run", out, "--count", "3", "--seed", "0", "--steps", "3", "--json"], print, loadEngine);
    expect(printed.pop()).toMatchObject({ file: grid, count: 3, preset: "transfusion-mnist", sampling: { steps: 3, guidance: 5 } });
    const png = PNG.sync.read(readFileSync(grid));
    expect([png.width, png.height]).toEqual([3 * 56 + 4 * 2, 56 + 2 * 2]);
  });

  const fails = async (f: Promise<unknown>, message: string) => {
    const e = await f.then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toContain(message);
  };

  it("refuses a preset it does not know, and what a run's design cannot do", async () => {
    await fails(trainCommand(["--preset", "dalle-mnist"], print, loadEngine), 'unknown preset "dalle-mnist"; expected one of: llava-mnist, mar-mnist, transfusion-mnist');
    await fails(trainCommand(["--preset", "mar-mnist", "--out", join(dir, "x"), "--set", "head.widht=3"], print, loadEngine), 'unknown config key "head.widht"');
    await fails(captionCommand([pngs[0]!, "--run", runDir("mar-mnist")], print, loadEngine), "a mar-mnist run draws images and does not caption them; caption with a run of llava-mnist or transfusion-mnist");
    const out = join(dir, "x.png");
    await fails(generateCommand(["a handwritten 7", "-o", out, "--run", runDir("llava-mnist")], print, loadEngine), "a llava-mnist run captions images and does not draw them; generate with a run of mar-mnist or transfusion-mnist");
    await fails(generateCommand(["a handwritten 7", "-o", out, "--run", runDir("mar-mnist"), "--top-k", "5", "--order", "maskgit"], print, loadEngine), "--top-k 5, --order maskgit: ");
    await fails(generateCommand(["a handwritten 7", "-o", out, "--run", runDir("mar-mnist"), "--steps", "2000"], print, loadEngine), "--steps must be an integer in [1, 1000] (this run's diffusion steps T), got 2000");
    await fails(generateCommand(["a handwritten 7", "-o", out, "--run", runDir("mar-mnist"), "--temperature", "0"], print, loadEngine), "--temperature must be a finite number > 0 for a mar-mnist run");
    await fails(generateWithDesign(runDir("mar-mnist"), "a handwritten giraffe", out, { count: 1, seed: 0 }), 'the prompt has a word the model never saw: "giraffe"');
    expect(designDefaults("mar-mnist", { quick: true })).toMatchObject({ steps: 20, sampling: { steps: 10 } });
  });
});
