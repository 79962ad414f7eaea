/**
 * Checkpoints on disk: `<dir>/<name>.safetensors` (tensors) + `<dir>/<name>.json` (config),
 * each written atomically, and dotted-name flattening of nested params trees.
 *
 * This file knows nothing about jax-js: the model code turns its params into TensorRecords
 * (`flattenTree(params)`, then `await arr.data()` per leaf) and back.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { decodeSafetensors, encodeSafetensors, type DType, type TensorRecord } from "./safetensors.ts";

/** Write `bytes` to `path` atomically: a temp file in the same folder, fsync, then rename over `path`. */
export function writeAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  try {
    const fd = openSync(tmp, "w");
    try {
      const buf = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
      for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
}

// Make the rename itself durable. Some platforms (Windows) cannot open a directory; skip there.
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, "r");
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // fsync on a directory is unsupported on some file systems; the rename is still atomic.
  } finally {
    closeSync(fd);
  }
}

export type Checkpoint = {
  tensors: Readonly<Record<string, TensorRecord>>;
  config: object;
  metadata?: Readonly<Record<string, string>>;
};

/**
 * Write `<dir>/<name>.safetensors` then `<dir>/<name>.json`, each atomically (creating `dir`).
 * A crash can leave new tensors beside an old config, never a half-written file.
 */
export function saveCheckpoint(dir: string, name: string, { tensors, config, metadata }: Checkpoint): void {
  mkdirSync(dir, { recursive: true });
  writeAtomic(join(dir, `${name}.safetensors`), encodeSafetensors(tensors, { format: "mmntp", name, ...metadata }));
  writeAtomic(join(dir, `${name}.json`), `${JSON.stringify(config, null, 2)}\n`);
}

/** What a loader expects of each tensor; `dtype` is checked only when given. */
export type TensorExpectation = { shape: readonly number[]; dtype?: DType };

/**
 * Read a checkpoint written by `saveCheckpoint`. With `expect`, every expected tensor must be
 * present with that shape (and dtype), no other tensor may be in the file, and `tensors` come
 * back in `expect`'s key order (otherwise in sorted-name order).
 */
export function loadCheckpoint(
  dir: string,
  name: string,
  opts: { expect?: Readonly<Record<string, TensorExpectation>> } = {},
): { tensors: Record<string, TensorRecord>; config: unknown; metadata: Record<string, string> } {
  const file = join(dir, `${name}.safetensors`);
  if (!existsSync(file)) throw new Error(`no checkpoint at ${file}; run \`mmntp demo\` first or pass --run <dir>`);
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(new Uint8Array(readFileSync(file)));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  let tensors = decoded.tensors;
  if (opts.expect) {
    checkExpected(file, tensors, opts.expect);
    // In the caller's order, so unflattenTree rebuilds a tree whose key order (and so its jax-js
    // treedef) matches the model's, not the file's sorted order.
    tensors = Object.fromEntries(Object.keys(opts.expect).map((k) => [k, decoded.tensors[k]]));
  }

  const configFile = join(dir, `${name}.json`);
  if (!existsSync(configFile)) throw new Error(`checkpoint ${file} has no config: ${configFile} is missing`);
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(configFile, "utf8"));
  } catch (e) {
    throw new Error(`${configFile}: invalid JSON: ${(e as Error).message}`);
  }
  return { tensors, config, metadata: decoded.metadata };
}

function checkExpected(file: string, tensors: Record<string, TensorRecord>, expect: Readonly<Record<string, TensorExpectation>>): void {
  const problems: string[] = [];
  for (const [key, want] of Object.entries(expect)) {
    const t = tensors[key];
    if (!t) problems.push(`missing tensor "${key}"`);
    else if (t.shape.join(",") !== want.shape.join(",")) problems.push(`tensor "${key}" has shape [${t.shape}], expected [${want.shape}]`);
    else if (want.dtype && t.dtype !== want.dtype) problems.push(`tensor "${key}" has dtype ${t.dtype}, expected ${want.dtype}`);
  }
  for (const key of Object.keys(tensors)) if (!Object.hasOwn(expect, key)) problems.push(`unexpected tensor "${key}"`);
  if (problems.length === 0) return;
  const shown = problems.length > 8 ? [...problems.slice(0, 8), `… and ${problems.length - 8} more`] : problems;
  throw new Error(`${file} does not fit the model: ${shown.join("; ")}`);
}

/** A nested params object: leaves inside plain objects and arrays. */
export type Tree<L> = L | readonly Tree<L>[] | { readonly [key: string]: Tree<L> | undefined };

const isBranch = (x: unknown): x is Record<string, unknown> =>
  Array.isArray(x) || (typeof x === "object" && x !== null && [Object.prototype, null].includes(Object.getPrototypeOf(x)));

/**
 * Nested params → dotted names, e.g. `{blocks: [{attn: {qkv: {w}}}]}` → `{"blocks.0.attn.qkv.w": w}`.
 * Leaves are everything except arrays and plain objects (pass `isLeaf` to stop earlier, e.g. at
 * TensorRecords); `undefined` values (absent optional params) are skipped.
 */
export function flattenTree<L>(tree: Tree<L>, isLeaf: (x: unknown) => boolean = (x) => !isBranch(x)): Record<string, L> {
  const out: Record<string, L> = {};
  const walk = (node: unknown, prefix: string) => {
    if (node === undefined) return;
    if (isLeaf(node) || !isBranch(node)) {
      if (prefix === "") throw new Error("flattenTree: the root must be an object or an array, got a leaf");
      out[prefix] = node as L;
      return;
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === "" || k.includes(".")) throw new Error(`flattenTree: key ${JSON.stringify(k)} under "${prefix}" cannot be part of a dotted name`);
      walk(v, prefix ? `${prefix}.${k}` : k);
    }
  };
  walk(tree, "");
  return out;
}

/** Dotted names → nested objects; a level whose keys are exactly 0..n-1 becomes a JS array. */
export function unflattenTree<L>(flat: Readonly<Record<string, L>>): Tree<L> {
  type Node = { [key: string]: Node | L };
  const root: Node = {};
  const isNode = new Set<Node>([root]);
  for (const [name, leaf] of Object.entries(flat)) {
    const parts = name.split(".");
    if (parts.some((p) => p === "")) throw new Error(`unflattenTree: bad name ${JSON.stringify(name)}`);
    let node = root;
    parts.slice(0, -1).forEach((p, i) => {
      if (!Object.hasOwn(node, p)) {
        const child: Node = {};
        isNode.add(child);
        node[p] = child;
      }
      const next = node[p];
      if (!isNode.has(next as Node)) throw new Error(`unflattenTree: "${parts.slice(0, i + 1).join(".")}" is both a leaf and a branch (via "${name}")`);
      node = next as Node;
    });
    const last = parts[parts.length - 1];
    if (Object.hasOwn(node, last)) throw new Error(`unflattenTree: "${name}" is both a leaf and a branch`);
    node[last] = leaf;
  }
  const arrays = (x: Node | L): Tree<L> => {
    if (!isNode.has(x as Node)) return x as L;
    const entries = Object.entries(x as Node);
    const mapped = entries.map(([k, v]) => [k, arrays(v)] as const);
    const isList = entries.length > 0 && entries.every(([k]) => /^(0|[1-9]\d*)$/.test(k) && Number(k) < entries.length);
    if (!isList) return Object.fromEntries(mapped);
    const list: Tree<L>[] = [];
    for (const [k, v] of mapped) list[Number(k)] = v;
    return list;
  };
  return arrays(root);
}
