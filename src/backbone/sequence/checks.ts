/** Small shared checks for JSON-ish input and the messages that name ranges. */

/** "a..b" (inclusive: the first and last id) or "none" for an empty range. */
export const describeRange = (r: { readonly start: number; readonly end: number }): string => (r.end > r.start ? `${r.start}..${r.end - 1}` : "none");

const typeName = (x: unknown): string => (x === null ? "null" : Array.isArray(x) ? "an array" : typeof x);

export function expectObject(x: unknown, what: string): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) throw new Error(`${what} must be an object, got ${typeName(x)}`);
  return x as Record<string, unknown>;
}

export function expectArray(x: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(x)) throw new Error(`${what} must be an array, got ${typeName(x)}`);
  return x;
}

export function expectString(x: unknown, what: string): string {
  if (typeof x !== "string") throw new Error(`${what} must be a string, got ${typeName(x)} ${JSON.stringify(x)}`);
  return x;
}

export function expectInteger(x: unknown, what: string): number {
  if (typeof x !== "number" || !Number.isInteger(x)) throw new Error(`${what} must be an integer, got ${typeName(x)} ${JSON.stringify(x)}`);
  return x;
}

/** ∏ shape (1 for []). */
export const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
