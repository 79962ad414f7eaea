/**
 * `mmntp export --format torch` and `mmntp import` without PyTorch: a round trip gives the same
 * model bit for bit; the files are laid out as reference/mmntp_torch.py reads them; the training
 * shard holds the paired layout's sequences; bad checkpoints are refused naming the tensor or field.
 * (The PyTorch side itself: test/backbone/torch-oracle.test.ts, and the slow
 * scale-out.slow.test.ts, which runs torchrun when python3-torch is installed.)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromHost, startEngine, tree } from "../../src/engine/index.ts";
import { InputError } from "../../src/io/errors.ts";
import { decodeSafetensors, encodeSafetensors, type TensorRecord } from "../../src/io/safetensors.ts";
import { causalMask } from "../../src/backbone/masks.ts";
import { forward, type TransformerParams } from "../../src/backbone/transformer.ts";
import { DEFAULT_DEMO } from "../../src/pipelines/demo.ts";
import { exportTorch, type TorchExportConfig } from "../../src/pipelines/export.ts";
import { importTorch } from "../../src/pipelines/import.ts";
import { disposeRun, loadRun, saveRun } from "../../src/pipelines/run.ts";
import { evaluateRun } from "../../src/pipelines/use-run.ts";
import { mnistRun } from "../helpers/mnist-run.ts";
import { saveTinyRun } from "../reliability/tiny-run.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-interop-"));
const source = join(dir, "run");
const exported = join(dir, "export");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  await startEngine();
  const run = mnistRun();
  await saveRun(source, run);
  disposeRun(run);
  await exportTorch(source, exported, { data: 40, seed: 3 });
});

const readTensors = (file: string) => decodeSafetensors(new Uint8Array(readFileSync(file))).tensors;
const readConfig = (folder: string) => JSON.parse(readFileSync(join(folder, "config.json"), "utf8")) as TorchExportConfig;

/** Logits of a fixed batch [2, 20] under the run's model. */
async function logitsOf(runDir: string): Promise<Float32Array> {
  const run = loadRun(runDir);
  const ids = Int32Array.from({ length: 40 }, (_, i) => (i * 37) % run.model.config.vocabSize);
  const out = (await forward(tree.ref(run.model.params as TransformerParams), fromHost(ids, [2, 20]), causalMask(20), run.model.config).data()) as Float32Array;
  disposeRun(run);
  return out;
}

/** A copy of the export with `edit` applied to its tensors or config, then imported: the refusal. */
async function importEdited(name: string, edit: { tensors?: (t: Record<string, TensorRecord>) => void; config?: (c: Record<string, unknown>) => void }): Promise<InputError> {
  const folder = join(dir, name);
  rmSync(folder, { recursive: true, force: true });
  await exportTorch(source, folder);
  if (edit.tensors) {
    const t = readTensors(join(folder, "model.safetensors"));
    edit.tensors(t);
    writeFileSync(join(folder, "model.safetensors"), encodeSafetensors(t));
  }
  if (edit.config) {
    const c = readConfig(folder) as unknown as Record<string, unknown>;
    edit.config(c);
    writeFileSync(join(folder, "config.json"), JSON.stringify(c));
  }
  const err = await importTorch(folder, source, join(dir, `${name}-run`)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, name).toBeInstanceOf(InputError);
  return err as InputError;
}

