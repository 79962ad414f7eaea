/**
 * Where the native GEMM addon lives and how it gets built (no jax-js here, so test setup and
 * scripts can build it without starting the engine).
 *
 * The binary's name hashes its source, the compiler flags in scripts/build-native.mjs and the
 * Node version, so an edited source or a new Node gets a fresh build and a stale binary is
 * never loaded. Builds write a temporary file and rename it, so parallel test workers that
 * race to build the same binary each see either nothing or a complete file.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const NATIVE_SOURCE = `${ROOT}native/contract.c`;
const BUILD_SCRIPT = `${ROOT}scripts/build-native.mjs`;

/** `native/build/mmntp_native-<hash>.node` for the current source, flags and Node. */
export function nativeBinaryPath(): string {
  const flags = readFileSync(BUILD_SCRIPT, "utf8").match(/const FLAGS = (\[.*?\]);/s)?.[1];
  if (flags === undefined) throw new Error(`${BUILD_SCRIPT} has no "const FLAGS = [...]" line to hash`);
  const hash = createHash("sha256").update(readFileSync(NATIVE_SOURCE)).update(flags).update(process.version).digest("hex");
  return `${ROOT}native/build/mmntp_native-${hash.slice(0, 12)}.node`;
}

/**
 * The addon's path, compiling it first if it is not there (a few seconds, once); or a reason
 * why there is none: no source (a trimmed install), no compiler or no Node headers.
 */
export function ensureNativeBinary(): { path: string } | { reason: string } {
  if (!existsSync(NATIVE_SOURCE) || !existsSync(BUILD_SCRIPT)) return { reason: `no native source at ${NATIVE_SOURCE}` };
  const path = nativeBinaryPath();
  if (existsSync(path)) return { path };
  const build = spawnSync(process.execPath, [BUILD_SCRIPT, "--if-possible", "--out", path], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (existsSync(path)) return { path };
  const why = `${build.stdout ?? ""}${build.stderr ?? ""}`.trim().split("\n").at(-1);
  return { reason: `could not compile ${NATIVE_SOURCE}: ${why || `status ${build.status}`}` };
}
