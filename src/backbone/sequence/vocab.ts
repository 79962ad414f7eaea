/**
 * The joint vocabulary of a multimodal run: one id space, one softmax, for the text tokenizer,
 * named special tokens and the codes of every discrete tokenizer (early fusion, as in Chameleon,
 * Chameleon Team 2024, §2.1, and Emu3, Wang et al. 2024, §2.2). Default layout:
 *   [0, text.size)                 text tokenizer ids (its own pad, unk, words)
 *   text.size + [0, S)             the S specials, in the given order
 *   modality k: [offset, +size)    its codes; offset defaults to the end of the previous range
 * Explicit offsets may leave gaps (ids in a gap belong to nothing and are rejected everywhere),
 * e.g. to keep a pretrained checkpoint's id assignment. Pure host code (no engine, no `node:`).
 */
import { describeRange, expectArray, expectInteger, expectObject, expectString } from "./checks.ts";

export type ModalitySpec = {
  readonly name: string;
  /** number of codes of the modality's tokenizer (local codes 0..size−1) */
  readonly size: number;
  /** special opening a block of this modality, e.g. "<boi>"; begin and end go together */
  readonly begin?: string;
  readonly end?: string;
  /** special ending each row of a 2-D block (Emu3's end-of-line token) */
  readonly lineBreak?: string;
  /** explicit first joint id; default: packed after the previous range */
  readonly offset?: number;
};

export type VocabSpec = {
  readonly text: { readonly size: number; readonly pad: number };
  readonly specials: readonly string[];
  readonly modalities: readonly ModalitySpec[];
  /** specials that stand for continuous placeholder slots, e.g. "<image>" (LLaVA) */
  readonly placeholders?: readonly string[];
};

/** A modality with its offset resolved. */
export type Modality = ModalitySpec & { readonly offset: number };

/** `toJSON()`'s form: every offset explicit, so `fromJSON` rebuilds the same ids. */
export type VocabJSON = {
  readonly text: { readonly size: number; readonly pad: number };
  readonly specials: readonly string[];
  readonly modalities: readonly Modality[];
  readonly placeholders: readonly string[];
};

/** Joint ids [start, end). */
export type IdRange = { readonly start: number; readonly end: number };

/** What a special token means to the sequence compiler and parser. */
export type SpecialRole =
  | { readonly kind: "plain" }
  | { readonly kind: "begin" | "end"; readonly modality: string }
  | { readonly kind: "lineBreak"; readonly modalities: readonly string[] }
  | { readonly kind: "placeholder" };

/** Tokens a decoding step may choose: whole modalities ("text" = text ids except pad), specials, single ids. */
export type Constraint = { readonly modalities?: readonly string[]; readonly specials?: readonly string[]; readonly ids?: readonly number[] };

const RESERVED = ["text", "special"];

export class JointVocab {
  readonly textSize: number;
  readonly padId: number;
  /** V: one past the largest id in any range. */
  readonly size: number;
  readonly specials: readonly string[];
  readonly placeholders: readonly string[];
  readonly modalities: readonly Modality[];
  readonly #specialIds = new Map<string, number>();
  readonly #byName = new Map<string, Modality>();
  readonly #roles = new Map<string, SpecialRole>();
  readonly #masks = new Map<string, Float32Array>();

