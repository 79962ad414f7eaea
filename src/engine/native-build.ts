/**
 * Where the native GEMM addon lives and how it gets built (no jax-js here, so test setup and
 * scripts can build it without starting the engine).
 *
 * The binary's name hashes its sources (every native/*.c and native/*.h), the compiler flags
 * in scripts/build-native.mjs and the Node version, so an edit to any source file or header,
 * or a new Node, gets a fresh build and a stale binary is never loaded. Builds write a
 * temporary file and rename it, so parallel test workers that race to build the same binary
 * each see either nothing or a complete file.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The addon's C sources and headers (contract.c is the N-API entry point). */
export const NATIVE_DIR = `${ROOT}native/`;
const BUILD_SCRIPT = `${ROOT}scripts/build-native.mjs`;

/**
 * The addon's files, every `native/*.c` and `native/*.h` together, sorted by name (so the .c
 * files come in the order scripts/build-native.mjs compiles them); [] without native/.
 */
export function nativeSources(): string[] {
  if (!existsSync(NATIVE_DIR)) return [];
  return readdirSync(NATIVE_DIR)
    .filter((name) => name.endsWith(".c") || name.endsWith(".h"))
    .sort()
    .map((name) => `${NATIVE_DIR}${name}`);
}

/** `native/build/mmntp_native-<hash>.node` for the current sources, flags and Node. */
export function nativeBinaryPath(): string {
  const flags = readFileSync(BUILD_SCRIPT, "utf8").match(/const FLAGS = (\[.*?\]);/s)?.[1];
  if (flags === undefined) throw new Error(`${BUILD_SCRIPT} has no "const FLAGS = [...]" line to hash`);
  const hash = createHash("sha256");
  for (const file of nativeSources()) {
    // name and length first, so moving text between files or renaming one changes the hash
    const content = readFileSync(file);
    hash.update(`${file.slice(NATIVE_DIR.length)}\0${content.length}\0`).update(content);
  }
  const digest = hash.update(flags).update(process.version).digest("hex");
  return `${ROOT}native/build/mmntp_native-${digest.slice(0, 12)}.node`;
}

/**
 * The addon's path, compiling it first if it is not there (a few seconds, once); or a reason
 * why there is none: no sources (a trimmed install), no compiler or no Node headers.
 */
export function ensureNativeBinary(): { path: string } | { reason: string } {
  if (!nativeSources().some((file) => file.endsWith(".c")) || !existsSync(BUILD_SCRIPT)) return { reason: `no native sources (*.c) in ${NATIVE_DIR}` };
  const path = nativeBinaryPath();
  if (existsSync(path)) return { path };
  const build = spawnSync(process.execPath, [BUILD_SCRIPT, "--if-possible", "--out", path], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (existsSync(path)) return { path };
  const why = `${build.stdout ?? ""}${build.stderr ?? ""}`.trim().split("\n").at(-1);
  return { reason: `could not compile ${NATIVE_DIR}*.c: ${why || `status ${build.status}`}` };
}
