/**
 * Decoding from a layout: a document with holes (backbone/sequence/document.ts: a block without
 * ids, a text without ids) is compiled; its prompt (the tokens before the first hole) is decoded
 * by `Decoder`, each new token restricted to what the layout allows at its position (a block's
 * codes, a forced end marker, text or the text's end token), and the holes come back filled.
 */
import type { CompiledSequence } from "../backbone/sequence/compile.ts";
import { compileSequence } from "../backbone/sequence/compile.ts";
import type { SequenceDocument, TextSegment } from "../backbone/sequence/document.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import type { Decoder } from "./decode.ts";
import type { SamplingOptions } from "./sampling.ts";

export type FillOptions = {
  readonly sampling: SamplingOptions;
  readonly seed?: number;
  /** Classifier-free guidance: one unconditional document per document (prompts of equal length), and the scale (1 = off). */
  readonly guidance?: { readonly documents: readonly SequenceDocument[]; readonly scale: number };
};

/** A document's holes, filled: the whole sequence's joint ids, and where each segment landed. */
export type Filled = { readonly ids: Int32Array; readonly compiled: CompiledSequence };

/**
 * Fill the holes of `documents` (equal prompt lengths, the same positions to fill) in one batch.
 * Decoding stops at the last hole; forced tokens after it (an end marker) are written from the
 * layout, and a generated text ends at its `end` token (the rest of its reserved positions is cut).
 */
export async function fillHoles(decoder: Decoder, vocab: JointVocab, documents: readonly SequenceDocument[], opts: FillOptions): Promise<Filled[]> {
  // The last token is never fed back, so a sequence may be one longer than the context.
  const contextLength = decoder.config.contextLength + 1;
  const compiled = documents.map((d) => compileSequence(vocab, d, { contextLength }));
  const first = compiled[0];
  if (!first) throw new Error("fillHoles: no documents");
  const start = first.promptLength;
  const lastHole = lastHoleOf(first);
  if (compiled.some((c) => c.promptLength !== start || lastHoleOf(c) !== lastHole)) {
    throw new Error(`fillHoles: the documents must have their holes at the same positions (prompt lengths ${compiled.map((c) => c.promptLength).join(", ")})`);
  }
  if (lastHole < start) return compiled.map((c) => ({ ids: c.ids, compiled: c }));
  // The documents share a layout, so their generated text (if any) ends at the same token.
  const stop = stopToken(vocab, documents[0]!);
  const uncond = opts.guidance?.documents.map((d) => compileSequence(vocab, d, { contextLength }));
  if (uncond && uncond.length !== compiled.length) throw new Error(`fillHoles: guidance has ${uncond.length} documents, expected one per document (${compiled.length})`);
  const prompt = (c: CompiledSequence) => Array.from(c.ids.subarray(0, c.promptLength));
  const gridded = decoder.config.positions === "rope2d";
  const generated = await decoder.generate(compiled.map(prompt), lastHole + 1 - start, {
    sampling: opts.sampling,
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    // The constraint of sequence i depends only on its position, and every sequence shares the layout's positions.
    constraint: (g) => first.allowedAt(start + g.length),
    stop: (g) => stop !== undefined && g[g.length - 1] === stop,
    ...(gridded ? { grids: compiled.map((c) => c.grid) } : {}),
    ...(opts.guidance && uncond ? { guidance: { prompts: uncond.map(prompt), scale: opts.guidance.scale, ...(gridded ? { grids: uncond.map((c) => c.grid) } : {}) } } : {}),
  });
  return compiled.map((c, i) => {
    const ids = Int32Array.from(c.ids);
    const g = generated[i]!;
    ids.set(g, start);
    const ended = stop !== undefined && g[g.length - 1] === stop;
    return { ids: ended ? ids.slice(0, start + g.length) : ids, compiled: c };
  });
}

/** The last hole's index (−1 if none). */
function lastHoleOf(c: CompiledSequence): number {
  for (let t = c.length - 1; t >= 0; t--) if (c.ids[t] === -1) return t;
  return -1;
}

/** The end token of a generated text (the last segment, when it is a text hole with `end`). */
function stopToken(vocab: JointVocab, doc: SequenceDocument): number | undefined {
  const last = doc.segments[doc.segments.length - 1];
  if (last?.kind !== "text") return undefined;
  const text = last as TextSegment;
  return text.ids === undefined && text.end !== undefined ? vocab.special(text.end) : undefined;
}

/** The local codes of block segment `segment` of a filled sequence. */
export function blockCodes(vocab: JointVocab, filled: Filled, segment: number, modality: string): number[] {
  const s = filled.compiled.segments[segment];
  if (!s || s.kind !== "block") throw new Error(`blockCodes: segment ${segment} is not a block`);
  const out: number[] = [];
  const { start, end } = vocab.range(modality);
  for (let t = s.contentStart; t < s.contentEnd; t++) {
    const id = filled.ids[t]!;
    if (id >= start && id < end) out.push(id - start); // skips row breaks
  }
  return out;
}

/** The text ids of text segment `segment` of a filled sequence (without its end token). */
export function textIds(vocab: JointVocab, filled: Filled, segment: number): number[] {
  const s = filled.compiled.segments[segment];
  if (!s || s.kind !== "text") throw new Error(`textIds: segment ${segment} is not a text`);
  const out: number[] = [];
  for (let t = s.contentStart; t < Math.min(s.contentEnd, filled.ids.length); t++) {
    const id = filled.ids[t]!;
    if (id < 0 || id >= vocab.textSize) break; // its end token, or positions never reached
    if (id !== vocab.padId) out.push(id);
  }
  return out;
}
