/**
 * A sequence as a typed document of segments: text, special tokens, discrete blocks of a modality
 * (an image grid, audio frames) and placeholder runs for continuous embeddings. `compileSequence`
 * turns it into ids, positions, loss weights and an attention mask; `parseSequence` reads ids back.
 *
 * Loss (as the unified model has always weighted it): a segment's `loss` is the TOTAL weight its
 * covered tokens share equally, a per-sequence mean, so a 6-token caption counts as much as a
 * 50-token image (a per-token mean would give captioning ~10% of the gradient). The weight of token
 * t is that of predicting token t from position t − 1, so a loss on token 0 is never trained.
 * Covered tokens: a text's ids and its `end` (not its pads); a block's content, row breaks and end
 * marker (not its begin marker, which the preceding context cannot predict: it is the prompt's
 * choice); a special's token. Placeholders take no cross-entropy loss.
 */
import { product } from "./checks.ts";

/**
 * Text-tokenizer ids. Token order: ids, then pads up to `padTo`, then `end`. Pads fix where later
 * segments sit (the same absolute position for every caption length); `padTo` counts the ids and
 * pads, not `end`. The ids must not contain the pad id.
 */
export type TextSegment = {
  readonly kind: "text";
  /** text-tokenizer ids; absent = to be generated (then the last segment) */
  readonly ids?: readonly number[];
  /** pad with the pad id up to this many tokens (error if the ids are longer) */
  readonly padTo?: number;
  /** a special appended, part of this segment, e.g. "<eos>"; for a generated text, a token it may end with */
  readonly end?: string;
  /** positions reserved for a generated text, its `end` included (required then) */
  readonly maxLength?: number;
  readonly loss?: number;
};

export type SpecialSegment = { readonly kind: "special"; readonly name: string; readonly loss?: number };

export type BlockSegment = {
  readonly kind: "block";
  readonly modality: string;
  /** e.g. [H, W] image grid, [frames, levels] audio; ∏ shape tokens */
  readonly shape: readonly number[];
  /** the modality's local codes, row-major, length ∏ shape; absent = to be generated */
  readonly ids?: readonly number[];
  readonly loss?: number;
  /** "bidirectional": the block's content positions see each other (causal elsewhere) */
  readonly attention?: "causal" | "bidirectional";
  /** default true: the modality's begin/end markers around the block */
  readonly markers?: boolean;
  /** Emu3: the modality's lineBreak token after each row of a 2-D block (markers required) */
  readonly rowBreaks?: boolean;
};

export type PlaceholderSegment = {
  readonly kind: "placeholder";
  /** what fills it, e.g. "image" */
  readonly name: string;
  readonly slots: number;
  /** the placeholder special repeated at each slot */
  readonly token: string;
};

export type Segment = TextSegment | SpecialSegment | BlockSegment | PlaceholderSegment;

/** "causal", or a prefix LM (Raffel et al. 2020, §3.2.1): the first `prefix` segments see each other. */
export type DocumentAttention = "causal" | { readonly prefix: number };

export type SequenceDocument = { readonly segments: readonly Segment[]; readonly attention?: DocumentAttention };

/** How ids are read back (`parseSequence`) and, so, what canonical form a document has. */
export type ParseOptions = {
  /** the shape of a block without row breaks, by modality, used when its product matches; else [n] */
  readonly blockShapes?: Readonly<Record<string, readonly number[]>>;
  /** placeholder token → the name of what fills it; default: the token without its angle brackets */
  readonly placeholderNames?: Readonly<Record<string, string>>;
};

/** Shape of a block of n codes without row breaks, as parsing reads it. */
export function blockShape(modality: string, n: number, opts: ParseOptions): readonly number[] {
  const shape = opts.blockShapes?.[modality];
  return shape !== undefined && product(shape) === n ? [...shape] : [n];
}

/** Name of a placeholder run, as parsing reads it: "<image>" → "image". */
export const placeholderName = (token: string, opts: ParseOptions): string => opts.placeholderNames?.[token] ?? token.replace(/^<(.*)>$/, "$1");