describe("export → import", () => {
  it("with no training in between gives the same model: bit-identical logits and weights", async () => {
    const back = join(dir, "back");
    await importTorch(exported, source, back);
    const [a, b] = [await logitsOf(source), await logitsOf(back)];
    expect(b.length).toBe(2 * 20 * readConfig(exported).model.vocabSize);
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    const manifest = (d: string) => JSON.parse(readFileSync(join(d, "run.json"), "utf8")) as { files: Record<string, string> };
    expect(manifest(back).files).toEqual(manifest(source).files); // every file of the checkpoint, byte for byte
  });

  it("and the imported run scores as its source does", async () => {
    const cfg = { ...DEFAULT_DEMO, captionImages: 10, samplesPerClass: 1 };
    const back = join(dir, "back-eval");
    await importTorch(exported, source, back);
    expect(await evaluateRun(back, cfg)).toEqual(await evaluateRun(source, cfg));
  });

  it("writes PyTorch names and layouts: nn.Linear [out, in], the VQ decoder, and the config", async () => {
    const t = readTensors(join(exported, "model.safetensors"));
    const v = readConfig(exported).model.vocabSize;
    expect(t["transformer.wte.weight"]!.shape).toEqual([v, 32]);
    expect(t["transformer.wpe.weight"]!.shape).toEqual([64, 32]);
    expect(t["transformer.h.1.attn.c_attn.weight"]!.shape).toEqual([96, 32]);
    expect(t["transformer.h.0.mlp.c_fc.weight"]!.shape).toEqual([64, 32]);
    expect(t["lm_head.weight"]!.shape).toEqual([v, 32]);
    expect(Object.keys(t).filter((k) => k.includes("h.0."))).toHaveLength(12);
    // the transpose: PyTorch's c_attn.weight[o, i] is mmntp's qkv.w[i, o]
    const run = loadRun(source);
    const w = (await (run.model.params as TransformerParams).blocks[1]!.attn.qkv.w.ref.data()) as Float32Array;
    disposeRun(run);
    const tw = t["transformer.h.1.attn.c_attn.weight"]!.data as Float32Array;
    for (const [i, o] of [[0, 0], [3, 70], [31, 95]] as const) expect(tw[o * 32 + i]).toBe(w[i * 96 + o]);
    const dec = readTensors(join(exported, "image-decoder.safetensors"));
    expect(Object.keys(dec).sort()).toEqual(["decoder.conv_in.bias", "decoder.conv_in.weight", "decoder.up1.bias", "decoder.up1.weight", "decoder.up2.bias", "decoder.up2.weight", "quantize.embedding.weight"]);
    expect(dec["quantize.embedding.weight"]!.shape).toEqual([256, 16]);
    const c = readConfig(exported);
    expect(c.model.dim).toBe(32);
    expect(c.imageDecoder).toEqual({ codebookSize: 256, dim: 16, channels: [8, 8], imageChannels: 1, output: "sigmoid", grid: [7, 7] });
    expect(c.source.digest).toBe((JSON.parse(readFileSync(join(source, "run.json"), "utf8")) as { digest: string }).digest);
  });

  it("exports the paired layout's training sequences: half text→image, half image→text, shifted targets", () => {
    const t = readTensors(join(exported, "data.safetensors"));
    expect(Object.keys(t).sort()).toEqual(["inputs", "targets", "weights"]);
    expect(t.inputs!.shape).toEqual([40, 64]);
    const [inp, tgt, w] = [t.inputs!.data as Int32Array, t.targets!.data as Int32Array, t.weights!.data as Float32Array];
    const run = loadRun(source);
    const [bos, boi, eoi, eos] = ["<bos>", "<boi>", "<eoi>", "<eos>"].map((s) => run.vocab.special(s));
    const image = run.vocab.range("image");
    for (let r = 0; r < 40; r++) {
      const row = (a: Int32Array | Float32Array) => Array.from(a.subarray(r * 64, (r + 1) * 64));
      const [i, o, ws] = [row(inp), row(tgt), row(w)];
      expect(i[0]).toBe(bos);
      const last = i.length - 1 - [...i].reverse().findIndex((id) => id !== run.vocab.padId); // the sequence's final token is a target only
      expect(last).toBeGreaterThan(50);
      expect(i.slice(1, last + 1)).toEqual(o.slice(0, last)); // targets are the inputs shifted by one
      expect(o[last]).toBe(r % 2 === 0 ? eoi : eos); // text→image ends at <eoi>, image→text at <eos>
      expect(ws.some((x) => x > 0)).toBe(true);
      const captionFirst = i[1] !== run.vocab.padId; // text→image: <bos> caption… <boi> codes; image→text: <bos> <pad>… <boi> codes <eoi> caption
      expect(captionFirst, `row ${r}`).toBe(r % 2 === 0);
      expect(i).toContain(boi);
      expect(i.filter((id) => id >= image.start && id < image.end)).toHaveLength(49);
    }
    disposeRun(run);
  });
});

describe("import refuses a checkpoint that does not fit, naming what", () => {
  it("a missing tensor", async () => {
    const e = await importEdited("missing", { tensors: (t) => void delete t["transformer.h.1.mlp.c_proj.bias"] });
    expect(e.message).toContain('missing tensor "transformer.h.1.mlp.c_proj.bias"');
    expect(e.message).toContain("model.safetensors");
  });

  it("an extra tensor", async () => {
    const e = await importEdited("extra", { tensors: (t) => void (t["transformer.h.2.ln_1.weight"] = { dtype: "F32", shape: [32], data: new Float32Array(32) }) });
    expect(e.message).toContain('unexpected tensor "transformer.h.2.ln_1.weight"');
  });

  it("a tensor of the wrong shape (mmntp's [in, out] instead of PyTorch's [out, in])", async () => {
    const e = await importEdited("shape", {
      tensors: (t) => {
        const w = t["transformer.h.0.mlp.c_fc.weight"]!;
        t["transformer.h.0.mlp.c_fc.weight"] = { ...w, shape: [32, 64] } as TensorRecord;
      },
    });
    expect(e.message).toContain('tensor "transformer.h.0.mlp.c_fc.weight" has shape [32,64], expected [64,32]');
  });

  it("a non-finite weight", async () => {
    const e = await importEdited("nan", { tensors: (t) => void ((t["lm_head.weight"]!.data as Float32Array)[5] = Number.NaN) });
    expect(e.message).toMatch(/lm_head|head\.w/);
    expect(e.message).toContain("non-finite");
  });

  it("a config that is not the run's model", async () => {
    const e = await importEdited("config", { config: (c) => void ((c.model as Record<string, unknown>).layers = 3) });
    expect(e.message).toContain("model.layers is 3, but the run's model has 2");
    expect(e.field).toBe("model.layers");
  });

  it("a folder that is not an export", async () => {
    const e = await importEdited("format", { config: (c) => void (c.format = "hf") });
    expect(e.message).toContain('format is "hf", expected "mmntp-torch"');
  });
});

describe("export refuses what it cannot write", () => {
  it("training sequences of a run whose data set is not the embedded digits", async () => {
    const tiny = join(dir, "tiny");
    await saveTinyRun(tiny);
    await expect(exportTorch(tiny, join(dir, "tiny-export"), { data: 8 })).rejects.toThrow(/embedded MNIST digits, but this run's data set is "tiny"/);
    await expect(exportTorch(tiny, join(dir, "tiny-export"), { data: -1 })).rejects.toThrow(/--data must be an integer in \[0, /);
  });

  it("evaluate refuses a run that is not on the digits", async () => {
    await expect(evaluateRun(join(dir, "tiny"))).rejects.toThrow(/this run's data set is "tiny"/);
  });
});

describe("the export folder is whole once config.json is there", () => {
  it("config.json lists the shard's tensors and the split it was drawn from", () => {
    const c = readConfig(exported);
    expect(c.data).toEqual({ examples: 40, length: 64, seed: 3, split: { testSize: DEFAULT_DEMO.testSize, seed: DEFAULT_DEMO.seed }, tensors: ["inputs", "targets", "weights"] });
  });
});
