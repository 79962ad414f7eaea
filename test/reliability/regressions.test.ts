import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkTransformerConfig } from "../../src/backbone/transformer.ts";
import { checkPairedLayout, DEFAULT_PAIRED } from "../../src/backbone/sequence/presets.ts";
import { asInputError, InputError } from "../../src/io/errors.ts";
import { encodeGrayPng, readGrayImage } from "../../src/io/png.ts";
import { decodeSafetensors, encodeSafetensors, type TensorRecord } from "../../src/io/safetensors.ts";
import { disposeRun, loadRun } from "../../src/pipelines/run.ts";
import { saveTinyRun } from "./tiny-run.ts";

/**
 * The crash, hang and silent-garbage cases of issue #27 against a run folder, each a clean
 * InputError (naming the file, the field, the value and what is allowed) within 2 s. The manifest
 * catches any edit of a checkpoint file by its hash; so each case is also made "sealed" (the
 * hash and run.json's digest recomputed, as a deliberate editor would), to reach the validator
 * behind it. The hostile PNG/IDX files are in memory.test.ts, the kills in sigkill.test.ts.
 */
const ROOT = new URL("../..", import.meta.url).pathname;
const base = mkdtempSync(join(tmpdir(), "mmntp-regress-"));
const pristine = join(base, "pristine");
afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeAll(async () => {
  await saveTinyRun(pristine);
});

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
let copies = 0;

/** A copy of the run with checkpoint file `name` replaced by `edit(old)`; `seal` recomputes its hash and run.json's digest. */
function edited(name: string, edit: (old: Buffer) => Uint8Array | string, seal: boolean): { dir: string; file: string } {
  const dir = join(base, `copy-${copies++}`);
  cpSync(pristine, dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, "run.json"), "utf8")) as { checkpoint: string; files: Record<string, string>; digest?: string };
  const file = join(dir, manifest.checkpoint, name);
  const bytes = edit(readFileSync(file));
  writeFileSync(file, bytes);
  if (seal) {
    manifest.files[name] = sha256(bytes);
    writeManifest(dir, manifest);
  }
  return { dir, file };
}

/** run.json with its digest recomputed (saveRun's rule). */
function writeManifest(dir: string, m: Record<string, unknown>): void {
  const { digest: _, ...fields } = m;
  writeFileSync(join(dir, "run.json"), JSON.stringify({ ...fields, digest: sha256(JSON.stringify(fields)) }, null, 2));
}

const editJson = (change: (o: Record<string, unknown>) => void) => (old: Buffer) => {
  const o = JSON.parse(old.toString("utf8")) as Record<string, unknown>;
  change(o);
  return JSON.stringify(o, null, 2);
};

/** loadRun(dir) must throw an InputError containing `message`, within 2 s. */
function refuses(dir: string, message: string): InputError {
  const t0 = performance.now();
  let error: unknown;
  try {
    disposeRun(loadRun(dir));
  } catch (e) {
    error = e;
  }
  expect(performance.now() - t0).toBeLessThan(2000);
  expect(error).toBeInstanceOf(InputError);
  expect((error as Error).message).toContain(message);
  return error as InputError;
}

