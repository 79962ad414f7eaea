/** Small pieces every bench's `main` shares. */
import { parseArgs, type ArgSpec, type ArgValues } from "../../src/cli/args.ts";

/** This process's options parsed against a bench's spec, or undefined after printing `--help`. */
export function benchArgs<const S extends ArgSpec>(spec: S): ArgValues<S> | undefined {
  const parsed = parseArgs(process.argv.slice(2), spec);
  if (parsed.kind === "help") {
    console.log(parsed.text);
    return undefined;
  }
  return parsed.values;
}

/** `x` if it is an integer ≥ `min`, else an error naming the option and the value. */
export function positiveInt(name: string, x: number, min = 1): number {
  if (!Number.isInteger(x) || x < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${x}`);
  return x;
}

/** `--threads 1,2` → [1, 2], each checked by `positiveInt`. */
export const threadList = (text: string): number[] => text.split(",").map((s) => positiveInt("threads", Number(s)));

/** The one JSON object a bench prints on stdout (fields left undefined are omitted). */
export const printReport = (report: object): void => console.log(JSON.stringify(report, null, 2));

/** The engines a bench can compare: jax-js's wasm kernels alone, or with matmuls on the native GEMM. */
export type EngineName = "wasm" | "native";
/** What a child's environment must say to run each engine (src/engine/native.ts reads it). */
export const ENGINE_ENV: Readonly<Record<EngineName, Readonly<Record<string, string>>>> = { wasm: { MMNTP_NATIVE: "0" }, native: { MMNTP_NATIVE: "1" } };

/** `--engines wasm,native` → ["wasm", "native"]; anything else is an error naming the value. */
export function engineList(text: string): EngineName[] {
  return text.split(",").map((s) => {
    if (s !== "wasm" && s !== "native") throw new Error(`--engines takes wasm and/or native, comma-separated; got "${s}"`);
    return s;
  });
}
