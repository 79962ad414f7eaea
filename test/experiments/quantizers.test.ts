import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { latentGrid } from "../../src/tokenizers/image/autoencoder.ts";
import { codebookHealth } from "../../src/tokenizers/quantizers/health.ts";
import { AE, healthCodes, runQuantizerExperiment, SETUPS, type QuantizerExperiment, type QuantizerResult } from "../../src/experiments/quantizers.ts";
import { DEFAULT_QUANTIZER_EXPERIMENT, parseQuantizerList } from "../../src/experiments/quantizers-config.ts";

describe("quantizer experiment (3 steps, 2 quantizers)", () => {
  const dir = mkdtempSync(join(tmpdir(), "mmntp-quantizers-"));
  const cfg = { ...DEFAULT_QUANTIZER_EXPERIMENT, steps: 3, testSize: 100, healthEvery: 2, gridImages: 4, only: parseQuantizerList("vq-ema,rvq") };
  let exp: QuantizerExperiment;
  beforeAll(async () => {
    exp = await runQuantizerExperiment(dir, cfg, () => {});
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes the table, the JSON and every plot", () => {
    for (const f of ["results.md", "results.json", "curves.png", "usage-curves.png", "recon-grid.png", "codebook-usage-vq-ema.png", "codebook-usage-rvq.png"]) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    const json = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as { results: QuantizerResult[] };
    expect(json.results.map((r) => r.name)).toEqual(["vq-ema", "rvq"]);
    expect(json.results).toEqual(JSON.parse(JSON.stringify(exp.results)));
  });

  it("reports consistent figures: bits, token counts and codebook health of the held-out ids", () => {
    for (const r of exp.results) {
      const q = SETUPS[r.name].adapter(latentGrid(AE));
      expect(r.tokensPerImage).toBe(q.tokensPerImage);
      expect(r.bitsPerToken).toBeCloseTo(Math.log2(r.codebookSize), 12);
      expect(r.bitsPerImage).toBeCloseTo(r.tokensPerImage * r.bitsPerToken, 9);
      const ids = exp.testIds[r.name]!;
      expect(ids.length).toBe(cfg.testSize * r.tokensPerImage);
      const codes = healthCodes(q);
      const h = codebookHealth(codes.fromIds(ids), codes.count);
      expect(r.codes).toBe(codes.count);
      expect(r.usage).toBe(h.usage);
      expect(r.perplexity).toBe(h.perplexity);
      expect(r.dead).toBe(h.dead);
      expect(r.dead).toBe(Math.round((1 - r.usage) * r.codes));
      expect(Number.isFinite(r.psnr) && r.psnr > 0).toBe(true);
      expect(r.curves.psnr).toHaveLength(cfg.steps);
      expect(r.curves.usage.filter((u) => !Number.isNaN(u))).toHaveLength(2); // after steps 2 and 3
    }
    // RVQ: 98 tokens of 5 bits (2 levels × K = 32) = 490 bits; health over both codebooks' 64 codes.
    const rvq = exp.results.find((r) => r.name === "rvq")!;
    expect([rvq.tokensPerImage, rvq.codebookSize, rvq.bitsPerImage, rvq.codes]).toEqual([98, 32, 490, 64]);
  });

  it("the markdown table shows the JSON's figures", () => {
    const md = readFileSync(join(dir, "results.md"), "utf8");
    for (const r of exp.results) {
      const row = md.split("\n").find((l) => l.startsWith(`| \`${r.name}\``));
      expect(row, r.name).toBeDefined();
      const cells = row!.split("|").map((c) => c.trim());
      expect(cells[3]).toBe(String(r.tokensPerImage));
      expect(Number(cells[6])).toBeCloseTo(r.bitsPerImage, 1);
      expect(Number(cells[6])).toBeCloseTo(Number(cells[3]) * Number(cells[5]), 0);
      expect(cells[7]).toBe(r.psnr.toFixed(2));
      expect(cells[8]).toBe(`${(100 * r.usage).toFixed(1)}% of ${r.codes}`);
      expect(cells[10]).toBe(String(r.dead));
    }
  });
});

describe("parseQuantizerList", () => {
  it("rejects unknown and repeated names", () => {
    expect(parseQuantizerList("vq, fsq")).toEqual(["vq", "fsq"]);
    expect(() => parseQuantizerList("vq,fsk")).toThrow('unknown quantizer "fsk" in --only; valid: vq, vq-kmeans');
    expect(() => parseQuantizerList("fsq,fsq")).toThrow('quantizer "fsq" is listed twice');
    expect(() => parseQuantizerList(",")).toThrow("--only expects a comma-separated list");
  });
});
