import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { flattenTree, loadCheckpoint, saveCheckpoint, unflattenTree, writeAtomic } from "../../src/io/checkpoint.ts";
import type { TensorRecord } from "../../src/io/safetensors.ts";

const tempDir = () => mkdtempSync(join(tmpdir(), "mmntp-ckpt-"));

const tensors = (): Record<string, TensorRecord> => ({
  "blocks.0.attn.qkv.w": { dtype: "F32", shape: [4, 12], data: Float32Array.from({ length: 48 }, (_, i) => i / 7) },
  "blocks.0.attn.qkv.b": { dtype: "F32", shape: [12], data: new Float32Array(12).fill(0.5) },
  "codebook.usage": { dtype: "I32", shape: [3], data: Int32Array.from([1, 0, 9]) },
});
const config = { model: { dim: 4, layers: 1 }, mlp: "gelu" };

describe("saveCheckpoint / loadCheckpoint", () => {
  it("round-trips tensors, config and metadata through <name>.safetensors + <name>.json", () => {
    const dir = tempDir();
    saveCheckpoint(dir, "model", { tensors: tensors(), config, metadata: { step: "100" } });
    expect(readdirSync(dir).sort()).toEqual(["model.json", "model.safetensors"]);
    const back = loadCheckpoint(dir, "model");
    expect(back.config).toEqual(config);
    expect(back.tensors).toEqual(tensors());
    expect(back.metadata).toEqual({ format: "mmntp", name: "model", step: "100" });
    expect(JSON.parse(readFileSync(join(dir, "model.json"), "utf8"))).toEqual(config);
  });

  it("creates the folder, and a second save replaces the first leaving no temp files", () => {
    const dir = join(tempDir(), "runs", "x");
    saveCheckpoint(dir, "vqvae", { tensors: tensors(), config });
    const next: Record<string, TensorRecord> = { w: { dtype: "U8", shape: [2], data: Uint8Array.of(1, 2) } };
    saveCheckpoint(dir, "vqvae", { tensors: next, config: { v: 2 } });
    expect(readdirSync(dir).sort()).toEqual(["vqvae.json", "vqvae.safetensors"]);
    const back = loadCheckpoint(dir, "vqvae");
    expect(back.tensors).toEqual(next);
    expect(back.config).toEqual({ v: 2 });
  });

  it("names the missing file and what to do", () => {
    const dir = join(tempDir(), "runs", "x");
    expect(() => loadCheckpoint(dir, "vqvae")).toThrow(`no checkpoint at ${join(dir, "vqvae.safetensors")}; run \`mmntp demo\` first or pass --run <dir>`);
  });

  it("wraps a truncated or tampered file's error with its path", () => {
    const dir = tempDir();
    saveCheckpoint(dir, "model", { tensors: tensors(), config });
    const file = join(dir, "model.safetensors");
    const good = readFileSync(file);

    writeFileSync(file, good.subarray(0, good.length - 10));
    expect(() => loadCheckpoint(dir, "model")).toThrow(`${file}: tensor "codebook.usage": data_offsets [240, 252] run past the 242 data bytes (truncated file?)`);

    writeFileSync(file, good.subarray(0, 100));
    expect(() => loadCheckpoint(dir, "model")).toThrow(new RegExp(`^${file}: truncated: header says \\d+ bytes, file has 92`));

    writeFileSync(file, Buffer.from(good.toString("latin1").replace('"shape":[12]', '"shape":[13]'), "latin1"));
    expect(() => loadCheckpoint(dir, "model")).toThrow(`${file}: tensor "blocks.0.attn.qkv.b": shape [13] of F32 needs 52 bytes, but data_offsets [0, 48] span 48`);

    writeFileSync(file, Buffer.from(good.toString("latin1").replace('"dtype"', '"dtypf"'), "latin1"));
    expect(() => loadCheckpoint(dir, "model")).toThrow(`${file}: tensor "blocks.0.attn.qkv.b": unknown dtype (missing)`);
  });

  it("reports a missing or broken config file", () => {
    const dir = tempDir();
    saveCheckpoint(dir, "model", { tensors: tensors(), config });
    writeFileSync(join(dir, "model.json"), "{ not json");
    expect(() => loadCheckpoint(dir, "model")).toThrow(`${join(dir, "model.json")}: invalid JSON`);
  });

  it("checks the expected tensors: missing, shape, dtype and extras, all in one message", () => {
    const dir = tempDir();
    saveCheckpoint(dir, "model", { tensors: tensors(), config });
    const file = join(dir, "model.safetensors");
    const expect_ = { "blocks.0.attn.qkv.w": { shape: [4, 12] }, "blocks.0.attn.qkv.b": { shape: [12], dtype: "F32" }, "codebook.usage": { shape: [3], dtype: "I32" } } as const;
    expect(loadCheckpoint(dir, "model", { expect: expect_ }).tensors["codebook.usage"].shape).toEqual([3]);

    expect(() => loadCheckpoint(dir, "model", { expect: { ...expect_, "blocks.0.attn.qkv.w": { shape: [5, 12] } } })).toThrow(
      `${file} does not fit the model: tensor "blocks.0.attn.qkv.w" has shape [4,12], expected [5,12]`,
    );
    expect(() => loadCheckpoint(dir, "model", { expect: { ...expect_, "codebook.usage": { shape: [3], dtype: "F32" } } })).toThrow(
      'tensor "codebook.usage" has dtype I32, expected F32',
    );
    const { "codebook.usage": _, ...fewer } = expect_;
    expect(() => loadCheckpoint(dir, "model", { expect: { ...fewer, "head.w": { shape: [4, 4] } } })).toThrow(
      `${file} does not fit the model: missing tensor "head.w"; unexpected tensor "codebook.usage"`,
    );
  });
});

