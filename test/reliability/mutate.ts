/**
 * Mutations for the fuzz tests, as fast-check arbitraries: byte-level edits of any file (flips,
 * overwrites, truncations, insertions, deletions, repeated chunks), rewrites of a format's header
 * fields to boundary values (0, 1, 2³¹ − 1, 2³² − 1, …), and structural edits of JSON (a field
 * replaced by a hostile value, deleted, or added). Each mutation is plain data, so fast-check
 * prints the failing one and shrinks it.
 */
import fc from "fast-check";

export type ByteOp =
  | { readonly kind: "flip"; readonly at: number; readonly bit: number }
  | { readonly kind: "set"; readonly at: number; readonly value: number }
  | { readonly kind: "truncate"; readonly at: number }
  | { readonly kind: "insert"; readonly at: number; readonly bytes: readonly number[] }
  | { readonly kind: "delete"; readonly at: number; readonly length: number }
  | { readonly kind: "repeat"; readonly at: number; readonly length: number; readonly times: number }
  | { readonly kind: "u32"; readonly at: number; readonly value: number; readonly littleEndian: boolean };

/** Values at which size and offset arithmetic breaks: empty, one, the image side, sign and width limits. */
export const BOUNDARY_U32 = [0, 1, 2, 3, 4, 7, 8, 27, 28, 29, 255, 256, 0x7fff, 0x8000, 0xffff, 0x10000, 20000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff] as const;

const u32 = fc.oneof(fc.constantFrom(...BOUNDARY_U32), fc.nat({ max: 0xffffffff }));
/** Positions are drawn large and taken modulo the file's length, so one op fits every file. */
const at = fc.nat();

const byteOp: fc.Arbitrary<ByteOp> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at, bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant("set" as const), at, value: fc.oneof(fc.constantFrom(0, 0x7f, 0x80, 0xff), fc.nat({ max: 255 })) }),
  fc.record({ kind: fc.constant("truncate" as const), at }),
  fc.record({ kind: fc.constant("insert" as const), at, bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant("delete" as const), at, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant("repeat" as const), at, length: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant("u32" as const), at, value: u32, littleEndian: fc.boolean() }),
);

/** One to four byte edits anywhere in the file. */
export const byteOps = fc.array(byteOp, { minLength: 1, maxLength: 4 });

/** A 4-byte field at one of `offsets` (a format's header fields) rewritten to a boundary value. */
export const fieldRewrite = (offsets: readonly number[], littleEndian: boolean): fc.Arbitrary<ByteOp> =>
  fc.record({ kind: fc.constant("u32" as const), at: fc.constantFrom(...offsets), value: u32, littleEndian: fc.constant(littleEndian) });

export function applyByteOps(input: Uint8Array, ops: readonly ByteOp[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(input);
  for (const op of ops) {
    const i = b.length === 0 ? 0 : op.at % (b.length + (op.kind === "insert" || op.kind === "truncate" ? 1 : 0));
    switch (op.kind) {
      case "flip":
        if (b.length > 0) b[i] = b[i]! ^ (1 << op.bit);
        break;
      case "set":
        if (b.length > 0) b[i] = op.value;
        break;
      case "truncate":
        b = b.slice(0, i);
        break;
      case "insert":
        b = concat(b.subarray(0, i), Uint8Array.from(op.bytes), b.subarray(i));
        break;
      case "delete":
        b = concat(b.subarray(0, i), b.subarray(i + op.length));
        break;
      case "repeat": {
        const chunk = b.subarray(i, i + op.length);
        b = concat(b.subarray(0, i), ...Array.from({ length: op.times + 1 }, () => chunk), b.subarray(i + op.length));
        break;
      }
      case "u32":
        if (b.length >= 4) new DataView(b.buffer).setUint32(Math.min(i, b.length - 4), op.value, op.littleEndian);
        break;
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

// ---- JSON ----

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const DEEP = "<20,000 nested arrays>";
const LONG = "<a 200,000-character string>";
/** The markers written out: as text, since JSON.stringify itself overflows on 20,000 levels. */
const expand = (text: string) => text.replaceAll(JSON.stringify(DEEP), `${"[".repeat(20_000)}1${"]".repeat(20_000)}`).replaceAll(JSON.stringify(LONG), JSON.stringify("w".repeat(200_000)));

/** Values a validator must refuse (or accept) cleanly wherever they land. */
const hostile: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Json>(null, true, false, 0, -1, -5, 1, 2, 1.5, 0.1, 1e9, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53, "", "x", "__proto__", "constructor", [], {}, [1e9, 1e9], JSON.parse('{"__proto__": 1}') as Json, "1e9", "NaN") },
  // Named, and built only when applied, so fast-check can print a failing input.
  { weight: 2, arbitrary: fc.constantFrom<Json>(DEEP, LONG) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json> },
);

export type JsonOp =
  | { readonly kind: "replace"; readonly pick: number; readonly value: Json }
  | { readonly kind: "delete"; readonly pick: number }
  | { readonly kind: "add"; readonly pick: number; readonly key: string; readonly value: Json };

const jsonOp: fc.Arbitrary<JsonOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("replace" as const), pick: fc.nat(), value: hostile }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("add" as const), pick: fc.nat(), key: fc.oneof(fc.constantFrom("__proto__", "constructor", "layers", "dim", "extra"), fc.string({ maxLength: 6 })), value: hostile }) },
);

/** One to three structural edits of a JSON document. */
export const jsonOps = fc.array(jsonOp, { minLength: 1, maxLength: 3 });

/** Every value's path in `doc`, the root first. */
function paths(doc: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(doc)) doc.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (typeof doc === "object" && doc !== null) for (const [k, v] of Object.entries(doc)) out.push(...paths(v, [...prefix, k]));
  return out;
}

const own = (o: object, k: string | number, v: unknown) => Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });

/** `text` (a JSON document) with `ops` applied; keys are set as own properties, "__proto__" too. */
export function applyJsonOps(text: string, ops: readonly JsonOp[]): string {
  let doc = JSON.parse(text) as Json;
  for (const op of ops) {
    const all = paths(doc);
    const path = all[op.pick % all.length]!;
    const value = op.kind === "delete" ? null : op.value;
    if (path.length === 0) {
      if (op.kind === "replace") doc = value;
      continue;
    }
    let parent = doc as Record<string | number, Json>;
    for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, Json>;
    const last = path[path.length - 1]!;
    if (op.kind === "replace") own(parent, last, value);
    else if (op.kind === "delete") Array.isArray(parent) ? parent.splice(Number(last), 1) : delete parent[last];
    else {
      const target = parent[last];
      if (typeof target === "object" && target !== null && !Array.isArray(target)) own(target, op.key, value);
      else if (Array.isArray(target)) target.push(value);
    }
  }
  return expand(JSON.stringify(doc, null, 2));
}

/** Tallies outcomes by kind for the figures in docs/reliability.md (printed with MMNTP_FUZZ_REPORT=1). */
export class Tally {
  readonly counts = new Map<string, number>();
  slowestMs = 0;
  add(outcome: string, ms: number): void {
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
    this.slowestMs = Math.max(this.slowestMs, ms);
  }
  get total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }
  report(name: string): void {
    if (process.env.MMNTP_FUZZ_REPORT !== "1") return;
    const parts = [...this.counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
    console.log(`fuzz ${name}: ${this.total} inputs; ${parts.join(", ")}; slowest ${this.slowestMs.toFixed(0)} ms`);
  }
}
