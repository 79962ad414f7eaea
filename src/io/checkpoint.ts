import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { basename, join } from "node:path";
import { fromHost, tree, type Array, type JsTree } from "../engine/index.ts";
import { decodeSafetensors, encodeSafetensors, type TensorRecord } from "./safetensors.ts";

/** Write `bytes` to `path` atomically: a temp file in the same folder, fsync, then rename. */
export function writeAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, typeof bytes === "string" ? Buffer.from(bytes) : bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

const isLeaf = (o: unknown) => !o || typeof o !== "object" || "shape" in (o as object);

/** Nested params → dotted names ("blocks.0.attn.qkv.w"), in key order. */
export function flattenTree<T>(obj: JsTree<T>, prefix = "", out: Record<string, T> = {}): Record<string, T> {
  if (isLeaf(obj)) out[prefix] = obj as T;
  else for (const [k, v] of Object.entries(obj as object)) flattenTree(v as JsTree<T>, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

/** The same structure as `like`, with each leaf replaced by `leafFor(dotted name, old leaf)`. */
function mapNamed<T, U>(like: JsTree<T>, leafFor: (name: string, leaf: T) => U, prefix = ""): JsTree<U> {
  if (isLeaf(like)) return leafFor(prefix, like as T) as JsTree<U>;
  const entries = Object.entries(like as object).map(([k, v]) => [k, mapNamed(v as JsTree<T>, leafFor, prefix ? `${prefix}.${k}` : k)]);
  return (globalThis.Array.isArray(like) ? entries.map(([, v]) => v) : Object.fromEntries(entries)) as JsTree<U>;
}

/** Save a params tree (+ JSON config) as `<dir>/<name>.safetensors` and `<dir>/<name>.json`. */
export async function saveCheckpoint(dir: string, name: string, params: JsTree<Array>, config: object): Promise<void> {
  const tensors: Record<string, TensorRecord> = {};
  for (const [key, arr] of Object.entries(flattenTree(params))) {
    const data = await arr.ref.data();
    tensors[key] = data instanceof Int32Array ? { dtype: "I32", shape: arr.shape, data } : { dtype: "F32", shape: arr.shape, data: data as Float32Array };
  }
  writeAtomic(join(dir, `${name}.safetensors`), encodeSafetensors(tensors, { format: "mmntp", name }));
  writeAtomic(join(dir, `${name}.json`), JSON.stringify(config, null, 2));
}

/**
 * Load a checkpoint into the structure of `like` (a freshly initialized params tree whose
 * arrays are disposed here), checking every tensor's presence, dtype and shape.
 */
export function loadCheckpoint<P extends JsTree<Array>>(dir: string, name: string, like: P): { params: P; config: unknown } {
  const file = join(dir, `${name}.safetensors`);
  if (!existsSync(file)) throw new Error(`no checkpoint at ${file}; run \`mmntp demo\` first or pass --run <dir>`);
  let tensors: Record<string, TensorRecord>;
  try {
    tensors = decodeSafetensors(new Uint8Array(readFileSync(file))).tensors;
  } catch (e) {
    throw new Error(`${basename(file)}: ${(e as Error).message}`);
  }
  const params = mapNamed(like, (key, arr: Array) => {
    const t = tensors[key];
    if (!t) throw new Error(`${basename(file)}: missing tensor "${key}"`);
    if (t.shape.join(",") !== arr.shape.join(",")) throw new Error(`${basename(file)}: tensor "${key}" has shape [${t.shape}], expected [${arr.shape}]`);
    const wantInt = arr.dtype === "int32";
    if (wantInt !== (t.dtype === "I32")) throw new Error(`${basename(file)}: tensor "${key}" has dtype ${t.dtype}, expected ${wantInt ? "I32" : "F32"}`);
    return fromHost(t.data as Float32Array | Int32Array, t.shape);
  });
  tree.dispose(like);
  const config = JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8"));
  return { params: params as P, config };
}
