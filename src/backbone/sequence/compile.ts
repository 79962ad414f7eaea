/**
 * Compiles a `SequenceDocument` into what the transformer consumes: joint ids [T], positions [T],
 * 2-D RoPE row/column ids [T·2], per-token loss weights [T], where each segment and placeholder
 * landed, the decoding constraint of every position, and a lazy attention mask [T·T].
 *
 * Row/column ids (the convention of `grid`): a 1-D token at index t gets (t, t), so 2-D RoPE with
 * equal ids is plain 1-D RoPE. In a 2-D block whose first content token sits at index s, content
 * token (r, c) gets (s + r, s + c) and the row break after row r gets (s + r, s + W): the block's
 * top-left cell continues the text's position and the grid is a translate of the image's own
 * rows and columns (the M-RoPE idea of Qwen2-VL, Wang et al. 2024, §2.1). Tokens after the block
 * return to (t, t), which is at least every id inside the block.
 */
import { describeRange, product } from "./checks.ts";
import { describeSegment, type BlockSegment, type Segment, type SequenceDocument, type TextSegment } from "./document.ts";
import type { Constraint, IdRange, JointVocab } from "./vocab.ts";

export type CompileOptions = {
  /** longest allowed sequence T (error naming the segment that crosses it) */
  readonly contextLength?: number;
};

export type SegmentPlacement = {
  readonly kind: Segment["kind"];
  /** the whole segment, markers, pads and end token included: tokens [start, end) */
  readonly start: number;
  readonly end: number;
  /** its content: a text's ids (or reserved positions), a block's codes and row breaks, a special's token, a placeholder's slots */
  readonly contentStart: number;
  readonly contentEnd: number;
};

/** Where continuous embeddings go: rows [start, start + slots) of the input embeddings. */
export type PlaceholderPlacement = { readonly name: string; readonly segment: number; readonly start: number; readonly slots: number };

export interface CompiledSequence {
  readonly vocab: JointVocab;
  /** T */
  readonly length: number;
  /** ids: [T] joint ids; positions to be generated (holes) hold −1 */
  readonly ids: Int32Array;
  /** positions: [T] 0..T−1 */
  readonly positions: Int32Array;
  /** grid: [T·2] (row, column) per token, see the file header */
  readonly grid: Int32Array;
  /** weights: [T] loss weight of predicting token t from position t − 1 */
  readonly weights: Float32Array;
  /** one per document segment */
  readonly segments: readonly SegmentPlacement[];
  readonly placeholders: readonly PlaceholderPlacement[];
  /** index of the first hole (T if none) */
  readonly promptLength: number;
  /** token spans [start, end) that attend bidirectionally within themselves (prefix, bidirectional blocks) */
  readonly bidirectional: readonly IdRange[];
  /** "causal" when `mask()` is the plain lower triangle, so a batcher can share one causal mask */
  readonly maskKind: "causal" | "custom";
  /** Additive vocabulary mask [V] for token t while decoding (shared, do not write). */
  allowedAt(t: number): Float32Array;
  /** Attention mask [T·T], row = query, 1 = may attend; built on first call. */
  mask(): Uint8Array;
}

/** Builds the token arrays segment by segment. */
class Emitter {
  readonly ids: number[] = [];
  readonly rows: number[] = [];
  readonly cols: number[] = [];
  readonly holes: (Constraint | undefined)[] = [];
  readonly weights: number[] = [];

  get t(): number {
    return this.ids.length;
  }

  /** Appends one token (−1 = hole, decoded under `hole`); returns its index. */
  push(id: number, hole?: Constraint, row?: number, col?: number): number {
    const t = this.t;
    this.ids.push(id);
    this.rows.push(row ?? t);
    this.cols.push(col ?? t);
    this.holes.push(hole);
    this.weights.push(0);
    return t;
  }

  /** Shares `loss` equally over the covered tokens (the per-sequence mean, see document.ts). */
  share(loss: number, covered: readonly number[]): void {
    for (const t of covered) this.weights[t] = loss / covered.length;
  }
}

