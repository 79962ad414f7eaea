import { fromHost, tree } from "../../src/engine/index.ts";
import { causalMask } from "../../src/backbone/masks.ts";
import { forward, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";

/**
 * The oracle for KV-cached greedy decoding: `n` tokens after `prompt`, each the argmax of a full
 * forward pass over the whole sequence so far (no cache). Does not consume p.
 */
export async function greedyByFullForward(p: TransformerParams, cfg: TransformerConfig, prompt: readonly number[], n: number): Promise<number[]> {
  const seq = [...prompt];
  for (let i = 0; i < n; i++) {
    const logits = forward(tree.ref(p), fromHost(Int32Array.from(seq), [1, seq.length]), causalMask(seq.length), cfg);
    const last = (await logits.slice([], seq.length - 1).data()) as Float32Array;
    seq.push(last.indexOf(Math.max(...last)));
  }
  return seq.slice(prompt.length);
}
