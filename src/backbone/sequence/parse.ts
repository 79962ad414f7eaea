/**
 * Joint ids → `SequenceDocument`, the inverse of `compileSequence` up to `canonicalDocument`
 * with the same options (structure only: no loss or attention fields). Reads, left to right:
 *   text ids            one text segment per run; trailing pads set `padTo` (a non-pad text id
 *                       after a pad starts a new text)
 *   a begin marker      a block of its modality up to that modality's end marker; its shape comes
 *                       from the row breaks if any (H rows of W codes, each followed by the line
 *                       break), else `blockShapes[modality]` when its product matches, else [n]
 *   a placeholder token a placeholder segment per run, named by `placeholderNames[token]`, else
 *                       the token without its angle brackets ("<image>" → "image")
 *   modality codes      outside markers: one marker-less block per run (`markers: false`)
 *   other specials      special segments
 */
import { blockShape, placeholderName, type BlockSegment, type ParseOptions, type Segment, type SequenceDocument } from "./document.ts";
import type { JointVocab, Modality } from "./vocab.ts";

/** ids: [T] joint ids of a complete sequence (no −1 holes). */
export function parseSequence(vocab: JointVocab, ids: ArrayLike<number>, opts: ParseOptions = {}): SequenceDocument {
  const n = ids.length;
  /** "text", "special" or a modality name for ids[k], with errors that name k. */
  const kindAt = (k: number): string => {
    const id = ids[k]!;
    if (id === -1) throw new Error(`parseSequence: ids[${k}] is −1, a hole (a position still to be generated); parse complete sequences only`);
    try {
      return vocab.modalityOf(id);
    } catch (e) {
      throw new Error(`parseSequence: ids[${k}]: ${(e as Error).message}`);
    }
  };
  const segments: Segment[] = [];
  let t = 0;
  while (t < n) {
    const kind = kindAt(t);
    const id = ids[t]!;
    if (kind === "text") {
      const text: number[] = [];
      let pads = 0;
      for (; t < n && kindAt(t) === "text"; t++) {
        if (ids[t] === vocab.padId) pads++;
        else if (pads > 0) break;
        else text.push(ids[t]!);
      }
      segments.push({ kind: "text", ids: text, ...(pads > 0 && { padTo: text.length + pads }) });
    } else if (kind === "special") {
      const name = vocab.specialName(id);
      const role = vocab.roleOf(name);
      if (role.kind === "placeholder") {
        const start = t;
        while (t < n && ids[t] === id) t++;
        segments.push({ kind: "placeholder", name: placeholderName(name, opts), slots: t - start, token: name });
      } else if (role.kind === "begin") {
        const [block, next] = readBlock(vocab, ids, t, vocab.modality(role.modality), kindAt, opts);
        segments.push(block);
        t = next;
      } else if (role.kind === "end") {
        throw new Error(`parseSequence: ids[${t}] = ${id} is "${name}", the end marker of "${role.modality}", without a begin marker "${vocab.modality(role.modality).begin}" before it`);
      } else {
        segments.push({ kind: "special", name });
        t++;
      }
    } else {
      const start = t;
      while (t < n && kindAt(t) === kind) t++;
      const codes = Array.from({ length: t - start }, (_, k) => ids[start + k]! - vocab.modality(kind).offset);
      segments.push({ kind: "block", modality: kind, shape: blockShape(kind, codes.length, opts), ids: codes, markers: false });
    }
  }
  return { segments };
}

/** The block whose begin marker is ids[open]; returns it and the index after its end marker. */
function readBlock(vocab: JointVocab, ids: ArrayLike<number>, open: number, m: Modality, kindAt: (k: number) => string, opts: ParseOptions): [BlockSegment, number] {
  const codes: number[] = [];
  const rows: number[] = []; // codes per row, one entry per line break
  let row = 0;
  const where = `the "${m.name}" block opened by "${m.begin}" at index ${open}`;
  for (let k = open + 1; k < ids.length; k++) {
    const kind = kindAt(k);
    const id = ids[k]!;
    if (kind === m.name) {
      codes.push(id - m.offset);
      row++;
      continue;
    }
    const name = kind === "special" ? vocab.specialName(id) : undefined;
    if (name !== undefined && name === m.end) {
      if (codes.length === 0) throw new Error(`parseSequence: ${where} is empty`);
      if (rows.length === 0) return [{ kind: "block", modality: m.name, shape: blockShape(m.name, codes.length, opts), ids: codes }, k + 1];
      if (row !== 0) throw new Error(`parseSequence: ${where} has ${row} codes after its last row break (index ${k - row}); every row must end with "${m.lineBreak}"`);
      if (rows.some((r) => r !== rows[0] || r === 0)) throw new Error(`parseSequence: ${where} has rows of ${rows.join(", ")} codes; expected equal, non-empty rows`);
      return [{ kind: "block", modality: m.name, shape: [rows.length, rows[0]!], ids: codes, rowBreaks: true }, k + 1];
    }
    if (name !== undefined && name === m.lineBreak) {
      rows.push(row);
      row = 0;
      continue;
    }
    const what = name !== undefined ? `special "${name}"` : `a ${kind} token`;
    throw new Error(`parseSequence: ids[${k}] = ${id} (${what}) inside ${where}: expected a "${m.name}" code${m.lineBreak === undefined ? "" : `, its line break "${m.lineBreak}"`} or its end marker "${m.end}"`);
  }
  throw new Error(`parseSequence: ${where} is not closed: no end marker "${m.end}" before the end of the ${ids.length} ids`);
}