describe("model.json", () => {
  it.each([1e4, 1e9])("layers %d: a hash mismatch, or sealed, a range error", (layers) => {
    const unsealed = edited("model.json", editJson((o) => (o.layers = layers)), false);
    refuses(unsealed.dir, `${unsealed.file} does not match run.json (sha-256 differs)`);
    const sealed = edited("model.json", editJson((o) => (o.layers = layers)), true);
    refuses(sealed.dir, `${sealed.file}.layers: expected an integer in [1, 1024], got ${layers}`);
  });

  it("layers 1000 (in range, sealed): the stored values are counted against the config before any weight is built", () => {
    const { dir } = edited("model.json", editJson((o) => (o.layers = 1000)), true);
    refuses(dir, "model.safetensors holds 1240 values, but model.json describes 600640 parameters");
  });

  it("heads changed (same shapes, another model): the hash", () => {
    const { dir, file } = edited("model.json", editJson((o) => (o.heads = 1)), false);
    refuses(dir, `${file} does not match run.json (sha-256 differs): the file changed after the run was saved`);
  });

  it.each([
    ["invalid JSON", () => '{ "dim": 8, }', "invalid JSON: "],
    ["null", () => "null", ": expected an object, got null"],
    ["negative dims", editJson((o) => (o.dim = -8)), ".dim: expected an integer in [1, "],
    ["huge dims", editJson((o) => (o.dim = 2 ** 40)), ".dim: expected an integer in [1, "],
    ["an unknown mlp", editJson((o) => (o.mlp = "bogus")), '.mlp: expected one of gelu, swiglu, got "bogus"'],
  ])("sealed %s: names the file and the field", (_, edit, message) => {
    const { dir, file } = edited("model.json", edit, true);
    expect(refuses(dir, message).message.startsWith(file)).toBe(true);
  });
});

describe("weights", () => {
  const rewrite = (fill: number) => (old: Buffer) => {
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(old));
    const out: Record<string, TensorRecord> = {};
    for (const [k, t] of Object.entries(tensors)) out[k] = t.dtype === "F32" ? { ...t, data: new Float32Array(t.data.length).fill(fill) } : t;
    return encodeSafetensors(out, metadata);
  };
  it.each([
    [Number.NaN, "has a non-finite value (NaN) at element 0"],
    [Number.POSITIVE_INFINITY, "has a non-finite value (Infinity) at element 0"],
    [0, "is all zeros"],
  ])("model.safetensors all %d (sealed): refused", (fill, message) => {
    const { dir } = edited("model.safetensors", rewrite(fill), true);
    refuses(dir, message);
  });
  it("a checkpoint file linked to /dev/zero: refused without reading it", () => {
    const { dir, file } = edited("model.safetensors", (old) => old, false);
    rmSync(file);
    symlinkSync("/dev/zero", file);
    refuses(dir, `${file} is not a regular file`);
  });
  it("image tokenizer and judge all NaN (sealed): refused", () => {
    refuses(edited("image-tokenizer.safetensors", rewrite(Number.NaN), true).dir, "non-finite value (NaN)");
    refuses(edited("judge.safetensors", rewrite(Number.NaN), true).dir, "non-finite value (NaN)");
  });
});

describe("tokenizer.json and the vocabulary", () => {
  const vocab = (change: (v: Record<string, number>) => void) => editJson((o) => change((o.model as { vocab: Record<string, number> }).vocab));
  it("a word added or removed (sealed): the text vocabulary no longer matches the joint one", () => {
    refuses(edited("tokenizer.json", vocab((v) => (v.zebra = Object.keys(v).length)), true).dir, "the text tokenizer has 16 tokens, but the joint vocabulary reserves 15 text ids");
    refuses(edited("tokenizer.json", vocab((v) => delete v.seven), true).dir, "the text tokenizer has 14 tokens, but the joint vocabulary reserves 15 text ids");
  });
  it("an id of 2·10⁹ (sealed): refused before HF's reader would loop over it", () => {
    refuses(edited("tokenizer.json", vocab((v) => (v.the = 2009746942)), true).dir, 'tokenizer.json: TextTokenizer.fromJSON: model.vocab "the" has id 2009746942; ids must be integers in [0, 16]');
  });
});

