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
import { trainAutoencoder } from "../../../src/train/autoencoder.ts";
import { vqAdapter } from "../../../src/tokenizers/quantizers/registry.ts";
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
    const tok = new AutoencoderTokenizer(p, { ...AE, quantizer: SETUPS[name].quantizer });
    const hostIds = await tok.encodeImages(loadMnist().images.slice(0, N * 784), N);
    expect(Array.from(hostIds)).toEqual(idList);
    expect(tok.tokenShape.reduce((a, b) => a * b, 1)).toBe(q.tokensPerImage);
    expect(maxDiff(Array.from(await tok.decodeImages(hostIds, N)), decoded)).toBeLessThan(1e-5);
    await expect(tok.decodeImages(new Int32Array(N * q.tokensPerImage).fill(q.codebookSize), N)).rejects.toThrow(`unknown ${q.name} token id ${q.codebookSize}`);
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

  it("refuses codebook remedies for a quantizer without a learned codebook", async () => {
    const q = SETUPS.fsq.adapter(latentGrid(AE));
    await expect(trainAutoencoder(set, AE, q, { steps: 1, batchSize: 8, lr: 1e-3, seed: 0, restartEvery: 5, kmeansInit: false })).rejects.toThrow(
      'quantizer "fsq" has no learned codebook; kmeansInit and restartEvery need one',
    );
  });
});

describe("token grids", () => {
  const base = { height: 28, width: 28, channels: [4, 8] as [number, number], output: "linear" as const, quantizer: { name: "vq" as const, options: { codebookSize: 16, dim: 4 } } };

  it.each([
    [14, 1, 196],
    [7, 2, 49],
    [4, 3, 16],
  ])("a %i-row grid on 28×28 digits: %i stride-2 stages, %i ids per image, reconstructions at full size", async (grid, stages, tokens) => {
    const tok = AutoencoderTokenizer.init({ ...base, grid }, 0);
    try {
      expect(tok.tokenShape).toEqual([grid, grid]);
      expect(tok.tokensPerImage).toBe(tokens);
      expect(2 + (tok.params.enc.more?.length ?? 0) - (stages === 1 ? 1 : 0)).toBe(stages);
      const ids = await tok.encodeImages(loadMnist().images.slice(0, 2 * 784), 2);
      expect(ids.length).toBe(2 * tokens);
      expect((await tok.decodeImages(ids, 2)).length).toBe(2 * 784);
    } finally {
      tok.dispose();
    }
  });

  it("grid 7 on 28×28 is the default model, weight for weight", async () => {
    const [a, b] = [AutoencoderTokenizer.init(base, 3), AutoencoderTokenizer.init({ ...base, grid: 7 }, 3)];
    try {
      const [sa, sb] = [await a.save(), await b.save()];
      expect(Object.keys(sb.tensors)).toEqual(Object.keys(sa.tensors));
      for (const k of Object.keys(sa.tensors)) expect(sb.tensors[k]!.data).toEqual(sa.tensors[k]!.data);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it("trains at a 4×4 grid (odd sides: 3×3 kernels): the loss falls", async () => {
    const { train } = splitTrainTest(loadMnist(), { testSize: 100, seed: 0 });
    const cfg = { ...base, grid: 4 };
    const losses: number[] = [];
    const p = await trainAutoencoder(train, cfg, vqAdapter({ ...DEFAULT_VQ, codebookSize: 16, dim: 4 }, latentGrid(cfg)), { steps: 60, batchSize: 16, lr: 5e-3, seed: 0, restartEvery: 0, kmeansInit: true }, (_, f) => losses.push(f.recon!));
    tree.dispose(p as never);
    expect(losses.slice(-5).reduce((a, b) => a + b) / 5).toBeLessThan(0.6 * losses[0]!);
  });

  it("refuses a grid the stages cannot make, or sides that halve unevenly, naming the options", () => {
    expect(() => AutoencoderTokenizer.init({ ...base, grid: 5 }, 0)).toThrow("grid: a 5-row grid does not divide 28-row images: each stride-2 stage halves a side (28 → 14 → 7 → 4), so grid must be one of 14, 7, 4");
    expect(() => AutoencoderTokenizer.init({ ...base, width: 30, grid: 4 }, 0)).toThrow("28×30 images halve unevenly: stage 2 reads sides 14 and 15");
    expect(() => AutoencoderTokenizer.init({ ...base, height: 30, width: 30, grid: 8 }, 0)).not.toThrow();
  });
});
