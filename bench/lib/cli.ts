/** Small pieces every bench's `main` shares. */

/** `x` if it is an integer ≥ `min`, else an error naming the option and the value. */
export function positiveInt(name: string, x: number, min = 1): number {
  if (!Number.isInteger(x) || x < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${x}`);
  return x;
}

/** `--threads 1,2` → [1, 2], each checked by `positiveInt`. */
export const threadList = (text: string): number[] => text.split(",").map((s) => positiveInt("threads", Number(s)));

/** The one JSON object a bench prints on stdout (fields left undefined are omitted). */
export const printReport = (report: object): void => console.log(JSON.stringify(report, null, 2));
