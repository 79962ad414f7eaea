import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { np, startEngine, tree, type Array } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { loadCheckpoint, saveCheckpoint } from "../../src/io/checkpoint.ts";
import { decodeSafetensors, encodeSafetensors } from "../../src/io/safetensors.ts";
import { initTransformer, type TransformerConfig } from "../../src/backbone/transformer.ts";

beforeAll(startEngine);

const cfg: TransformerConfig = { vocabSize: 20, contextLength: 8, dim: 16, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" };
const fresh = (seed: number) => initTransformer(new KeyStream(seed), cfg);

describe("safetensors", () => {
  it("lays out the header as the spec says and round-trips", () => {
    const bytes = encodeSafetensors({ b: { dtype: "I32", shape: [2], data: Int32Array.from([7, -1]) }, a: { dtype: "F32", shape: [1, 2], data: Float32Array.from([1.5, 2]) } }, { k: "v" });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.a).toEqual({ dtype: "F32", shape: [1, 2], data_offsets: [0, 8] }); // sorted names: a first
    expect(header.b).toEqual({ dtype: "I32", shape: [2], data_offsets: [8, 16] });
    const back = decodeSafetensors(bytes);
    expect([...back.tensors.b.data]).toEqual([7, -1]);
    expect([...back.tensors.a.data]).toEqual([1.5, 2]);
    expect(back.metadata).toEqual({ k: "v" });
  });
});

describe("checkpoints", () => {
  it("save → load restores every parameter, with no temp files left", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
    const p = fresh(1);
    await saveCheckpoint(dir, "model", tree.ref(p), cfg);
    expect(readdirSync(dir).sort()).toEqual(["model.json", "model.safetensors"]);
    const { params, config } = loadCheckpoint(dir, "model", fresh(2));
    expect(config).toEqual(cfg);
    const a = tree.leaves(p);
    const b = tree.leaves(params);
    expect(b.length).toBe(a.length);
    a.forEach((x, i) => expect(np.arrayEqual(x, b[i]).js()).toBe(true));
  });

  it("rejects a truncated, a tampered and a missing checkpoint with clear messages", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
    await saveCheckpoint(dir, "model", fresh(1), cfg);
    const file = join(dir, "model.safetensors");
    const good = readFileSync(file);

    writeFileSync(file, good.subarray(0, good.length - 100));
    expect(() => loadCheckpoint(dir, "model", fresh(3))).toThrow(/model\.safetensors: .*(outside the|trailing|truncated)/);

    const text = good.toString("latin1").replace('"shape":[16]', '"shape":[17]');
    writeFileSync(file, Buffer.from(text, "latin1"));
    expect(() => loadCheckpoint(dir, "model", fresh(3))).toThrow(/shape \[17\] of F32 needs 68 bytes, offsets span 64/);

    writeFileSync(file, good.subarray(0, 5));
    expect(() => loadCheckpoint(dir, "model", fresh(3))).toThrow("not a safetensors file: 5 bytes");

    expect(() => loadCheckpoint(join(dir, "nope"), "model", fresh(3))).toThrow(/no checkpoint at .*nope\/model\.safetensors/);
  });

  it("rejects a checkpoint whose shapes do not fit the model", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
    await saveCheckpoint(dir, "model", fresh(1), cfg);
    const bigger = initTransformer(new KeyStream(0), { ...cfg, vocabSize: 21 });
    expect(() => loadCheckpoint(dir, "model", bigger as unknown as Array)).toThrow('model.safetensors: tensor "tok.table" has shape [20,16], expected [21,16]');
  });
});
