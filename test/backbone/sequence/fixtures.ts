import type { Segment, SequenceDocument } from "../../../src/backbone/sequence/document.ts";
import { JointVocab, type VocabSpec } from "../../../src/backbone/sequence/vocab.ts";
import type { Rng } from "../../../src/data/shuffle.ts";

/**
 * A small vocabulary with every kind of token. Ids:
 *   text 0..9 (pad 1) | <bos> 10 <boi> 11 <eoi> 12 <eol> 13 <boa> 14 <eoa> 15 <image> 16 <eos> 17
 *   image 18..25 (markers, line break) | audio 26..29 (markers) | code 30..32 (no markers)
 */
export const MULTI: VocabSpec = {
  text: { size: 10, pad: 1 },
  specials: ["<bos>", "<boi>", "<eoi>", "<eol>", "<boa>", "<eoa>", "<image>", "<eos>"],
  modalities: [
    { name: "image", size: 8, begin: "<boi>", end: "<eoi>", lineBreak: "<eol>" },
    { name: "audio", size: 4, begin: "<boa>", end: "<eoa>" },
    { name: "code", size: 3 },
  ],
  placeholders: ["<image>"],
};

export const multi = (): JointVocab => JointVocab.build(MULTI);

/** Ids where the additive mask is 0. */
export const allowedIds = (mask: Float32Array): number[] => [...mask.keys()].filter((i) => mask[i] === 0);

/** A [T·T] 0/1 mask as rows of strings, "1101…", for readable comparisons. */
export const maskRows = (m: Uint8Array, t: number): string[] => Array.from({ length: t }, (_, i) => Array.from(m.subarray(i * t, (i + 1) * t)).join(""));

// One example of each direction, frozen from the legacy `textToImage` / `imageToText`
// (src/backbone/layout.ts, DEFAULT_LAYOUT, JointVocab(40, 256, 0), 7×7 image, length 64) so the
// layout stays pinned once those modules are gone (legacy-layout.test.ts compares them live).
export const LEGACY_VOCAB: VocabSpec = { text: { size: 40, pad: 0 }, specials: ["<bos>", "<boi>", "<eoi>", "<eos>"], modalities: [{ name: "image", size: 256, begin: "<boi>", end: "<eoi>" }] };
export const FROZEN_IMAGE = [
  11, 48, 85, 122, 159, 196, 233, 14, 51, 88, 125, 162, 199, 236, 17, 54, 91, 128, 165, 202, 239, 20, 57, 94, 131, 168, 205, 242, 23, 60, 97, 134, 171, 208, 245,
  26, 63, 100, 137, 174, 211, 248, 29, 66, 103, 140, 177, 214, 251,
];
export const FROZEN_T2I_CAPTION = [5, 9, 17];
export const FROZEN_I2T_CAPTION = [7, 3, 22];

const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const TEXT_IDS = [0, 2, 3, 4, 5, 6, 7, 8, 9]; // not the pad 1

/** The block shapes parsing assumes for `randomDocument`'s documents. */
export const SHAPES = { image: [2, 3] };

/** A random complete document over `multi()`: every kind of segment, in any order, adjacent or not. */
export function randomDocument(rng: Rng): SequenceDocument {
  const segments: Segment[] = [];
  const count = int(rng, 0, 8);
  const loss = () => (rng() < 0.5 ? { loss: Math.round(rng() * 8) / 4 } : {});
  const codes = (n: number, size: number) => Array.from({ length: n }, () => int(rng, 0, size - 1));
  while (segments.length < count) {
    const kind = int(rng, 0, 5);
    if (kind === 0) segments.push({ kind: "special", name: pick(rng, ["<bos>", "<eos>", "<eol>"]), ...loss() });
    else if (kind === 1) {
      const ids = codes(int(rng, 0, 4), 9).map((i) => TEXT_IDS[i]!);
      const padTo = rng() < 0.4 ? { padTo: ids.length + int(rng, 0, 3) } : {};
      const end = rng() < 0.3 ? { end: pick(rng, ["<eos>", "<bos>"]) } : {};
      segments.push({ kind: "text", ids, ...padTo, ...end, ...loss() });
    } else if (kind === 2) {
      const rows = rng() < 0.4;
      const shape = rows || rng() < 0.5 ? [int(rng, 1, 3), int(rng, 1, 3)] : rng() < 0.5 ? SHAPES.image : [int(rng, 1, 6)];
      const markers = rows || rng() < 0.6;
      const attention = rng() < 0.3 ? { attention: "bidirectional" as const } : {};
      segments.push({ kind: "block", modality: "image", shape, ids: codes(shape.reduce((a, b) => a * b), 8), ...(rows && { rowBreaks: true }), ...(!markers && { markers: false }), ...attention, ...loss() });
    } else if (kind === 3) {
      const shape = rng() < 0.5 ? [int(rng, 1, 4)] : [int(rng, 1, 2), 2];
      segments.push({ kind: "block", modality: "audio", shape, ids: codes(shape.reduce((a, b) => a * b), 4), ...loss() });
    } else if (kind === 4) {
      const n = int(rng, 1, 3);
      segments.push({ kind: "block", modality: "code", shape: [n], ids: codes(n, 3), markers: false, ...loss() });
    } else segments.push({ kind: "placeholder", name: pick(rng, ["image", "photo"]), slots: int(rng, 1, 3), token: "<image>" });
  }
  return { segments, ...(rng() < 0.3 && { attention: { prefix: int(rng, 0, segments.length) } }) };
}
