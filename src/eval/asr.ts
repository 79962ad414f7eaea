/**
 * Word accuracy of recognized speech: 1 − (substitutions + deletions + insertions) / reference
 * words, the word error rate's complement, from a Levenshtein alignment over words. Words are
 * compared lower-cased, split on whitespace.
 */

const words = (s: string): string[] => s.toLowerCase().split(/\s+/).filter(Boolean);

/** Word edits (S + D + I) turning `reference` into `hypothesis`, and the reference's word count. */
export function wordErrors(reference: string, hypothesis: string): { errors: number; words: number } {
  const r = words(reference);
  const h = words(hypothesis);
  let prev = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const row = [i];
    for (let j = 1; j <= h.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (r[i - 1] === h[j - 1] ? 0 : 1)));
    prev = row;
  }
  return { errors: prev[h.length]!, words: r.length };
}

/** 1 − Σ errors / Σ reference words over the pairs (can be negative when hypotheses insert many words). */
export function wordAccuracy(references: readonly string[], hypotheses: readonly string[]): number {
  if (references.length !== hypotheses.length) throw new Error(`wordAccuracy: ${references.length} references but ${hypotheses.length} hypotheses`);
  let errors = 0;
  let total = 0;
  references.forEach((ref, i) => {
    const e = wordErrors(ref, hypotheses[i]!);
    errors += e.errors;
    total += e.words;
  });
  if (total === 0) throw new Error("wordAccuracy: the references hold no words");
  return 1 - errors / total;
}
