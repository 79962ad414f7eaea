import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, np, startEngine, tree } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { causalMask, prefixMask } from "../../src/backbone/masks.ts";
import { forward, initTransformer, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { pairedBatch, pairedVocabOfSizes } from "../../src/pipelines/unified.ts";
import { nextTokenLoss } from "../../src/train/losses.ts";
import { Decoder } from "../../src/generate/decode.ts";
import { GREEDY } from "../../src/generate/sampling.ts";
import { greedyByFullForward } from "../helpers/decode.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";

beforeAll(startEngine);

const vocab = pairedVocabOfSizes(6, 8);
const cfg: TransformerConfig = { vocabSize: vocab.size, contextLength: 12, dim: 32, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" };

describe("unified backbone", () => {
  it("prefix mask is bidirectional inside the prefix and causal after it", () => {
    const m = prefixMask(4, 2).astype(np.int32).js();
    expect(m).toEqual([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]);
    expect(causalMask(3).astype(np.int32).js()).toEqual([[1, 0, 0], [1, 1, 0], [1, 1, 1]]);
  });

  it("memorizes a small batch (overfit) and then reproduces it with KV-cached greedy decoding", async () => {
    const captions = [[2], [3], [4], [5]];
    const images = [[0, 1, 2, 3], [4, 5, 6, 7], [7, 6, 5, 4], [3, 2, 1, 0]];
    // every example in both directions
    const caps = [...captions, ...captions];
    const imgs = [...images, ...images];
    const order = [0, 4, 1, 5, 2, 6, 3, 7]; // pairedBatch alternates text→image, image→text
    const trainer = new Trainer(initTransformer(new KeyStream(0), cfg), (p, b) => nextTokenLoss(p as TransformerParams, b as never, cfg), { ...DEFAULT_ADAMW, weightDecay: 0 });
    let first = 0;
    let last = 0;
    for (let step = 0; step < 150; step++) {
      const r = await trainer.step(pairedBatch(vocab, order.map((i) => caps[i]!), order.map((i) => imgs[i]!), [4], cfg, { unconditionalImage: 0, captionSlot: 0, captionWeight: 1 }), 3e-3);
      if (step === 0) first = r.loss;
      last = r.loss;
    }
    expect(first).toBeGreaterThan(1.5);
    expect(last).toBeLessThan(0.05);

    const decoder = new Decoder(trainer.params as TransformerParams, cfg);
    const out = await decoder.generate(
      captions.map((c) => [vocab.special("<bos>"), ...c, vocab.special("<boi>")]),
      4,
      { constraint: () => vocab.allowedMask({ modalities: ["image"] }), sampling: GREEDY },
    );
    expect(out.map((ids) => ids.map((id) => vocab.fromJoint("image", id)))).toEqual(images);
    decoder.dispose();
  });

  it("KV-cached decoding gives the same logits as the full forward pass", async () => {
    const p = initTransformer(new KeyStream(5), { ...cfg, positions: "rope" });
    const rcfg = { ...cfg, positions: "rope" as const };
    const seq = [6, 2, 7, 10, 11];
    const full = forward(tree.ref(p), fromHost(Int32Array.from(seq), [1, 5]), causalMask(5), rcfg);
    const want = full.slice(0, 3).js() as number[]; // logits after the 4-token prompt
    // greedy continuation from a 4-token prompt must start with argmax of the full pass at position 3
    const decoder = new Decoder(p, rcfg);
    const [next] = await decoder.generate([seq.slice(0, 4)], 1, { sampling: GREEDY });
    expect(next[0]).toBe(want.indexOf(Math.max(...want)));
    decoder.dispose();
  });

  it.each(["learned", "rope"] as const)("KV-cached greedy decoding of a batch of 2 (prefill 3, then 12 steps) equals full-forward greedy decoding, %s positions", async (positions) => {
    const c: TransformerConfig = { ...cfg, contextLength: 16, positions };
    const p = initTransformer(new KeyStream(6), c);
    const prompts = [[6, 2, 7], [3, 9, 1]];
    const decoder = new Decoder(p, c);
    const got = await decoder.generate(prompts, 12, { sampling: GREEDY });
    decoder.dispose();
    for (const [i, prompt] of prompts.entries()) expect(got[i]).toEqual(await greedyByFullForward(p, c, prompt, 12));
    expect(new Set(got.flat()).size).toBeGreaterThan(2); // not a degenerate repeat of one token
    tree.dispose(p);
  });

  it("classifier-free guidance draws from ℓ_u + s·(ℓ_c − ℓ_u) of the two prompts' full forward passes", async () => {
    const p = initTransformer(new KeyStream(9), cfg);
    const cond = [6, 2, 3, 7];
    const uncond = [6, 7];
    const last = (seq: number[]) => {
      const logits = forward(tree.ref(p), fromHost(Int32Array.from(seq), [1, seq.length]), causalMask(seq.length), cfg);
      return (logits.slice(0, seq.length - 1).js() as number[]);
    };
    const lc = last(cond);
    const lu = last(uncond);
    const decoder = new Decoder(p, cfg);
    for (const scale of [1, 3, -2]) {
      const mixed = lc.map((c, i) => lu[i] + scale * (c - lu[i]));
      const [[first]] = await decoder.generate([cond], 1, { sampling: GREEDY, guidance: { prompts: [uncond], scale } });
      expect(first).toBe(mixed.indexOf(Math.max(...mixed)));
    }
    // the guided token is fed to both streams: the second guided step matches full passes too
    const scale = 3;
    const [[a, b]] = await decoder.generate([cond], 2, { sampling: GREEDY, guidance: { prompts: [uncond], scale } });
    const lc2 = last([...cond, a]);
    const lu2 = last([...uncond, a]);
    const mixed2 = lc2.map((c, i) => lu2[i] + scale * (c - lu2[i]));
    expect(b).toBe(mixed2.indexOf(Math.max(...mixed2)));
    await expect(decoder.generate([cond], 1, { sampling: GREEDY, guidance: { prompts: [uncond, uncond], scale } })).rejects.toThrow(
      "guidance.prompts has 2 prompts, expected one per prompt (1)",
    );
    decoder.dispose();
  });

  it("bad input fails with clear errors", async () => {
    const p = initTransformer(new KeyStream(1), cfg);
    const decoder = new Decoder(p, cfg);
    await expect(decoder.generate([[6, 99]], 2, { sampling: GREEDY })).rejects.toThrow(`unknown token id 99 at position 1: expected an integer in [0, ${vocab.size - 1}]`);
    await expect(decoder.generate([[6, 2]], 20, { sampling: GREEDY })).rejects.toThrow("exceeds the context of 12");
    expect(() => vocab.fromJoint("image", 3)).toThrow("token 3 is not one of the image tokens");
    decoder.dispose();
  });
});