export function compileSequence(vocab: JointVocab, doc: SequenceDocument, { contextLength }: CompileOptions = {}): CompiledSequence {
  if (contextLength !== undefined && (!Number.isInteger(contextLength) || contextLength <= 0)) throw new Error(`contextLength ${contextLength} must be a positive integer`);
  const { segments } = doc;
  const prefix = prefixOf(doc);
  const out = new Emitter();
  const placements: SegmentPlacement[] = [];
  const placeholders: PlaceholderPlacement[] = [];
  const bidirectional: IdRange[] = [];
  segments.forEach((s, i) => {
    const label = describeSegment(s, i);
    const loss = s.kind === "placeholder" ? placeholderLoss(s, label) : checkLoss(s.loss, label);
    const start = out.t;
    let content: IdRange;
    switch (s.kind) {
      case "text":
        content = emitText(vocab, out, s, loss, label, i === segments.length - 1);
        break;
      case "special": {
        const t = out.push(checkedSpecial(vocab, s.name, label));
        out.share(loss, [t]);
        content = { start: t, end: t + 1 };
        break;
      }
      case "block":
        content = emitBlock(vocab, out, s, loss, label);
        if (s.attention === "bidirectional") bidirectional.push(content);
        else if (s.attention !== undefined && s.attention !== "causal") throw new Error(`${label}: attention ${JSON.stringify(s.attention)} must be "causal" or "bidirectional"`);
        break;
      case "placeholder": {
        if (!vocab.placeholders.includes(s.token)) throw new Error(`${label}: token "${s.token}" is not a placeholder token of the vocabulary (${vocab.placeholders.map((p) => `"${p}"`).join(", ") || "none"})`);
        if (typeof s.name !== "string" || s.name.length === 0) throw new Error(`${label}: name ${JSON.stringify(s.name)} must be a non-empty string`);
        if (!Number.isInteger(s.slots) || s.slots <= 0) throw new Error(`${label}: slots ${s.slots} must be a positive integer`);
        const id = vocab.special(s.token);
        for (let k = 0; k < s.slots; k++) out.push(id);
        content = { start, end: out.t };
        placeholders.push({ name: s.name, segment: i, start, slots: s.slots });
        break;
      }
      default:
        throw new Error(`segment ${i}: unknown kind ${JSON.stringify((s as { kind: unknown }).kind)} (expected "text", "special", "block" or "placeholder")`);
    }
    placements.push({ kind: s.kind, start, end: out.t, contentStart: content.start, contentEnd: content.end });
    if (contextLength !== undefined && out.t > contextLength) throw new Error(`${label} covers tokens ${start}..${out.t - 1}, past the context length of ${contextLength}`);
  });
  if (prefix > 0) bidirectional.unshift({ start: 0, end: placements[prefix - 1]!.end });
  const ids = Int32Array.from(out.ids);
  const grid = new Int32Array(2 * ids.length);
  out.rows.forEach((r, t) => ((grid[2 * t] = r), (grid[2 * t + 1] = out.cols[t]!)));
  const firstHole = ids.indexOf(-1);
  return new Compiled(vocab, {
    ids,
    positions: Int32Array.from(ids, (_, t) => t),
    grid,
    weights: Float32Array.from(out.weights),
    segments: placements,
    placeholders,
    promptLength: firstHole < 0 ? ids.length : firstHole,
    bidirectional,
    maskKind: bidirectional.some((r) => r.end - r.start > 1) ? "custom" : "causal",
    holes: out.holes,
  });
}

type CompiledFields = Omit<CompiledSequence, "vocab" | "length" | "allowedAt" | "mask"> & { holes: readonly (Constraint | undefined)[] };

class Compiled implements CompiledSequence {
  readonly ids: Int32Array;
  readonly positions: Int32Array;
  readonly grid: Int32Array;
  readonly weights: Float32Array;
  readonly segments: readonly SegmentPlacement[];
  readonly placeholders: readonly PlaceholderPlacement[];
  readonly promptLength: number;
  readonly bidirectional: readonly IdRange[];
  readonly maskKind: "causal" | "custom";
  readonly #holes: readonly (Constraint | undefined)[];
  #mask: Uint8Array | undefined;

  constructor(
    readonly vocab: JointVocab,
    f: CompiledFields,
  ) {
    this.ids = f.ids;
    this.positions = f.positions;
    this.grid = f.grid;
    this.weights = f.weights;
    this.segments = f.segments;
    this.placeholders = f.placeholders;
    this.promptLength = f.promptLength;
    this.bidirectional = f.bidirectional;
    this.maskKind = f.maskKind;
    this.#holes = f.holes;
  }

  get length(): number {
    return this.ids.length;
  }