  private constructor(spec: VocabJSON) {
    this.textSize = spec.text.size;
    this.padId = spec.text.pad;
    this.specials = [...spec.specials];
    this.placeholders = [...spec.placeholders];
    this.modalities = spec.modalities.map((m) => ({ ...m }));
    this.specials.forEach((s, i) => this.#specialIds.set(s, this.textSize + i));
    for (const m of this.modalities) this.#byName.set(m.name, m);
    this.size = Math.max(this.textSize + this.specials.length, ...this.modalities.map((m) => m.offset + m.size));
    for (const s of this.specials) this.#roles.set(s, { kind: "plain" });
    for (const p of this.placeholders) this.#roles.set(p, { kind: "placeholder" });
    for (const m of this.modalities) {
      if (m.begin !== undefined) this.#roles.set(m.begin, { kind: "begin", modality: m.name });
      if (m.end !== undefined) this.#roles.set(m.end, { kind: "end", modality: m.name });
    }
    for (const m of this.modalities) {
      if (m.lineBreak === undefined) continue;
      const r = this.#roles.get(m.lineBreak);
      const shared = r?.kind === "lineBreak" ? r.modalities : [];
      this.#roles.set(m.lineBreak, { kind: "lineBreak", modalities: [...shared, m.name] });
    }
  }

  /** Validates `spec` (see the errors below) and resolves default offsets. */
  static build(spec: VocabSpec): JointVocab {
    const { text, specials, modalities } = spec;
    const placeholders = spec.placeholders ?? [];
    positiveInteger(text.size, "text.size");
    if (!Number.isInteger(text.pad) || text.pad < 0 || text.pad >= text.size) throw new Error(`text.pad ${text.pad} must be a text id in [0, ${text.size - 1}]`);
    const seen = new Set<string>();
    for (const s of specials) {
      if (typeof s !== "string" || s.length === 0) throw new Error(`special ${JSON.stringify(s)} must be a non-empty string`);
      if (seen.has(s)) throw new Error(`special "${s}" is listed twice in specials`);
      seen.add(s);
    }
    const need = (name: string | undefined, what: string) => {
      if (name !== undefined && !seen.has(name)) throw new Error(`${what} "${name}" is not listed in specials (${specials.map((s) => `"${s}"`).join(", ") || "none"})`);
    };
    placeholders.forEach((p) => need(p, "placeholder token"));
    if (new Set(placeholders).size !== placeholders.length) throw new Error(`placeholders list a token twice: ${JSON.stringify(placeholders)}`);
    // begin, end and placeholder tokens each have one meaning, so `parseSequence` can read them back;
    // a line break only has meaning inside a block, so modalities may share one.
    const owner = new Map<string, string>(placeholders.map((p) => [p, "a placeholder token"]));
    const claim = (token: string | undefined, role: string) => {
      if (token === undefined) return;
      const prev = owner.get(token);
      if (prev !== undefined) throw new Error(`special "${token}" cannot be both ${prev} and ${role}`);
      owner.set(token, role);
    };
    const resolved: Modality[] = [];
    const names = new Set<string>();
    let next = text.size + specials.length;
    for (const m of modalities) {
      if (typeof m.name !== "string" || m.name.length === 0) throw new Error(`modality name ${JSON.stringify(m.name)} must be a non-empty string`);
      if (RESERVED.includes(m.name)) throw new Error(`a modality cannot be named "${m.name}" (reserved: "text", "special")`);
      if (names.has(m.name)) throw new Error(`modality "${m.name}" is listed twice`);
      names.add(m.name);
      positiveInteger(m.size, `modality "${m.name}" size`);
      if ((m.begin === undefined) !== (m.end === undefined)) throw new Error(`modality "${m.name}" has ${m.begin !== undefined ? `begin "${m.begin}" but no end` : `end "${m.end}" but no begin`}: give both markers or neither`);
      need(m.begin, `modality "${m.name}" begin marker`);
      need(m.end, `modality "${m.name}" end marker`);
      need(m.lineBreak, `modality "${m.name}" line break`);
      claim(m.begin, `the begin marker of "${m.name}"`);
      claim(m.end, `the end marker of "${m.name}"`);
      const offset = m.offset ?? next;
      if (!Number.isInteger(offset) || offset < 0) throw new Error(`modality "${m.name}" offset ${offset} must be a non-negative integer`);
      resolved.push({ ...m, offset });
      next = offset + m.size;
    }
    for (const m of resolved) {
      if (m.lineBreak === undefined) continue;
      const prev = owner.get(m.lineBreak);
      if (prev !== undefined) throw new Error(`special "${m.lineBreak}" cannot be both ${prev} and the line break of "${m.name}"`);
    }
    checkOverlaps(text.size, specials.length, resolved);
    return new JointVocab({ text: { size: text.size, pad: text.pad }, specials, modalities: resolved, placeholders });
  }

  /** Rebuilds a vocabulary from `toJSON()`'s output, checking every field's type first. */
  static fromJSON(json: unknown): JointVocab {
    const o = expectObject(json, "vocab JSON");
    const text = expectObject(o.text, "vocab JSON text");
    const modalities = expectArray(o.modalities, "vocab JSON modalities").map((x, i): Modality => {
      const m = expectObject(x, `vocab JSON modalities[${i}]`);
      const opt = (k: string) => (m[k] === undefined ? undefined : expectString(m[k], `vocab JSON modalities[${i}].${k}`));
      const spec: Modality = { name: expectString(m.name, `vocab JSON modalities[${i}].name`), size: expectInteger(m.size, `vocab JSON modalities[${i}].size`), offset: expectInteger(m.offset, `vocab JSON modalities[${i}].offset`) };
      const begin = opt("begin"), end = opt("end"), lineBreak = opt("lineBreak");
      return { ...spec, ...(begin !== undefined && { begin }), ...(end !== undefined && { end }), ...(lineBreak !== undefined && { lineBreak }) };
    });
    const strings = (v: unknown, what: string) => expectArray(v, what).map((s, i) => expectString(s, `${what}[${i}]`));
    return JointVocab.build({
      text: { size: expectInteger(text.size, "vocab JSON text.size"), pad: expectInteger(text.pad, "vocab JSON text.pad") },
      specials: strings(o.specials, "vocab JSON specials"),
      modalities,
      placeholders: o.placeholders === undefined ? [] : strings(o.placeholders, "vocab JSON placeholders"),
    });
  }

  toJSON(): VocabJSON {
    return { text: { size: this.textSize, pad: this.padId }, specials: [...this.specials], modalities: this.modalities.map((m) => ({ ...m })), placeholders: [...this.placeholders] };
  }

  /** Joint id of a special token. */
  special(name: string): number {
    const id = this.#specialIds.get(name);
    if (id === undefined) throw new Error(`unknown special "${name}": expected one of ${this.specials.map((s) => `"${s}"`).join(", ") || "(none: this vocabulary has no specials)"}`);
    return id;
  }

  hasSpecial(name: string): boolean {
    return this.#specialIds.has(name);
  }

  /** Name of the special with joint id `id` (throws if `id` is not a special). */
  specialName(id: number): string {
    const r = this.range("special");
    if (!Number.isInteger(id) || id < r.start || id >= r.end) throw new Error(`token ${id} is not a special (specials are ${describeRange(r)})`);
    return this.specials[id - r.start]!;
  }

  /** What a special means: a modality's begin/end marker, a line break, a placeholder token, or plain. */
  roleOf(special: string): SpecialRole {
    this.special(special);
    return this.#roles.get(special)!;
  }

  /** A discrete modality by name (not "text" or "special"). */
  modality(name: string): Modality {
    const m = this.#byName.get(name);
    if (m === undefined) throw new Error(`unknown modality "${name}": expected one of ${this.modalities.map((x) => `"${x.name}"`).join(", ") || "(none)"}`);
    return m;
  }

  hasModality(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Joint ids [start, end) of "text", "special" or a modality. */
  range(name: string): IdRange {
    if (name === "text") return { start: 0, end: this.textSize };
    if (name === "special") return { start: this.textSize, end: this.textSize + this.specials.length };
    const m = this.modality(name);
    return { start: m.offset, end: m.offset + m.size };
  }

  /** Local code of "text" or a modality → joint id. */
  toJoint(modality: string, code: number): number {
    const r = this.#codeRange(modality);
    if (!Number.isInteger(code) || code < 0 || code >= r.end - r.start) throw new Error(`${modality} code ${code} out of range [0, ${r.end - r.start - 1}]`);
    return r.start + code;
  }

  /** Joint id → local code of "text" or a modality (throws if the id is not one of its tokens). */
  fromJoint(modality: string, id: number): number {
    const r = this.#codeRange(modality);
    if (!Number.isInteger(id) || id < r.start || id >= r.end) throw new Error(`token ${id} is not one of the ${modality} tokens (${modality} ids are ${describeRange(r)})`);
    return id - r.start;
  }

  /** "text", "special" or the modality name owning joint id `id`. */
  modalityOf(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) throw new Error(`unknown token id ${id}: expected an integer in [0, ${this.size - 1}]`);
    if (id < this.textSize) return "text";
    if (id < this.textSize + this.specials.length) return "special";
    for (const m of this.modalities) if (id >= m.offset && id < m.offset + m.size) return m.name;
    throw new Error(`unknown token id ${id}: it lies in a gap between the ranges (${this.#describeRanges()})`);
  }

  /**
   * Additive logit mask [V]: 0 where allowed, −∞ elsewhere. "text" never allows the pad id.
   * Cached per distinct constraint: the array is shared, do not write to it.
   */
  allowedMask(c: Constraint): Float32Array {
    const sorted = <T>(xs: readonly T[] | undefined) => [...(xs ?? [])].sort();
    const key = JSON.stringify([sorted(c.modalities), sorted(c.specials), sorted(c.ids)]);
    const hit = this.#masks.get(key);
    if (hit) return hit;
    const mask = new Float32Array(this.size).fill(-Infinity);
    for (const m of c.modalities ?? []) {
      if (m === "special") throw new Error(`allowedMask: name specials one by one in constraint.specials, not the modality "special"`);
      const r = this.range(m);
      mask.fill(0, r.start, r.end);
      if (m === "text") mask[this.padId] = -Infinity; // never generate padding
    }
    for (const s of c.specials ?? []) mask[this.special(s)] = 0;
    for (const id of c.ids ?? []) {
      this.modalityOf(id);
      mask[id] = 0;
    }
    this.#masks.set(key, mask);
    return mask;
  }

  #codeRange(modality: string): IdRange {
    if (modality === "special") throw new Error(`specials have no codes: use special(name) / specialName(id)`);
    return this.range(modality);
  }

  #describeRanges(): string {
    return ["text", "special", ...this.modalities.map((m) => m.name)].map((n) => `${n} ${describeRange(this.range(n))}`).join(", ");
  }
}

function positiveInteger(x: number, what: string): void {
  if (!Number.isInteger(x) || x <= 0) throw new Error(`${what} ${x} must be a positive integer`);
}

/** Throws naming both ranges if any two of text, specials and the modalities share an id. */
function checkOverlaps(textSize: number, specials: number, modalities: readonly Modality[]): void {
  const ranges = [
    { name: "text", start: 0, end: textSize },
    { name: "the specials", start: textSize, end: textSize + specials },
    ...modalities.map((m) => ({ name: `modality "${m.name}"`, start: m.offset, end: m.offset + m.size })),
  ].filter((r) => r.end > r.start);
  for (let i = 0; i < ranges.length; i++)
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i]!, b = ranges[j]!;
      if (a.start < b.end && b.start < a.end) throw new Error(`${b.name} ids ${describeRange(b)} overlap ${a.name} ids ${describeRange(a)}`);
    }
}
