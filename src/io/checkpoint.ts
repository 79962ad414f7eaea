/**
 * Checkpoints on disk: `<dir>/<name>.safetensors` (tensors) + `<dir>/<name>.json` (config),
 * each written atomically, and dotted-name flattening of nested params trees.
 *
 * This file knows nothing about jax-js: the model code turns its params into TensorRecords
 * (`flattenTree(params)`, then `await arr.data()` per leaf) and back.
 */
import { accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { InputError, parseJson } from "./errors.ts";
import { decodeSafetensors, encodeSafetensors, fitProblems, refuseMisfit, type TensorExpectation, type TensorRecord } from "./safetensors.ts";

/**
 * Throws unless `path` can be written as a file: its folder exists and is writable, and `path`
 * is absent or a regular file (a rename over a device such as /dev/full, or a folder, would
 * replace it). Call it before long work whose result goes there.
 */
export function checkOutputPath(path: string): void {
  if (existsSync(path)) {
    const st = statSync(path);
    if (!st.isFile()) throw new InputError(`${path} exists and is not a regular file (${st.isDirectory() ? "a folder" : "a device or special file"}); give a file path`);
  }
  const dir = dirname(path);
  if (!existsSync(dir)) throw new InputError(`cannot write ${path}: the folder ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new InputError(`cannot write ${path}: ${dir} is not a folder`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new InputError(`cannot write ${path}: the folder ${dir} is not writable`);
  }
}

/**
 * Before long work: `path` is a writable folder, or can be made one (`mkdir -p`: its nearest
 * existing ancestor is a writable folder).
 */
export function checkOutputFolder(path: string): void {
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new InputError(`${path} exists and is not a folder; give a folder to write into`);
    try {
      accessSync(path, constants.W_OK);
    } catch {
      throw new InputError(`cannot write into ${path}: the folder is not writable`);
    }
    return;
  }
  let up = dirname(path);
  while (!existsSync(up) && dirname(up) !== up) up = dirname(up);
  if (!statSync(up).isDirectory()) throw new InputError(`cannot make the folder ${path}: ${up} is not a folder`);
  try {
    accessSync(up, constants.W_OK);
  } catch {
    throw new InputError(`cannot make the folder ${path}: ${up} is not writable`);
  }
}

/**
 * Write `bytes` to `path` atomically: a temp file in the same folder, fsync, then rename over
 * `path` (the one atomic-write helper of the project; refuses a `path` that is not a regular file).
 */
export function writeAtomic(path: string, bytes: Uint8Array | string): void {
  if (existsSync(path) && !statSync(path).isFile()) throw new InputError(`${path} exists and is not a regular file; refusing to replace it`);
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

/** Make renames in `dir` durable. Some platforms (Windows) cannot open a directory; skipped there. */
export function fsyncDir(dir: string): void {
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

export type { TensorExpectation };

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
  if (!existsSync(file)) throw new InputError(`no checkpoint at ${file}; run \`mmntp demo\` first or pass --run <dir>`);
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(new Uint8Array(readFileSync(file)));
  } catch (e) {
    throw new InputError(`${file}: ${(e as Error).message}`, { file, cause: e });
  }
  let tensors = decoded.tensors;
  if (opts.expect) {
    checkExpected(file, tensors, opts.expect);
    // In the caller's order, so unflattenTree rebuilds a tree whose key order (and so its jax-js
    // treedef) matches the model's, not the file's sorted order.
    tensors = Object.fromEntries(Object.keys(opts.expect).map((k) => [k, decoded.tensors[k]]));
  }

  const configFile = join(dir, `${name}.json`);
  if (!existsSync(configFile)) throw new InputError(`checkpoint ${file} has no config: ${configFile} is missing`);
  const config = parseJson(readFileSync(configFile, "utf8"), configFile);
  return { tensors, config, metadata: decoded.metadata };
}

function checkExpected(file: string, tensors: Record<string, TensorRecord>, expect: Readonly<Record<string, TensorExpectation>>): void {
  refuseMisfit(file, fitProblems(tensors, expect), file);
}

/**
 * The tensors of the safetensors file `file` (its bytes, read here unless given); a refusal of
 * the reader, whose messages name tensors but not files, is rethrown naming `file`.
 */
export function decodeSafetensorsAt(file: string, bytes: Uint8Array = new Uint8Array(readRegularFile(file))): Record<string, TensorRecord> {
  try {
    return decodeSafetensors(bytes).tensors;
  } catch (e) {
    if (!(e instanceof InputError) || e.file === file) throw e;
    throw new InputError(`${file}: ${e.message}`, { file, cause: e });
  }
}

/**
 * A file's bytes: a regular file (a link to /dev/zero would be read forever) of at most
 * `maxBytes` (Node reads at most 2 GiB into one buffer); an InputError naming it otherwise.
 */
export function readRegularFile(file: string, maxBytes = 2 ** 31 - 1): Buffer {
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new InputError(`${file} is not a regular file`, { file });
    if (st.size > maxBytes) throw new InputError(`${file} is ${st.size} bytes, more than the ${maxBytes} it may take`, { file, value: st.size });
    return readFileSync(file);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${file} could not be read: ${(e as Error).message}`, { file, cause: e });
  }
}

export { flattenTree, unflattenTree, type Tree } from "./tree.ts";

/**
 * Write a folder whole into a fresh sibling (`write` fills it), then swap it in with renames: a
 * crash leaves the previous folder (or none) at `dir`, never a mix of two versions' files.
 */
export async function replaceFolder<T>(dir: string, write: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const out = await write(tmp);
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
  fsyncDir(dirname(dir));
  return out;
}

