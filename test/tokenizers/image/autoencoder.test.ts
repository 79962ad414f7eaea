import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, jit, np, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { loadMnist, splitTrainTest } from "../../../src/data/mnist.ts";
import {
  AutoencoderTokenizer,
  decodeCodes,
  decodeIds,
  encodeIds,
  encodeLatents,
  initAutoencoder,
  initDecoder,
  latentGrid,
  type EncoderParams,
} from "../../../src/tokenizers/image/autoencoder.ts";
import { trainAutoencoder } from "../../../src/tokenizers/image/train-vqvae.ts";
import { vqAdapter } from "../../../src/tokenizers/image/vqvae.ts";
import { DEFAULT_VQ } from "../../../src/tokenizers/quantizers/vq.ts";
import { AE, SETUPS } from "../../../src/experiments/quantizers.ts";
import { QUANTIZER_NAMES } from "../../../src/experiments/quantizers-config.ts";

beforeAll(startEngine);

const N = 3;
const images = () => fromHost(loadMnist().images.slice(0, N * 784), [N, 1, 28, 28]);
const host = (a: JaxArray) => Array.from(a.dataSync() as Float32Array | Int32Array);
const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe("auto-encoder quantizer adapters", () => {
  it.each(QUANTIZER_NAMES)("%s: ids lay out as [N, T] and decode(encode(x)) is the decoder applied to the training forward's codes", async (name) => {
    const q = SETUPS[name].adapter(latentGrid(AE));
    const keys = new KeyStream(1);
    const p = initAutoencoder(keys, AE, q);
    keys.dispose();
    // The training forward: latents → quantize → codes → decoder.
    const r = q.quantize(tree.ref(p.quantizer), encodeLatents(tree.ref(p.enc), images()));
    tree.dispose([r.losses, r.stats]);
    expect(r.indices.shape).toEqual([N, q.tokensPerImage]);
    expect(r.codes.shape).toEqual([N, 7, 7, q.latentDim]);
    const forward = host(decodeCodes(tree.ref(p.dec), r.codes.ref, AE));

    // indicesToCodes inverts the flat id layout back to the latent grid.
    const codes = q.indicesToCodes(tree.ref(p.quantizer), r.indices.ref);
    expect(maxDiff(host(codes), host(r.codes))).toBeLessThan(1e-5);

    const ids = encodeIds(tree.ref(p), images(), q);
    const idList = host(ids.ref);
    expect(idList).toEqual(host(r.indices));
    expect(idList.every((id) => Number.isInteger(id) && id >= 0 && id < q.codebookSize)).toBe(true);
    const decoded = host(decodeIds(tree.ref(p), ids, q, AE));
    expect(decoded.length).toBe(N * 784);
    // The linear head's training output is unclipped; decoded images are clipped to [0, 1].
    expect(maxDiff(decoded, forward.map((v) => Math.min(1, Math.max(0, v))))).toBeLessThan(1e-5);

    // The jitted host tokenizer agrees with the eager functions.
    const tok = new AutoencoderTokenizer(p, AE, q);
    const hostIds = await tok.encode(loadMnist().images.slice(0, N * 784), N);
    expect(Array.from(hostIds)).toEqual(idList);
    expect(maxDiff(Array.from(await tok.decode(hostIds, N)), decoded)).toBeLessThan(1e-5);
    await expect(tok.decode(new Int32Array(N * q.tokensPerImage).fill(q.codebookSize), N)).rejects.toThrow(`unknown ${q.name} token id ${q.codebookSize}`);
    tok.dispose();
  });
});

describe("output head", () => {
  it("rejects an unknown head before touching its arguments", () => {
    const keys = new KeyStream(0);
    const dec = initDecoder(keys, AE, 4);
    keys.dispose();
    const codes = np.zeros([1, 7, 7, 4]);
    expect(() => decodeCodes(dec, codes, { output: "tanh" as never })).toThrow('decodeCodes: output must be one of linear, sigmoid, got "tanh"');
    tree.dispose([dec, codes]);
  });
});

