import type { Array } from "../engine/index.ts";

/** Format a shape as `[2, 3, 4]` for error messages. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Throw unless `x` has `rank` dims and its last dim is `dim` (the usual layer input check). */
export function expectLastDim(x: Array, dim: number, what: string, minRank = 1): void {
  const s = x.shape;
  if (s.length < minRank || s[s.length - 1] !== dim) {
    throw new Error(`${what}: expected input [..., ${dim}] (rank ≥ ${minRank}), got ${fmt(s)}`);
  }
}

/** Throw unless `x.shape` equals `shape`; `-1` in `shape` matches any size. */
export function expectShape(x: Array, shape: readonly number[], what: string): void {
  const s = x.shape;
  const ok = s.length === shape.length && shape.every((d, i) => d === -1 || d === s[i]);
  if (!ok) throw new Error(`${what}: expected shape ${fmt(shape.map((d) => (d === -1 ? "*" : d)) as never)}, got ${fmt(s)}`);
}
