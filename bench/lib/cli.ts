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
