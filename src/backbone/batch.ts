/**
 * Compiled sequences (backbone/sequence/compile.ts) → one device batch for next-token training:
 * inputs, targets, weights [B, L]; the attention mask only when some sequence is not plainly
 * causal (else the loss builds one shared causal mask); 2-D RoPE grids when asked.
 */
import { fromHost, np, type Array } from "../engine/index.ts";
import { toTrainingExample, type CompiledSequence } from "./sequence/compile.ts";

/** inputs, targets [B, L] int32, weights [B, L]; mask bool [B, 1, L, L] (absent = causal); positions: grids [B, L, 2] (absent = 0..L−1). */
export type SequenceBatch = { inputs: Array; targets: Array; weights: Array; mask?: Array; positions?: Array };

export type BatchOptions = {
  /** L, the training length (context − 1 for full contexts: the last token is only a target). */
  readonly length: number;
  readonly padId: number;
  /** Include each sequence's (row, column) ids for 2-D RoPE. */
  readonly grid?: boolean;
};

export function batchSequences(seqs: readonly CompiledSequence[], { length, padId, grid = false }: BatchOptions): SequenceBatch {
  const b = seqs.length;
  if (b === 0) throw new Error("batchSequences: no sequences");
  const inputs = new Int32Array(b * length);
  const targets = new Int32Array(b * length);
  const weights = new Float32Array(b * length);
  seqs.forEach((s, i) => {
    const e = toTrainingExample(s, length, padId);
    inputs.set(e.inputs, i * length);
    targets.set(e.targets, i * length);
    weights.set(e.weights, i * length);
  });
  const batch: SequenceBatch = { inputs: fromHost(inputs, [b, length]), targets: fromHost(targets, [b, length]), weights: fromHost(weights, [b, length]) };
  if (seqs.some((s) => s.maskKind !== "causal")) {
    // Rows and columns past a sequence's end are padding: causal there (they carry no loss).
    const m = new Int32Array(b * length * length);
    seqs.forEach((s, i) => {
      const own = s.mask();
      const n = Math.min(s.length, length);
      for (let q = 0; q < length; q++) for (let k = 0; k <= q; k++) m[(i * length + q) * length + k] = 1;
      for (let q = 0; q < n; q++) for (let k = 0; k < n; k++) m[(i * length + q) * length + k] = own[q * s.length + k]!;
    });
    batch.mask = fromHost(m, [b, 1, length, length]).astype(np.bool);
  }
  if (grid) {
    const g = new Int32Array(b * length * 2);
    seqs.forEach((s, i) => {
      for (let t = 0; t < length; t++) {
        const [r, c] = t < s.length ? [s.grid[2 * t]!, s.grid[2 * t + 1]!] : [t, t];
        g[(i * length + t) * 2] = r;
        g[(i * length + t) * 2 + 1] = c;
      }
    });
    batch.positions = fromHost(g, [b, length, 2]);
  }
  return batch;
}
