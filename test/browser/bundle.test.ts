import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { bundleForBrowser, formatOffenders } from "./bundle.ts";

/**
 * `mmntp/browser` must bundle for a browser: nothing in src/browser.ts's import graph may import a
 * Node built-in or a native addon, statically or dynamically (a bundler must resolve both).
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "mmntp-bundle-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the browser bundle", () => {
  it("src/browser.ts bundles with platform: browser and reaches no Node built-in", async () => {
    const b = await bundleForBrowser("src/browser.ts", ROOT);
    expect(b.errors, `esbuild could not bundle src/browser.ts for the browser:\n${b.errors.join("\n")}`).toEqual([]);
    expect(b.offenders, `src/browser.ts reaches Node-only modules (module ← importer ← … ← entry):\n${formatOffenders(b.offenders)}`).toEqual([]);
    // it is the library, not an empty shell: the engine and the tokenizer are inside
    expect(b.inputs).toEqual(expect.arrayContaining(["src/engine/index.ts", "src/tokenizers/image/autoencoder.ts", "node_modules/@jax-js/jax/dist/index.js"]));
    expect(b.code).toContain("AutoencoderTokenizer");
  });

  it("the check itself names each built-in, static or dynamic, with its import chain", async () => {
    writeFileSync(join(tmp, "entry.js"), 'import "./middle.js";\nexport const x = 1;\n');
    writeFileSync(join(tmp, "middle.js"), 'import { join } from "node:path";\nexport const y = () => import("fs").then(() => join("a", "b"));\n');
    const b = await bundleForBrowser("entry.js", tmp);
    expect(b.errors).toEqual([]);
    expect(b.offenders).toEqual([
      { module: "node:path", chain: ["entry.js", "middle.js"] },
      { module: "fs", chain: ["entry.js", "middle.js"] },
    ]);
    expect(formatOffenders(b.offenders)).toBe("  node:path, fs  ←  middle.js ← entry.js");
  });
});
