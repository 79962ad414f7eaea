#!/usr/bin/env node
// Build the native GEMM addon: native/*.c -> native/build/mmntp_native.node.
// Plain Node, no dependencies, no node-gyp: one `cc` call against Node's own headers.
// The engine runs this itself on first use (src/engine/native-build.ts, with --out set to a
// name that hashes the sources and FLAGS), so running it by hand is only needed for experiments.
//
//   node scripts/build-native.mjs [--if-possible] [--out FILE] [--help]
//
// --if-possible: when no compiler or no Node headers are found, say so and exit 0, so an
// install step can try the build without failing on machines that cannot do it.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const USAGE = `usage: node scripts/build-native.mjs [--if-possible] [--out FILE] [--help]
  Compiles every native/*.c (sorted, one cc call; native/*.h are their headers) into
  native/build/mmntp_native.node (or FILE) with
  cc -O3 -march=native -shared -fPIC -pthread -Wall -I<node headers>.
  --if-possible  exit 0 (after one line saying what is missing) when there is
                 no C compiler or no Node headers, instead of exit 1.
  --out FILE     where to write the addon.
  Environment: CC picks the compiler (default cc).`;

// Compiler flags; src/engine/native-build.ts hashes this line into the binary's name.
const FLAGS = ["-O3", "-march=native", "-shared", "-fPIC", "-pthread", "-Wall"];

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(USAGE);
  process.exit(0);
}
const outAt = args.indexOf("--out");
if (outAt >= 0 && (args[outAt + 1] === undefined || args[outAt + 1].startsWith("--"))) {
  console.error(`build-native: --out needs a file name\n${USAGE}`);
  process.exit(1);
}
const unknown = args.filter((a, i) => a !== "--if-possible" && i !== outAt && i !== outAt + 1);
if (unknown.length > 0) {
  console.error(`build-native: unknown argument ${unknown.join(" ")}\n${USAGE}`);
  process.exit(1);
}
const ifPossible = args.includes("--if-possible");

/** Report something the build needs but cannot find; exits (0 under --if-possible). */
function missing(what) {
  console.error(`build-native: ${what}; native GEMM not built${ifPossible ? " (skipped)" : ""}`);
  process.exit(ifPossible ? 0 : 1);
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// Every C file, sorted so the command line (and the binary) does not depend on readdir order.
const nativeDir = path.join(root, "native");
const sources = existsSync(nativeDir)
  ? readdirSync(nativeDir).filter((f) => f.endsWith(".c")).sort().map((f) => path.join(nativeDir, f))
  : [];
if (sources.length === 0) missing(`no C sources in ${nativeDir}`);
const output = outAt >= 0 ? path.resolve(args[outAt + 1]) : path.join(root, "native", "build", "mmntp_native.node");
const outDir = path.dirname(output);

// Node's headers: next to the running binary (official tarballs and distro packages put
// them in <prefix>/include/node), else where npm says the Node sources are.
const headerDirs = [path.resolve(process.execPath, "../../include/node")];
if (process.env.npm_config_nodedir) headerDirs.push(path.join(process.env.npm_config_nodedir, "include", "node"));
const headers = headerDirs.find((d) => existsSync(path.join(d, "node_api.h")));
if (!headers) missing(`no Node headers (node_api.h) in ${headerDirs.join(" or ")}`);

const cc = process.env.CC || "cc";
const probe = spawnSync(cc, ["--version"], { encoding: "utf8" });
if (probe.error || probe.status !== 0) missing(`no C compiler (${cc} --version failed)`);

mkdirSync(outDir, { recursive: true });
// Compile to a temporary name and rename: a process loading the addon never sees half a file.
const temp = `${output}.${process.pid}.tmp`;
const ccArgs = [...FLAGS, `-I${headers}`, "-o", temp, ...sources];
console.log(`build-native: ${cc} ${ccArgs.join(" ")}`);
const t0 = performance.now();
const run = spawnSync(cc, ccArgs, { stdio: "inherit" });
const seconds = ((performance.now() - t0) / 1000).toFixed(2);
if (run.error || run.status !== 0) {
  rmSync(temp, { force: true });
  console.error(`build-native: compile failed after ${seconds} s (${run.error?.message ?? `exit ${run.status}`})`);
  process.exit(1);
}
renameSync(temp, output);
console.log(`build-native: wrote ${path.relative(root, output)} in ${seconds} s`);