/**
 * The form `parseSequence(…, opts)` returns for a complete document: the same ids, structure
 * only. Drops loss and attention fields, `markers: true` and `rowBreaks: false` (the defaults),
 * a `padTo` equal to the text length and `maxLength` on given texts; splits a text's `end` into a
 * special segment; drops empty texts; merges a text without padding into the text after it, pads
 * into the padded text before them, adjacent marker-less blocks of one modality, and adjacent
 * placeholders of one token; gives a block without row breaks its `blockShape` and a placeholder
 * its `placeholderName`. Holes are kept (without loss).
 */
export function canonicalDocument(doc: SequenceDocument, opts: ParseOptions = {}): SequenceDocument {
  const pieces: Segment[] = [];
  for (const s of doc.segments) {
    switch (s.kind) {
      case "text": {
        if (s.ids === undefined) {
          pieces.push({ kind: "text", ...(s.maxLength !== undefined && { maxLength: s.maxLength }), ...(s.end !== undefined && { end: s.end }) });
          break;
        }
        if (s.ids.length > 0 || (s.padTo ?? 0) > s.ids.length) pieces.push(textPiece(s.ids, s.padTo));
        if (s.end !== undefined) pieces.push({ kind: "special", name: s.end });
        break;
      }
      case "special":
        pieces.push({ kind: "special", name: s.name });
        break;
      case "block":
        pieces.push(blockPiece(s.modality, s.ids === undefined || s.rowBreaks ? s.shape : blockShape(s.modality, s.ids.length, opts), s.ids, s.markers ?? true, s.rowBreaks ?? false));
        break;
      case "placeholder":
        pieces.push({ kind: "placeholder", name: placeholderName(s.token, opts), slots: s.slots, token: s.token });
        break;
    }
  }
  const out: Segment[] = [];
  for (const s of pieces) {
    const prev = out[out.length - 1];
    if (prev?.kind === "text" && s.kind === "text" && prev.ids !== undefined && s.ids !== undefined && prev.padTo === undefined) {
      out[out.length - 1] = textPiece([...prev.ids, ...s.ids], s.padTo === undefined ? undefined : prev.ids.length + s.padTo);
    } else if (prev?.kind === "text" && s.kind === "text" && prev.ids !== undefined && prev.padTo !== undefined && s.ids?.length === 0) {
      out[out.length - 1] = textPiece(prev.ids, prev.padTo + s.padTo!); // pads after pads
    } else if (prev?.kind === "block" && s.kind === "block" && prev.markers === false && s.markers === false && prev.modality === s.modality && prev.ids && s.ids) {
      const ids = [...prev.ids, ...s.ids];
      out[out.length - 1] = blockPiece(s.modality, blockShape(s.modality, ids.length, opts), ids, false, false);
    } else if (prev?.kind === "placeholder" && s.kind === "placeholder" && prev.token === s.token) {
      out[out.length - 1] = { ...prev, slots: prev.slots + s.slots };
    } else out.push(s);
  }
  return { segments: out };
}

function blockPiece(modality: string, shape: readonly number[], ids: readonly number[] | undefined, markers: boolean, rowBreaks: boolean): BlockSegment {
  return { kind: "block", modality, shape: [...shape], ...(ids !== undefined && { ids: [...ids] }), ...(!markers && { markers: false }), ...(rowBreaks && { rowBreaks: true }) };
}

function textPiece(ids: readonly number[], padTo: number | undefined): TextSegment {
  return { kind: "text", ids: [...ids], ...(padTo !== undefined && padTo !== ids.length && { padTo }) };
}

/** A short label for errors: `segment 2 (block "image")`. */
export function describeSegment(s: Segment, i: number): string {
  const what = s.kind === "block" ? `block "${s.modality}"` : s.kind === "special" ? `special "${s.name}"` : s.kind === "placeholder" ? `placeholder "${s.name}"` : "text";
  return `segment ${i} (${what})`;
}
