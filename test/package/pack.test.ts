import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../../src/engine/index.ts";
import { nativeStats } from "../../src/engine/native.ts";
import { loadMnist } from "../../src/data/mnist.ts";
import { AutoencoderTokenizer } from "../../src/tokenizers/image/autoencoder.ts";
import { MNIST_VQVAE } from "../../src/tokenizers/image/presets.ts";
import { bundleForBrowser, formatOffenders } from "../browser/bundle.ts";

/**
 * The package as a user gets it: `npm pack` (its prepack builds dist/), a fresh project that
 * `npm install`s the tarball, then plain `node` (no tsx) importing "mmntp" and running the
 * installed bin. The npm cache is warm after `npm ci`, so the install needs no network.
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "mmntp-pack-"));
const project = join(tmp, "project");

// `npm test` exports the repo's package and lifecycle settings as npm_* variables; the nested
// npm calls must see the temp project's, not those. Plain node runs without NODE_OPTIONS loaders.
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_(package|lifecycle)_|^npm_config_(local_prefix|prefix|global_prefix)$|^NODE_OPTIONS$/.test(k)),
);

/** Runs `cmd`, throwing with the tail of its output when it fails. */
function run(cmd: string, args: readonly string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ""}\n${r.stderr ?? ""}`.trim().split("\n").slice(-30).join("\n");
    throw new Error(`${cmd} ${args.join(" ")} (in ${opts.cwd ?? ROOT}) exited ${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ""}:\n${tail}`);
  }
  return String(r.stdout);
}
const lastJsonLine = (out: string): unknown => JSON.parse(out.trim().split("\n").at(-1) ?? "null");

type Packed = { filename: string; files: { path: string }[]; bundled: string[] };
let packed!: Packed;

beforeAll(() => {
  // --json prints an array of one entry per package (after anything the prepack build prints)
  const out = run("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: ROOT });
  [packed] = JSON.parse(out.slice(out.search(/^\[/m))) as Packed[];
  run("mkdir", [project]);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }));
  run("npm", ["install", join(tmp, packed.filename), "--prefer-offline", "--no-audit", "--no-fund", "--no-package-lock"], { cwd: project });
}, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("npm pack", () => {
  it("ships dist/, bin/, the native sources, the PyTorch side of export/import and the bundled engine; no tests, benches, vendor/ or src/", () => {
    const paths = packed.files.map((f) => f.path);
    const top = new Set(paths.map((p) => p.split("/")[0]));
    expect([...top].filter((p) => !["README.md", "LICENSE", "package.json", "bin", "dist", "native", "node_modules", "scripts", "reference"].includes(p!))).toEqual([]);
    for (const file of ["dist/index.js", "dist/index.d.ts", "dist/browser.js", "dist/browser.d.ts", "dist/cli/main.js", "bin/mmntp.js", "native/gemm.c", "native/mmntp_native.h", "scripts/build-native.mjs", "reference/mmntp_torch.py", "reference/train_torch.py", "reference/torchrun.py", "node_modules/@jax-js/jax/package.json"]) {
      expect(paths, file).toContain(file);
    }
    expect(paths.filter((p) => /^native\/build\/|\.test\.|\.ts$/.test(p) && !p.endsWith(".d.ts"))).toEqual([]);
    expect(paths.filter((p) => p.startsWith("reference/")).sort()).toEqual(["reference/mmntp_torch.py", "reference/torchrun.py", "reference/train_torch.py"]); // not the fixture writers or benches
    // the patched engine travels inside the tarball: a `file:` dependency cannot resolve in an installed package
    expect(packed.bundled).toEqual(["@jax-js/jax"]);
  });
});

describe("the installed package under plain node", () => {
  let facts: Record<string, unknown>;
  beforeAll(() => {
    writeFileSync(join(project, "consumer.mjs"), readFileSync(join(ROOT, "test/package/consumer.mjs")));
    facts = lastJsonLine(run(process.execPath, ["consumer.mjs"], { cwd: project, env: { ...env, MMNTP_THREADS: "1" } })) as Record<string, unknown>;
  }, 120_000);

  it("loads its dist/ and the jax-js copy bundled inside it, and needs no tsx", () => {
    const pkg = join(project, "node_modules/mmntp");
    expect(facts.files).toEqual({
      entry: join(pkg, "dist/index.js"),
      browser: join(pkg, "dist/browser.js"),
      jax: join(pkg, "node_modules/@jax-js/jax/dist/index.cjs"),
      jaxVersion: JSON.parse(readFileSync(join(ROOT, "node_modules/@jax-js/jax/package.json"), "utf8")).version,
    });
    expect(existsSync(join(project, "node_modules/tsx"))).toBe(false);
    expect(existsSync(join(pkg, "src"))).toBe(false);
  });

  it("computes: a jitted gradient, a compiled layout, HF text ids", () => {
    expect(facts.grad).toEqual([2, 4, 6]);
    // <bos>=10 | text 3 4, pad 0 | <boi>=11 | image codes 0 1 2 15 at offset 14 | <eoi>=12 | <eos>=13
    expect(facts.layoutIds).toEqual([10, 3, 4, 0, 11, 14, 15, 16, 29, 12, 13]);
    // word level, most frequent first after <pad>=0 and <unk>=1: a=2, handwritten=3, one=4, two=5
    expect(facts.textIds).toEqual([2, 3, 5]);
  });

  it("decodes greedily, and NativeDecoder (compiled inside the installed package) gives the jitted Decoder's tokens", async () => {
    await startEngine();
    const decode = facts.decode as { jitted: number[]; native?: number[]; nativeMissing: string | null };
    expect(decode.jitted).toHaveLength(6);
    expect(decode.jitted.every((id) => Number.isInteger(id) && id >= 0 && id < 20)).toBe(true);
    expect(decode.nativeMissing === null).toBe(nativeStats().enabled);
    if (decode.nativeMissing === null) expect(decode.native).toEqual(decode.jitted);
  });

  it("tokenizes a digit as the source tree does, and a safetensors round trip keeps the ids", async () => {
    await startEngine();
    // the same engine configuration as the consumer's: the native GEMM where it builds, 1 thread
    expect(facts.native).toBe(nativeStats().enabled);
    const tok = AutoencoderTokenizer.init(MNIST_VQVAE, 0);
    const [ids] = await tok.encode([{ data: loadMnist().images.slice(0, 784), channels: 1, height: 28, width: 28 }]);
    tok.dispose();
    const image = facts.image as { shape: number[]; ids: number[]; reloadedIds: number[]; decoded: number[]; pixelRange: [number, number]; tensors: number };
    expect(image.shape).toEqual([7, 7]);
    expect(image.ids).toEqual(Array.from(ids!.ids));
    expect(image.ids.every((id) => Number.isInteger(id) && id >= 0 && id < 256)).toBe(true);
    expect(image.reloadedIds).toEqual(image.ids);
    expect(image.decoded).toEqual([1, 28, 28]);
    expect(image.pixelRange[0]).toBeGreaterThanOrEqual(0);
    expect(image.pixelRange[1]).toBeLessThanOrEqual(1);
    expect(image.tensors).toBeGreaterThan(0);
  });

  it('"mmntp/browser" is the same tokenizer API, without the Node-only exports', () => {
    const b = facts.browser as Record<string, unknown>;
    expect(b.sameClass).toBe(true);
    expect(b.statics).toEqual(b.nodeStatics);
    expect(b.methods).toEqual(b.nodeMethods);
    expect(b.methods).toEqual(expect.arrayContaining(["encode", "decode", "save", "dispose"]));
    expect(b.statics).toEqual(expect.arrayContaining(["init", "fromSaved"]));
    expect(b.differing).toEqual([]);
    expect(b.nodeOnly).toEqual([]);
  });

  it('the "browser" export condition picks dist/browser.js', () => {
    const code = 'const m = await import("mmntp"); console.log(JSON.stringify({ tok: typeof m.AutoencoderTokenizer, mnist: typeof m.loadMnist }));';
    const out = run(process.execPath, ["--conditions=browser", "--input-type=module", "-e", code], { cwd: project });
    expect(lastJsonLine(out)).toEqual({ tok: "function", mnist: "undefined" });
  });

  it('a browser bundler resolves "mmntp" to dist/browser.js, free of Node built-ins', async () => {
    writeFileSync(join(project, "web.js"), 'export { AutoencoderTokenizer, startEngine } from "mmntp";\n');
    const b = await bundleForBrowser("web.js", project);
    expect(b.errors).toEqual([]);
    expect(b.offenders, formatOffenders(b.offenders)).toEqual([]);
    expect(b.inputs).toEqual(expect.arrayContaining(["node_modules/mmntp/dist/browser.js", "node_modules/mmntp/node_modules/@jax-js/jax/dist/index.js"]));
    expect(b.inputs).not.toContain("node_modules/mmntp/dist/index.js");
  });

  it("runs the installed `mmntp` bin (compiled CLI)", () => {
    const out = run(join(project, "node_modules/.bin/mmntp"), ["--help"], { cwd: project });
    expect(out).toContain("Usage: mmntp <command> [options]");
    expect(out).toMatch(/demo\s+train tokenizers/);
  });

  it("its types resolve for a TypeScript consumer, and catch a wrong type", () => {
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ["typed.ts"] }),
    );
    const typed = [
      'import { AutoencoderTokenizer, MNIST_VQVAE, JointVocab, type TokenIds } from "mmntp";',
      'import { vq, type Image, type Tokenizer } from "mmntp/browser";',
      "const tok: Tokenizer<Image> = AutoencoderTokenizer.init(MNIST_VQVAE, 0);",
      "const ids: TokenIds = { ids: new Int32Array(1), shape: [1] };",
      "const size: number = JointVocab.build({ text: { size: 2, pad: 0 }, specials: [], modalities: [] }).size;",
      "export const used = [tok, ids, size, vq.quantize];",
      "export const wrong: string = AutoencoderTokenizer.init(MNIST_VQVAE, 0).codebookSize;",
    ];
    writeFileSync(join(project, "typed.ts"), typed.join("\n"));
    const r = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "."], { cwd: project, encoding: "utf8", env });
    // exactly one error: the deliberate one on the last line
    expect(r.stdout.trim().split("\n")).toEqual([expect.stringMatching(/^typed\.ts\(7,\d+\): error TS2322: Type 'number' is not assignable to type 'string'\./)]);
  });
});
