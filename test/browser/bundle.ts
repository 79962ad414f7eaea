/**
 * Bundles an entry for the browser with esbuild and lists every way it reaches Node: a Node
 * built-in (`node:fs`, bare `fs`, …), a native addon (`*.node`), or an import that does not
 * resolve for the browser. Built-ins are kept external and addons loaded as empty modules, so
 * the bundle still completes and its metafile gives the import chain of each offender.
 */
import { isBuiltin } from "node:module";
import { relative } from "node:path";
import { build, type Message, type Metafile, type Plugin } from "esbuild";

export type Offender = { readonly module: string; readonly chain: readonly string[] };
export type BrowserBundle = {
  /** the bundle (ESM), undefined when the build failed */
  readonly code: string | undefined;
  readonly offenders: readonly Offender[];
  /** esbuild errors (e.g. an import that does not resolve), "file:line: text" */
  readonly errors: readonly string[];
  readonly inputs: readonly string[];
};

const keepBuiltinsExternal: Plugin = {
  name: "node-builtins",
  setup(b) {
    b.onResolve({ filter: /^[a-z:_/]+$/ }, (args) => (isBuiltin(args.path) ? { path: args.path, external: true } : undefined));
  },
};

/** Shortest import chain from `entry` to every input (metafile paths), as [entry, …, input]. */
function chainsFrom(entry: string, meta: Metafile): Map<string, string[]> {
  const chains = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const imp of meta.inputs[file]?.imports ?? []) {
      if (imp.external || chains.has(imp.path)) continue;
      chains.set(imp.path, [...chains.get(file)!, imp.path]);
      queue.push(imp.path);
    }
  }
  return chains;
}

const describeMessage = (m: Message) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ""}${m.text}`;

/** Bundle `entry` (a path relative to `cwd`) for `platform: "browser"`, ESM. */
export async function bundleForBrowser(entry: string, cwd: string): Promise<BrowserBundle> {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: cwd,
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    metafile: true,
    write: false,
    logLevel: "silent",
    loader: { ".node": "empty" },
    plugins: [keepBuiltinsExternal],
  }).catch((e: { errors?: Message[] }) => {
    if (!Array.isArray(e.errors)) throw e;
    return { errors: e.errors, metafile: undefined, outputFiles: undefined };
  });
  const meta = result.metafile;
  if (meta === undefined) return { code: undefined, offenders: [], errors: result.errors.map(describeMessage), inputs: [] };
  const entryKey = relative(cwd, `${cwd}/${entry}`);
  const chains = chainsFrom(entryKey, meta);
  const offenders = new Map<string, Offender>(); // one per module and importer
  const add = (module: string, chain: readonly string[]) => offenders.set(`${module}\0${chain.at(-1)}`, { module, chain });
  for (const [file, input] of Object.entries(meta.inputs)) {
    const chain = chains.get(file) ?? [file];
    if (file.endsWith(".node")) add(file, chain.slice(0, -1));
    for (const imp of input.imports) if (imp.external && isBuiltin(imp.path)) add(imp.path, chain);
  }
  return { code: result.outputFiles?.[0]?.text, offenders: [...offenders.values()], errors: result.errors.map(describeMessage), inputs: Object.keys(meta.inputs) };
}

/** One line per importer, for a failure message: "  node:fs, node:path  ←  a.ts ← b.ts ← entry.ts". */
export function formatOffenders(offenders: readonly Offender[]): string {
  const byChain = new Map<string, string[]>();
  for (const o of offenders) {
    const chain = [...o.chain].reverse().join(" ← ");
    byChain.set(chain, [...(byChain.get(chain) ?? []), o.module]);
  }
  return [...byChain].map(([chain, modules]) => `  ${modules.join(", ")}  ←  ${chain}`).join("\n");
}
