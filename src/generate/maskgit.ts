/**
 * MaskGIT's parallel iterative decoding (Chang et al. 2022, §3.2, "Iterative decoding"; the
 * reference is maskgit/libml/parallel_decode.py). Every image token starts as `<mask>`; each of
 * K steps runs one bidirectional pass (layout in backbone/orders/masked.ts), draws a token at
 * every masked position, then keeps the most confident draws and re-masks the rest, so that
 * ⌊N·γ((k+1)/K)⌋ stay masked after step k (γ the mask schedule: cosine, MaskGIT's choice, §3.3,
 * or linear) and none after the last. Confidence is log p(draw) plus Gumbel noise of temperature
 * τ·(1 − (k+1)/K) (the reference's choice_temperature τ = 4.5, annealed to 0), so early steps do
 * not always commit the same easy tokens. Tokens once kept are never re-masked.
 */
import { maskedInput } from "../backbone/orders/masked.ts";
import type { Draw, Schedule } from "./schedule.ts";

export type MaskSchedule = "cosine" | "linear";
export const MASK_SCHEDULES: readonly MaskSchedule[] = ["cosine", "linear"];

export type MaskGitOptions = {
  /** K, the passes per image: 1 … N */
  readonly steps: number;
  /** γ, the share still masked after each step (default "cosine") */
  readonly maskSchedule?: MaskSchedule;
  /** τ of the Gumbel noise on the confidences, annealed linearly to 0 (default 4.5; 0 = plain confidence) */
  readonly choiceTemperature?: number;
  /** Rank positions by this permutation of 0..N−1 instead of by confidence (earlier = kept first). */
  readonly revealOrder?: readonly number[];
};

/** Throws, naming the option, the value and what is allowed. */
export function checkMaskGit(opts: MaskGitOptions, tokens: number): void {
  if (!Number.isInteger(opts.steps) || opts.steps < 1 || opts.steps > tokens) throw new Error(`maskgit: steps ${JSON.stringify(opts.steps)} must be an integer in [1, ${tokens}] (at least one of the ${tokens} image tokens revealed per step)`);
  if (opts.maskSchedule !== undefined && !MASK_SCHEDULES.includes(opts.maskSchedule)) throw new Error(`maskgit: maskSchedule ${JSON.stringify(opts.maskSchedule)} must be one of ${MASK_SCHEDULES.join(", ")}`);
  const tau = opts.choiceTemperature;
  if (tau !== undefined && !(typeof tau === "number" && tau >= 0 && Number.isFinite(tau))) throw new Error(`maskgit: choiceTemperature ${JSON.stringify(tau)} must be a finite number ≥ 0`);
  if (opts.revealOrder !== undefined) {
    const seen = new Set(opts.revealOrder);
    if (opts.revealOrder.length !== tokens || seen.size !== tokens || !opts.revealOrder.every((k) => Number.isInteger(k) && k >= 0 && k < tokens)) throw new Error(`maskgit: revealOrder must be a permutation of 0..${tokens - 1}`);
  }
}

/**
 * Tokens still masked after step k of K, with `unknown` masked before it: 0 after the last step;
 * else ⌊N·γ((k+1)/K)⌋, kept in [1, unknown − 1] so each step reveals at least one and leaves one
 * for later (the reference's clamp).
 */
export function maskedAfter(step: number, steps: number, tokens: number, unknown: number, schedule: MaskSchedule = "cosine"): number {
  if (step >= steps - 1) return 0;
  // linear in integers, so K = N reveals exactly one token per step
  const target = schedule === "linear" ? Math.floor((tokens * (steps - step - 1)) / steps) : Math.floor(tokens * Math.cos((Math.PI / 2) * ((step + 1) / steps)));
  return Math.max(1, Math.min(unknown - 1, target));
}

/** Standard Gumbel noise −log(−log u). */
const gumbel = (rng: () => number) => -Math.log(-Math.log(Math.max(rng(), 1e-20)));

/** N image tokens after prompts of length P; `maskId` is the joint id of `<mask>`. */
export function maskgitSchedule(opts: MaskGitOptions, tokens: number, promptLength: number, maskId: number): Schedule {
  checkMaskGit(opts, tokens);
  const { steps, maskSchedule = "cosine", choiceTemperature = 4.5, revealOrder } = opts;
  const rank = new Int32Array(tokens);
  revealOrder?.forEach((pos, r) => (rank[pos] = r));
  const all = Int32Array.from({ length: tokens }, (_, j) => j);
  return {
    name: "maskgit",
    steps,
    needsConfidence: revealOrder === undefined,
    targets: () => all,
    input: (_step, _row, prompt, image) => maskedInput(prompt, image, maskId),
    query: () => ({ start: promptLength, count: tokens }),
    keep(step: number, draws: readonly Draw[], rng: () => number): readonly boolean[] {
      const masked = maskedAfter(step, steps, tokens, draws.length, maskSchedule);
      const tau = choiceTemperature * (1 - (step + 1) / steps);
      const score = draws.map((d) => (revealOrder ? -rank[d.position]! : Math.log(d.confidence) + (tau > 0 ? tau * gumbel(rng) : 0)));
      const byScore = draws.map((_, i) => i).sort((a, b) => score[b]! - score[a]! || draws[a]!.position - draws[b]!.position);
      const keep = draws.map(() => false);
      for (const i of byScore.slice(0, draws.length - masked)) keep[i] = true;
      return keep;
    },
  };
}