  allowedAt(t: number): Float32Array {
    if (!Number.isInteger(t) || t < 0 || t >= this.length) throw new Error(`allowedAt: token index ${t} out of range [0, ${this.length - 1}]`);
    const id = this.ids[t]!;
    return this.vocab.allowedMask(id >= 0 ? { ids: [id] } : this.#holes[t]!);
  }

  mask(): Uint8Array {
    if (this.#mask) return this.#mask;
    const T = this.length;
    const m = new Uint8Array(T * T);
    for (let i = 0; i < T; i++) m.fill(1, i * T, i * T + i + 1); // causal: j ≤ i
    for (const { start, end } of this.bidirectional) for (let i = start; i < end; i++) m.fill(1, i * T + start, i * T + end);
    return (this.#mask = m);
  }
}

function prefixOf(doc: SequenceDocument): number {
  const a = doc.attention;
  if (a === undefined || a === "causal") return 0;
  if (typeof a !== "object" || a === null || !Number.isInteger(a.prefix) || a.prefix < 0) throw new Error(`document attention ${JSON.stringify(a)} must be "causal" or { prefix: a non-negative integer }`);
  if (a.prefix > doc.segments.length) throw new Error(`attention prefix ${a.prefix} is larger than the number of segments (${doc.segments.length})`);
  return a.prefix;
}

function checkLoss(loss: number | undefined, label: string): number {
  if (loss === undefined) return 0;
  if (typeof loss !== "number" || !Number.isFinite(loss) || loss < 0) throw new Error(`${label}: loss ${loss} must be a finite number ≥ 0`);
  return loss;
}

function placeholderLoss(s: Segment, label: string): number {
  const loss = (s as { loss?: unknown }).loss;
  if (loss !== undefined) throw new Error(`${label}: placeholders take no cross-entropy loss (their slots hold continuous embeddings), got loss ${JSON.stringify(loss)}`);
  return 0;
}

/** A special that may stand alone: markers and placeholder tokens belong to blocks and placeholders. */
function checkedSpecial(vocab: JointVocab, name: string, label: string): number {
  if (!vocab.hasSpecial(name)) throw new Error(`${label}: unknown special "${name}": expected one of ${vocab.specials.map((s) => `"${s}"`).join(", ") || "(none)"}`);
  const role = vocab.roleOf(name);
  if (role.kind === "begin" || role.kind === "end") throw new Error(`${label}: "${name}" is the ${role.kind} marker of "${role.modality}": write a block segment (markers: true) instead`);
  if (role.kind === "placeholder") throw new Error(`${label}: "${name}" is a placeholder token: write a placeholder segment instead`);
  return vocab.special(name);
}

function emitText(vocab: JointVocab, out: Emitter, s: TextSegment, loss: number, label: string, last: boolean): IdRange {
  const end = s.end === undefined ? undefined : checkedSpecial(vocab, s.end, label);
  if (s.ids === undefined) {
    if (!last) throw new Error(`${label}: a generated text (ids absent) must be the last segment, since its length is unknown`);
    if (s.maxLength === undefined || !Number.isInteger(s.maxLength) || s.maxLength <= 0) throw new Error(`${label}: a generated text needs maxLength, a positive integer, got ${s.maxLength}`);
    if (s.padTo !== undefined) throw new Error(`${label}: padTo ${s.padTo} applies to given text, not a generated one`);
    const hole: Constraint = { modalities: ["text"], specials: s.end === undefined ? [] : [s.end] };
    const start = out.t;
    for (let k = 0; k < s.maxLength; k++) out.push(-1, hole);
    out.share(loss, Array.from({ length: s.maxLength }, (_, k) => start + k));
    return { start, end: out.t };
  }
  if (s.maxLength !== undefined) throw new Error(`${label}: maxLength ${s.maxLength} applies to a generated text (ids absent), not given ids`);
  const text = vocab.range("text");
  s.ids.forEach((id, k) => {
    if (!Number.isInteger(id) || id < text.start || id >= text.end) throw new Error(`${label}: ids[${k}] = ${id} is not a text id (${describeRange(text)})`);
    if (id === vocab.padId) throw new Error(`${label}: ids[${k}] is the pad id ${id}: use padTo to pad a text`);
  });
  const padTo = s.padTo ?? 0;
  if (!Number.isInteger(padTo) || padTo < 0) throw new Error(`${label}: padTo ${s.padTo} must be a non-negative integer`);
  if (s.padTo !== undefined && s.ids.length > padTo) throw new Error(`${label}: text of ${s.ids.length} tokens is longer than its padTo ${padTo}`);
  const covered = s.ids.map((id) => out.push(id));
  const content = { start: covered[0] ?? out.t, end: out.t };
  for (let k = s.ids.length; k < padTo; k++) out.push(vocab.padId);
  if (end !== undefined) covered.push(out.push(end));
  out.share(loss, covered);
  return content;
}

function emitBlock(vocab: JointVocab, out: Emitter, s: BlockSegment, loss: number, label: string): IdRange {
  if (!vocab.hasModality(s.modality)) throw new Error(`${label}: unknown modality "${s.modality}": expected one of ${vocab.modalities.map((m) => `"${m.name}"`).join(", ") || "(none)"}`);
  const m = vocab.modality(s.modality);
  if (!Array.isArray(s.shape) || s.shape.length === 0 || !s.shape.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`${label}: shape ${JSON.stringify(s.shape)} must be a non-empty list of positive integers`);
  const n = product(s.shape);
  if (s.ids !== undefined) {
    if (s.ids.length !== n) throw new Error(`${label}: ${s.ids.length} ids for shape [${s.shape.join(", ")}], expected ${n}`);
    s.ids.forEach((c, k) => {
      if (!Number.isInteger(c) || c < 0 || c >= m.size) throw new Error(`${label}: ids[${k}] = ${c} is out of the "${m.name}" code range [0, ${m.size - 1}]`);
    });
  }
  const markers = s.markers ?? true;
  if (markers && m.begin === undefined) throw new Error(`${label}: modality "${m.name}" has no begin/end markers: set markers: false`);
  if (s.rowBreaks) {
    if (s.shape.length !== 2) throw new Error(`${label}: rowBreaks need a 2-D block, got shape [${s.shape.join(", ")}]`);
    if (m.lineBreak === undefined) throw new Error(`${label}: rowBreaks, but modality "${m.name}" has no lineBreak token`);
    if (!markers) throw new Error(`${label}: rowBreaks need the block's markers (outside markers a row break could not be told from a special)`);
  }
  if (markers) out.push(vocab.special(m.begin!));
  const s0 = out.t;
  const twoD = s.shape.length === 2;
  const [H, W] = twoD ? [s.shape[0]!, s.shape[1]!] : [1, n];
  const hole: Constraint = { modalities: [m.name] };
  const covered: number[] = [];
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      const code = s.ids?.[r * W + c];
      const id = code === undefined ? -1 : m.offset + code;
      covered.push(twoD ? out.push(id, code === undefined ? hole : undefined, s0 + r, s0 + c) : out.push(id, code === undefined ? hole : undefined));
    }
    if (s.rowBreaks) covered.push(out.push(vocab.special(m.lineBreak!), undefined, s0 + r, s0 + W));
  }
  const content = { start: s0, end: out.t };
  if (markers) covered.push(out.push(vocab.special(m.end!)));
  out.share(loss, covered);
  return content;
}

export type TrainingExample = { inputs: Int32Array; targets: Int32Array; weights: Float32Array };

/**
 * Next-token training arrays of `length` (= T − 1 for a full context), padded with `padId` and
 * weight 0: inputs [length] = ids[0..T−2], targets [length] = ids[1..T−1], weights [length] =
 * the targets' weights.
 */
export function toTrainingExample(compiled: CompiledSequence, length: number, padId: number): TrainingExample {
  const n = compiled.length;
  if (compiled.promptLength < n) throw new Error(`toTrainingExample: token ${compiled.promptLength} is a hole (to be generated); a training sequence must be complete`);
  if (n - 1 > length) throw new Error(`toTrainingExample: sequence of ${n} tokens has ${n - 1} targets, more than the length ${length}`);
  const inputs = new Int32Array(length).fill(padId);
  const targets = new Int32Array(length).fill(padId);
  const weights = new Float32Array(length);
  for (let i = 0; i + 1 < n; i++) {
    inputs[i] = compiled.ids[i]!;
    targets[i] = compiled.ids[i + 1]!;
    weights[i] = compiled.weights[i + 1]!; // position i predicts token i + 1
  }
  return { inputs, targets, weights };
}

/**
 * Host-side check before splicing continuous embeddings: `given[name]` rows for the placeholders
 * named `name` (all of them, in order), and none for a name without placeholders.
 */
export function checkPlaceholders(compiled: CompiledSequence, given: Readonly<Record<string, number>>): void {
  const byName = new Map<string, PlaceholderPlacement[]>();
  for (const p of compiled.placeholders) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  for (const name of Object.keys(given))
    if (!byName.has(name)) throw new Error(`embeddings were given for "${name}", but the sequence has no placeholder named "${name}" (placeholders: ${[...byName.keys()].map((k) => `"${k}"`).join(", ") || "none"})`);
  for (const [name, ps] of byName) {
    const slots = ps.reduce((a, p) => a + p.slots, 0);
    const where = ps.length === 1 ? `placeholder "${name}" at segment ${ps[0]!.segment} has ${slots} slots` : `placeholders "${name}" at segments ${ps.map((p) => p.segment).join(", ")} have ${ps.map((p) => p.slots).join(" + ")} = ${slots} slots`;
    const rows = given[name];
    if (rows === undefined) throw new Error(`${where}, but no embeddings were given`);
    if (rows !== slots) throw new Error(`${where}, but ${rows} embeddings were given`);
  }
}
