import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * Layering (STYLE.md, principle 11): a module imports only from its own room or a room below it,
 *   cli → pipelines / experiments → generate / train / eval → backbone → tokenizers → nn → engine → io / data,
 * and no file imports itself through a cycle. Type-only imports count: a type from a room above
 * is a piece in the wrong room.
 */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");
const RANK: Record<string, number> = { data: 0, io: 0, engine: 1, nn: 2, tokenizers: 3, backbone: 4, generate: 5, train: 5, eval: 5, pipelines: 6, experiments: 6, cli: 7, "(root)": 8 };

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith(".ts") ? [path] : [];
  });
}

/** Relative imports of a file (static, dynamic and `export … from`), resolved to paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specs = [...text.matchAll(/(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|import\s+["']([^"']+)["']/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
  return specs.filter((s) => s.startsWith(".")).map((s) => resolve(dirname(file), s));
}

const roomOf = (file: string) => {
  const parts = relative(SRC, file).split("/");
  return parts.length === 1 ? "(root)" : parts[0]!;
};

/** "a (room) imports b (room)" for every import that goes up a room. */
function upwardImports(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const bad: string[] = [];
  for (const [file, deps] of graph) {
    for (const dep of deps) {
      const [from, to] = [roomOf(file), roomOf(dep)];
      if (RANK[to]! > RANK[from]!) bad.push(`${relative(SRC, file)} (${from}) imports ${relative(SRC, dep)} (${to})`);
    }
  }
  return bad;
}

/** Every import cycle found by a depth-first walk, as "a → b → a". */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const state = new Map<string, "open" | "done">();
  const found: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "open") {
      found.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(" → "));
      return;
    }
    state.set(f, "open");
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, "done");
  };
  for (const f of graph.keys()) visit(f, []);
  return found;
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe("src/ layering", () => {
  it("knows every room", () => {
    const unknown = [...new Set(files.map(roomOf))].filter((r) => !(r in RANK));
    expect(unknown, `rooms without a rank in this test: ${unknown.join(", ")}`).toEqual([]);
  });

  it("imports only downward (or within a room)", () => {
    const bad = upwardImports(graph);
    expect(bad, `upward imports:\n${bad.join("\n")}`).toEqual([]);
  });

  it("has no import cycles", () => {
    const found = cycles(graph);
    expect(found, `cycles:\n${found.join("\n")}`).toEqual([]);
  });

  it("the checks see an upward import and a cycle, and the parser finds every import form", () => {
    const [a, b, c] = [join(SRC, "engine/a.ts"), join(SRC, "cli/b.ts"), join(SRC, "nn/c.ts")];
    const fake = new Map([
      [a, [b]],
      [b, [a]],
      [c, [a]],
    ]);
    expect(upwardImports(fake)).toEqual(["engine/a.ts (engine) imports cli/b.ts (cli)"]);
    expect(cycles(fake)).toEqual(["engine/a.ts → cli/b.ts → engine/a.ts"]);
    // src/index.ts uses `export … from`; cli/commands.ts dynamic imports: both forms must be seen.
    expect(importsOf(join(SRC, "cli/commands.ts")).map((f) => relative(SRC, f))).toEqual(expect.arrayContaining(["cli/args.ts", "pipelines/demo.ts", "engine/node.ts"]));
    expect(importsOf(join(SRC, "engine/node.ts")).map((f) => relative(SRC, f))).toEqual(expect.arrayContaining(["engine/node-preload.ts", "engine/index.ts", "engine/memory.ts"]));
  });
});
