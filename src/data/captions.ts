/**
 * Captions for digit images, made from their labels with several templates that mix
 * numerals ("7") and words ("seven"), so the text side sees both spellings of each class.
 */
import type { Rng } from "./shuffle.ts";

export const DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"] as const;

/**
 * Placeholders: `{n}` the numeral, `{w}` the word, `{a}` the article "a"/"an" that fits the
 * digit that follows it ("an 8", "an eight").
 */
export const CAPTION_TEMPLATES: readonly string[] = [
  "a handwritten {n}",
  "the digit {w}",
  "a picture of {a} {n}",
  "an image of the number {w}",
  "handwritten digit {n}",
  "a photo of the digit {n}",
  "{a} {w}, written by hand",
  "the number {n}",
];

function checkLabel(label: number): void {
  if (!Number.isInteger(label) || label < 0 || label > 9) throw new Error(`caption: label must be an integer digit 0..9, got ${label}`);
}

/** The caption of `label` under template `templateIndex` (0 ≤ templateIndex < CAPTION_TEMPLATES.length). */
export function caption(label: number, templateIndex: number): string {
  checkLabel(label);
  const template = CAPTION_TEMPLATES[templateIndex];
  if (!Number.isInteger(templateIndex) || template === undefined) {
    throw new Error(`caption: templateIndex must be an integer in [0, ${CAPTION_TEMPLATES.length}), got ${templateIndex}`);
  }
  // Only 8 / "eight" start with a vowel sound among the digits.
  return template
    .replaceAll("{a}", label === 8 ? "an" : "a")
    .replaceAll("{n}", String(label))
    .replaceAll("{w}", DIGIT_WORDS[label]!);
}

/** A caption of `label` under a template drawn uniformly with `rng` (e.g. `mulberry32(seed)`). */
export function randomCaption(label: number, rng: Rng): string {
  const u = rng();
  if (!(u >= 0 && u < 1)) throw new Error(`randomCaption: rng must return a float in [0, 1), got ${u}`);
  return caption(label, Math.floor(u * CAPTION_TEMPLATES.length));
}

/** Every template × label, template-major: [CAPTION_TEMPLATES.length * 10] (tokenizer training text). */
export function allCaptions(): string[] {
  return CAPTION_TEMPLATES.flatMap((_, t) => DIGIT_WORDS.map((_, label) => caption(label, t)));
}

/**
 * The digit a caption names, as a standalone numeral ("7") or word ("Seven"), or null when
 * it names none, or names two different digits — so listing every digit scores nothing.
 * Numbers of several digits ("17") and words that merely contain a digit word ("someone")
 * do not count.
 */
export function parseDigitFromCaption(text: string): number | null {
  let found: number | null = null;
  for (const token of text.toLowerCase().match(/[a-z]+|[0-9]+/g) ?? []) {
    const digit = /^[0-9]$/.test(token) ? Number(token) : (DIGIT_WORDS as readonly string[]).indexOf(token);
    if (digit < 0) continue;
    if (found !== null && found !== digit) return null;
    found = digit;
  }
  return found;
}