describe("trainAutoencoder", () => {
  const set = { ...loadMnist(), n: 256 };

  it("EMA: keeps the codebook out of the optimizer and moves it by emaUpdate", async () => {
    const q = vqAdapter({ ...DEFAULT_VQ, codebookSize: 64, dim: 16, codebookUpdate: "ema" }, latentGrid(AE));
    const keys = new KeyStream(0);
    const init = initAutoencoder(keys, AE, q);
    keys.dispose();
    const before = host(init.quantizer.codebook.ref);
    tree.dispose(init);
    const fields: Record<string, number>[] = [];
    const p = await trainAutoencoder(set, AE, q, { steps: 2, batchSize: 16, lr: 1e-3, seed: 0, restartEvery: 0, kmeansInit: false }, (_, f) => fields.push(f));
    expect(fields[0]).not.toHaveProperty("codebook"); // no codebook loss under EMA
    expect(fields[1]!.usage).toBeGreaterThan(0);
    const after = host(p.quantizer.codebook.ref);
    expect(after.length).toBe(before.length);
    expect(maxDiff(after, before)).toBeGreaterThan(1e-3);
    tree.dispose(p);
  });

  // docs/experiments/quantizers.md, "Dead runs": FSQ with seed 1 died under the sigmoid head. Just
  // after the lr peak (step 20) its decoder output black and all four latent channels sat in tanh's
  // flat region. Same setup as the experiment's run, cut at step 24; the sigmoid run is the control
  // that shows this setup still reaches the failure.
  it("the linear output head trains where the sigmoid head dies (FSQ, seed 1, 24 steps)", async () => {
    const { train, test } = splitTrainTest(loadMnist(), { testSize: 1500, seed: 0 });
    const n = 200;
    const held = test.images.slice(0, n * 784);
    const blackMse = held.reduce((a, v) => a + v * v, 0) / held.length;
    const run = async (output: "linear" | "sigmoid") => {
      const cfg = { ...AE, output };
      const q = SETUPS.fsq.adapter(latentGrid(cfg));
      const p = await trainAutoencoder(train, cfg, q, { steps: 24, batchSize: 64, lr: 2e-3, seed: 1, restartEvery: 0, kmeansInit: false });
      // Share of held-out latents with |z| > 2 (tanh′(2) ≈ 0.07), per channel; jitted, as eager convs
      // cost seconds here.
      const share = jit((enc: EncoderParams, x: JaxArray) => np.abs(encodeLatents(enc, x)).greater(2).astype(np.float32).reshape([-1, q.latentDim]).mean(0));
      const saturated = Array.from((await share(tree.ref(p.enc), fromHost(held, [n, 1, 28, 28])).data()) as Float32Array);
      share.dispose();
      const tok = new AutoencoderTokenizer(p, cfg, q);
      const recon = await tok.decode(await tok.encode(held, n), n);
      tok.dispose();
      const mse = recon.reduce((a, v, i) => a + (v - held[i]!) ** 2, 0) / held.length;
      return { mse, saturated };
    };
    const sigmoid = await run("sigmoid");
    const linear = await run("linear");
    expect(sigmoid.mse).toBeGreaterThan(0.95 * blackMse); // dead: no better than an all-black image
    expect(Math.min(...sigmoid.saturated)).toBeGreaterThan(0.9);
    expect(linear.mse).toBeLessThan(0.5 * blackMse);
    expect(Math.max(...linear.saturated)).toBeLessThan(0.1);
  }, 60_000);

  it("refuses codebook remedies for a quantizer without a learned codebook", async () => {
    const q = SETUPS.fsq.adapter(latentGrid(AE));
    await expect(trainAutoencoder(set, AE, q, { steps: 1, batchSize: 8, lr: 1e-3, seed: 0, restartEvery: 5, kmeansInit: false })).rejects.toThrow(
      'quantizer "fsq" has no learned codebook; kmeansInit and restartEvery need one',
    );
  });
});
