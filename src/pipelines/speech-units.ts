/**
 * Semantic units from the speech model's own hidden states, as HuBERT's second iteration takes
 * its targets from the first model's features (Hsu et al. 2021, §3.2) instead of from MFCCs
 * (tokenizers/audio/semantic.ts). A clip is read as recognition reads it (`<bos> <boa> codes…
 * <eoa>`, pipelines/speech.ts), and frame f's feature is the state after the first `layer`
 * blocks at the position where the delay pattern has shown all K levels of that frame.
 */
import { fromHost, tree, type Array } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import { causalMask } from "../backbone/masks.ts";
import { compileStreams, embedStreams } from "../backbone/streams.ts";
import { hidden } from "../backbone/transformer.ts";
import { asrSegments, type SpeechModel } from "./speech.ts";

/** Clips encoded together. */
const CHUNK = 32;

/** Per clip, [F, dim] hidden states after `layer` of the model's blocks (1 ≤ layer ≤ layers). Borrows the model. */
export async function speechFeatures(model: SpeechModel, clips: readonly { codes: Int32Array; frames: number }[], layer: number): Promise<Float32Array[]> {
  const { config: cfg, vocab, levels } = model;
  if (!Number.isInteger(layer) || layer < 1 || layer > cfg.layers) throw new Error(`speechFeatures: layer must be an integer in [1, ${cfg.layers}], got ${layer}`);
  const out: Float32Array[] = [];
  // one compiled shape: every chunk padded to the context (causal attention keeps the pads out)
  const t = cfg.contextLength;
  const forward = inferenceJit((p: SpeechModel["params"], streams: Array[]) => {
    const { tok, head, blocks, ...rest } = p;
    tree.dispose([head, blocks.slice(layer)]);
    return hidden({ ...rest, blocks: blocks.slice(0, layer) }, embedStreams(tok, streams), causalMask(t), cfg);
  });
  try {
    for (let at = 0; at < clips.length; at += CHUNK) {
      const seqs = clips.slice(at, at + CHUNK).map((c) => compileStreams(vocab, asrSegments(c)));
      const long = seqs.find((s) => s.length > t);
      if (long) throw new Error(`speechFeatures: a clip of ${long.length} positions exceeds the model's context of ${t}`);
      const streams = globalThis.Array.from({ length: levels }, (_, k) => {
        const ids = new Int32Array(CHUNK * t).fill(vocab.padId);
        seqs.forEach((s, i) => {
          for (let p = 0; p < s.length; p++) ids[i * t + p] = s.ids[p * levels + k]!;
        });
        return fromHost(ids, [CHUNK, t]);
      });
      const h = (await forward(tree.ref(model.params), streams).data()) as Float32Array; // [CHUNK, T, D]
      seqs.forEach((s, i) => {
        const { start, frames } = s.audio[0]!;
        const f = new Float32Array(frames * cfg.dim);
        for (let fr = 0; fr < frames; fr++) {
          const p = start + fr + levels - 1; // every level of frame fr has been read here
          f.set(h.subarray((i * t + p) * cfg.dim, (i * t + p + 1) * cfg.dim), fr * cfg.dim);
        }
        out.push(f);
      });
    }
  } finally {
    forward.dispose();
  }
  return out;
}
