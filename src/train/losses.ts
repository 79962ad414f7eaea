/**
 * Next-token losses on the backbone's logits. Each returns what training and preference methods
 * need: the weighted mean (the training loss), per-token log-probabilities of the targets, and
 * per-sequence sums (log p(response | prompt), as DPO and scoring use).
 *
 * log p(target) = (x_target − m) − log Σ exp(x − m), m = max x (stop-gradient), as
 * `nn.logSoftmax` computes it, but the shifted logit is picked before the log-sum-exp is
 * subtracted, so no [B, T, V] log-probabilities are formed; the one-hot is a compare against an
 * iota (fused into the pick), not a gather from an identity matrix. Same values and gradients bit
 * for bit (the pick adds exact zeros); about 40% less time (docs/performance.md).
 */
import { lax, np, type Array } from "../engine/index.ts";
import type { SequenceBatch } from "../backbone/batch.ts";
import { causalMask } from "../backbone/masks.ts";
import { embedStreams, type StreamBatch } from "../backbone/streams.ts";
import type { IdRange } from "../backbone/sequence/vocab.ts";
import { forward, hidden, lmHead, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";

/** logits: [B, T, V], targets: [B, T] → log p(target) [B, T]. Consumes both. */
export function tokenLogProbs(logits: Array, targets: Array): Array {
  const v = logits.shape[2];
  const shifted = logits.ref.sub(lax.stopGradient(logits.max(-1, { keepdims: true }))); // [B, T, V]
  const lse = np.log(np.exp(shifted.ref).sum(-1)); // [B, T]
  const oneHot = np.arange(v).astype(np.int32).equal(targets.astype(np.int32).reshape([...targets.shape, 1])); // [B, T, V]
  return shifted.mul(oneHot.astype(shifted.dtype)).sum(-1).sub(lse); // [B, T]
}

/**
 * Mean cross-entropy of next-token prediction, weighted per target (0 = no loss; used to train
 * only on the target part of a sequence): −Σ w·log p / Σ w. logits: [B, T, V], targets, weights:
 * [B, T]. Consumes all three.
 */
export function weightedCrossEntropy(logits: Array, targets: Array, weights: Array): Array {
  const picked = tokenLogProbs(logits, targets);
  return picked.mul(weights.ref).sum().mul(-1).div(weights.sum().add(1e-9));
}

/** Σ_t w_t·log p(target_t) per sequence: [B] (e.g. log p(response | prompt) with weights on the response). Consumes all three. */
export function sequenceLogProbs(logits: Array, targets: Array, weights: Array): Array {
  return tokenLogProbs(logits, targets).mul(weights).sum(-1);
}

/**
 * A batch of next-token examples (backbone/batch.ts): inputs, targets [B, T] int32, weights
 * [B, T]; optional mask (bool [T, T] or [B, 1, T, T]; default causal) and positions (as `hidden`
 * takes them; default 0..T−1).
 */
export type NextTokenBatch = SequenceBatch;

/** The backbone's training loss on a batch: weighted next-token cross-entropy. Consumes params and batch. */
export function nextTokenLoss(p: TransformerParams, batch: NextTokenBatch, cfg: TransformerConfig): [Array, Record<string, Array>] {
  const t = batch.inputs.shape[1];
  const logits = forward(p, batch.inputs, batch.mask ?? causalMask(t), cfg, batch.positions);
  return [weightedCrossEntropy(logits, batch.targets, batch.weights), {}];
}

/** Causal logits [B, T, V] of the multi-stream inputs (K × [B, T] ids, then any condition streams; summed embeddings). Consumes params and inputs. */
export function streamLogits(p: TransformerParams, inputs: readonly Array[], cfg: TransformerConfig): Array {
  const { tok, head, ...body } = p;
  return lmHead(head, hidden(body, embedStreams(tok, inputs), causalMask(inputs[0]!.shape[1]), cfg));
}

/**
 * The multi-stream training loss (backbone/streams.ts): the summed stream embeddings through the
 * backbone, one LM head, stream 0's cross-entropy over the whole vocabulary and stream k's over
 * level k's codes alone (`ranges[k − 1]`), weighted and averaged over all cells: −Σ w·log p / Σ w.
 * Also returns each stream's share of that mean (for the progress line). Consumes params and batch.
 */
export function streamLoss(p: TransformerParams, batch: StreamBatch, cfg: TransformerConfig, ranges: readonly IdRange[]): [Array, Record<string, Array>] {
  const logits = streamLogits(p, [...batch.inputs, ...batch.conditions], cfg);
  const total = batch.weights.reduce((a, w) => a.add(w.ref.sum()), np.array(1e-9));
  const parts = batch.targets.map((target, k) => {
    const l = k === 0 ? logits.ref : logits.ref.slice([], [], [ranges[k - 1]!.start, ranges[k - 1]!.end]);
    return tokenLogProbs(l, target).mul(batch.weights[k]!).sum().mul(-1).div(total.ref);
  });
  logits.dispose();
  total.dispose();
  const aux = Object.fromEntries(parts.slice(1).map((x, k) => [`level${k + 1}`, x.ref]));
  return [parts.reduce((a, x) => a.add(x)), aux];
}
