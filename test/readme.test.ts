import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The README's library example runs as written (its `from "mmntp"` pointed at this checkout's
 * src/index.ts), and prints what its comments say it prints.
 */
const ROOT = new URL("..", import.meta.url).pathname;

describe("README", () => {
  it("the library example runs and prints what its comments say", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('from "mmntp"'));
    expect(block, "a ```ts block importing from \"mmntp\"").toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), "mmntp-readme-"));
    try {
      const file = join(dir, "example.mts");
      writeFileSync(file, block!.replace('from "mmntp"', `from ${JSON.stringify(join(ROOT, "src/index.ts"))}`));
      const r = spawnSync(process.execPath, ["--import", "tsx", file], { cwd: ROOT, encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      // Each `console.log(…); // text` prints `text` up to its first colon (the rest is explanation).
      const expected = [...block!.matchAll(/console\.log\(.*\); \/\/ ([^:\n]+)/g)].map((m) => m[1]!.trim());
      expect(expected.length).toBeGreaterThan(0);
      expect(r.stdout.trim().split("\n")).toEqual(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