describe("writeAtomic", () => {
  it("replaces an existing file in place", () => {
    const dir = tempDir();
    const path = join(dir, "tokenizer.json");
    writeFileSync(path, "old contents that are longer than the new ones");
    writeAtomic(path, "new");
    expect(readFileSync(path, "utf8")).toBe("new");
    writeAtomic(path, Uint8Array.of(1, 2, 3));
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
    expect(readdirSync(dir)).toEqual(["tokenizer.json"]);
  });

  it("removes its temp file when the rename fails", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "model.safetensors")); // a folder in the way: rename cannot replace it
    expect(() => writeAtomic(join(dir, "model.safetensors"), "x")).toThrow();
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
  });
});

class Leaf {
  constructor(readonly id: number) {}
}

describe("flattenTree / unflattenTree", () => {
  const params = {
    tok: { table: new Leaf(1) },
    pos: undefined, // an absent optional param is skipped
    blocks: [{ attn: { qkv: { w: new Leaf(2), b: new Leaf(3) } } }, { attn: { qkv: { w: new Leaf(4), b: new Leaf(5) } } }],
    head: { w: new Leaf(6) },
  };

  it("names leaves by dotted path in key order and rebuilds the same tree, arrays included", () => {
    const flat = flattenTree(params);
    expect(Object.keys(flat)).toEqual(["tok.table", "blocks.0.attn.qkv.w", "blocks.0.attn.qkv.b", "blocks.1.attn.qkv.w", "blocks.1.attn.qkv.b", "head.w"]);
    expect(flat["blocks.1.attn.qkv.b"]).toBe(params.blocks[1].attn.qkv.b);
    const back = unflattenTree(flat) as typeof params;
    expect(Array.isArray(back.blocks)).toBe(true);
    const { pos: _, ...present } = params;
    expect(back).toEqual(present);
  });

  it("turns only levels keyed exactly 0..n-1 into arrays", () => {
    expect(unflattenTree({ "a.0": 1, "a.1": 2, "b.1": 3, "c.01": 4, "d.0.x": 5 })).toEqual({ a: [1, 2], b: { 1: 3 }, c: { "01": 4 }, d: [{ x: 5 }] });
    expect(unflattenTree({ "0.w": 1, "1.w": 2 })).toEqual([{ w: 1 }, { w: 2 }]);
  });

  it("stops at custom leaves (e.g. TensorRecords) and works with any leaf type", () => {
    const rec = (n: number): TensorRecord => ({ dtype: "F32", shape: [1], data: Float32Array.of(n) });
    const tree = { a: rec(1), b: [rec(2)] };
    const flat = flattenTree<TensorRecord>(tree, (x) => typeof x === "object" && x !== null && "dtype" in x);
    expect(Object.keys(flat)).toEqual(["a", "b.0"]);
    expect(unflattenTree(flat)).toEqual(tree);
    expect(flattenTree({ x: [1, "two", null] })).toEqual({ "x.0": 1, "x.1": "two", "x.2": null });
  });

  it("rejects names that cannot round-trip", () => {
    expect(() => flattenTree({ "a.b": 1 })).toThrow('key "a.b" under "" cannot be part of a dotted name');
    expect(() => flattenTree(new Leaf(1))).toThrow("the root must be an object or an array");
    expect(() => unflattenTree({ a: 1, "a.b": 2 })).toThrow('"a" is both a leaf and a branch');
    expect(() => unflattenTree({ "a.b": 2, a: 1 })).toThrow('"a" is both a leaf and a branch');
    expect(() => unflattenTree({ "a..b": 1 })).toThrow('bad name "a..b"');
  });
});

describe("with jax-js params (how the model code uses it)", () => {
  it("params → flattenTree → TensorRecords → save → load(expect) → unflattenTree → params", async () => {
    const { fromHost, np, startEngine } = await import("../../src/engine/index.ts");
    const { KeyStream } = await import("../../src/engine/rng.ts");
    const { initTransformer } = await import("../../src/backbone/transformer.ts");
    await startEngine();
    const cfg = { vocabSize: 20, contextLength: 8, dim: 16, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" } as const;
    const keys = new KeyStream(1);
    const params = initTransformer(keys, cfg);
    keys.dispose();

    const records: Record<string, TensorRecord> = {};
    for (const [name, arr] of Object.entries(flattenTree(params))) {
      const data = await arr.ref.data();
      records[name] = data instanceof Int32Array ? { dtype: "I32", shape: arr.shape, data } : { dtype: "F32", shape: arr.shape, data: data as Float32Array };
    }
    expect(Object.keys(records)).toContain("blocks.1.attn.qkv.w");
    const dir = tempDir();
    saveCheckpoint(dir, "model", { tensors: records, config: cfg });

    const expected = Object.fromEntries(Object.entries(flattenTree(params)).map(([k, a]) => [k, { shape: a.shape, dtype: "F32" as const }]));
    const { tensors: loaded, config } = loadCheckpoint(dir, "model", { expect: expected });
    expect(config).toEqual(cfg);
    const restored = unflattenTree(Object.fromEntries(Object.entries(loaded).map(([k, t]) => [k, fromHost(t.data as Float32Array, t.shape)]))) as typeof params;
    const a = flattenTree(params);
    const b = flattenTree(restored);
    expect(Object.keys(b)).toEqual(Object.keys(a)); // same key order, so the same jax-js treedef
    for (const k of Object.keys(a)) expect(np.arrayEqual(a[k], b[k]).js(), k).toBe(true);
  });
});