describe("run.json's layout", () => {
  const withLayout = (layout: Record<string, unknown>, seal: boolean) => {
    const dir = join(base, `copy-${copies++}`);
    cpSync(pristine, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, "run.json"), "utf8")) as Record<string, unknown>;
    m.layout = { ...DEFAULT_PAIRED, ...layout };
    if (seal) writeManifest(dir, m);
    else writeFileSync(join(dir, "run.json"), JSON.stringify(m, null, 2));
    return dir;
  };
  it("captionSlot 0 (not what the model was trained with): the digest", () => {
    refuses(withLayout({ captionSlot: 0 }, false), "run.json: digest does not match the manifest's content: run.json changed after the run was saved");
  });
  it("captionSlot −5 or past the context (sealed): the layout's checks", () => {
    refuses(withLayout({ captionSlot: -5 }, true), "run.json: layout.captionSlot: expected an integer in [0, 4096] (0 = no padding), got -5");
    refuses(withLayout({ captionSlot: 40 }, true), "layout.captionSlot 40 makes sequences of 88 tokens, more than the model's contextLength 24 (+1) holds");
  });
  it("the validators themselves, as the CLI's --set and the loader call them", () => {
    for (const slot of [-5, 1.5, 1e9, "6", null]) expect(() => asInputError(() => checkPairedLayout({ ...DEFAULT_PAIRED, captionSlot: slot }))).toThrow(InputError);
    expect(() => checkPairedLayout({ ...DEFAULT_PAIRED, captionSlot: 0 })).not.toThrow(); // 0 = no padding is a valid layout
    const model = { vocabSize: 40, contextLength: 64, dim: 96, layers: 3, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "learned" };
    for (const bad of [{ layers: 1e9 }, { heads: 5 }, { dim: -96 }, { mlp: "bogus" }, { positions: "rope3d" }]) expect(() => asInputError(() => checkTransformerConfig({ ...model, ...bad }))).toThrow(InputError);
  });
});

describe("a PNG whose pixel data is cut short (CRCs valid)", () => {
  it("is refused, the same way every time, instead of decoded from uninitialized memory", () => {
    const whole = Buffer.from(encodeGrayPng(new Float32Array(784).fill(0.5), 28, 28));
    // Cut the IDAT's zlib stream in half, fixing its length and CRC so pngjs reaches the pixels.
    const at = 33;
    const data = whole.subarray(at + 8, at + 8 + whole.readUInt32BE(at));
    const cut = data.subarray(0, data.length >> 1);
    const idat = Buffer.alloc(12 + cut.length);
    idat.writeUInt32BE(cut.length, 0);
    idat.write("IDAT", 4, "latin1");
    cut.copy(idat, 8);
    idat.writeUInt32BE(crc32(idat.subarray(4, 8 + cut.length)), 8 + cut.length);
    const file = join(base, "cut.png");
    writeFileSync(file, Buffer.concat([whole.subarray(0, at), idat, whole.subarray(at + 12 + data.length)]));
    for (let i = 0; i < 3; i++) expect(() => readGrayImage(file)).toThrow(`${file} could not be read as a PNG: the file is truncated or corrupt (its pixel data holds`);
  });
});

describe("the CLI on a bad run or input", () => {
  const mmntp = (...args: string[]) => spawnSync(process.execPath, ["bin/mmntp.js", ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, MMNTP_THREADS: "1" } });
  it("a tampered run, /dev/zero and a PNG declaring 2³¹ pixels a side: `mmntp: <message>`, exit 1, never an internal error", () => {
    const { dir, file } = edited("model.json", editJson((o) => (o.layers = 1e9)), true);
    const crash = join(base, "crash.png");
    const png = Buffer.alloc(68);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 8]).copy(png);
    writeFileSync(crash, png);
    for (const [args, message] of [
      [["caption", crash, "--run", dir], `mmntp: ${file}.layers: expected an integer in [1, 1024], got 1000000000`],
      [["caption", "/dev/zero", "--run", pristine], "mmntp: /dev/zero is not a regular file (a device or special file); expected a PNG file"],
      [["caption", crash, "--run", pristine], `mmntp: ${crash} is 2147483647×2147483647 (width×height), expected 8×8`],
      [["generate", "a handwritten 3", "-o", "/dev/full", "--run", pristine], "mmntp: /dev/full exists and is not a regular file (a device or special file); give a file path"],
    ] as const) {
      const r = mmntp(...args);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr.trim()).toBe(message);
    }
  });
});
