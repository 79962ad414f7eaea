import { beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../../../src/engine/index.ts";
import { loadMnist } from "../../../src/data/mnist.ts";
import { AutoencoderTokenizer, type AutoencoderTokenizerConfig } from "../../../src/tokenizers/image/autoencoder.ts";
import { MNIST_VQVAE } from "../../../src/tokenizers/image/presets.ts";
import { QUANTIZER_NAMES, type QuantizerSpec } from "../../../src/tokenizers/quantizers/registry.ts";
import type { Image } from "../../../src/tokenizers/tokenizer.ts";

beforeAll(startEngine);

const digits = (n: number): Image[] => Array.from({ length: n }, (_, i) => ({ data: loadMnist().images.slice(i * 784, (i + 1) * 784), channels: 1, height: 28, width: 28 }));

/** One small spec per registry name. */
const SPECS: Record<(typeof QUANTIZER_NAMES)[number], QuantizerSpec> = {
  vq: { name: "vq", options: { codebookSize: 32, dim: 8 } },
  rvq: { name: "rvq", options: { levels: 2, codebookSize: 16, dim: 8 } },
  "group-vq": { name: "group-vq", options: { groups: 2, codebookSize: 16, dim: 8 } },
  multiscale: { name: "multiscale", options: { codebookSize: 32, dim: 8, scales: [1, 3, 7] } },
  fsq: { name: "fsq", options: { levels: [5, 5, 4] } },
  lfq: { name: "lfq", options: { dim: 6 } },
  binary: { name: "binary", options: { dim: 8, bitsPerToken: 4 } },
};

describe("the tokenizer contract: AutoencoderTokenizer with every quantizer of the registry", () => {
  it.each(QUANTIZER_NAMES)("%s: encode → ids of tokenShape; save → fromSaved gives the same ids and images", async (name) => {
    const cfg: AutoencoderTokenizerConfig = { ...MNIST_VQVAE, channels: [8, 16], output: "linear", quantizer: SPECS[name] };
    const tok = AutoencoderTokenizer.init(cfg, 3);
    expect(tok.modality).toBe("image");
    const items = digits(3);
    const ids = await tok.encode(items);
    expect(ids.map((t) => t.shape)).toEqual([tok.tokenShape, tok.tokenShape, tok.tokenShape]);
    for (const t of ids) {
      expect(t.ids.length).toBe(tok.tokensPerItem);
      expect(t.ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
    }
    const images = await tok.decode(ids);
    expect(images.map((im) => [im.channels, im.height, im.width])).toEqual([[1, 28, 28], [1, 28, 28], [1, 28, 28]]);

    const saved = await tok.save();
    const back = AutoencoderTokenizer.fromSaved({ ...saved, config: JSON.parse(JSON.stringify(saved.config)) });
    const again = await back.encode(items);
    expect(again.map((t) => Array.from(t.ids))).toEqual(ids.map((t) => Array.from(t.ids)));
    const images2 = await back.decode(ids);
    images2.forEach((im, i) => expect(Array.from(im.data)).toEqual(Array.from(images[i]!.data)));
    tok.dispose();
    back.dispose();
  });

  it("records its quantizer in the saved config, and the config round-trips through JSON", async () => {
    const tok = AutoencoderTokenizer.init(MNIST_VQVAE, 0);
    const saved = await tok.save();
    expect(saved.kind).toBe("autoencoder");
    expect(JSON.parse(JSON.stringify(saved.config))).toEqual(MNIST_VQVAE);
    expect(Object.keys(saved.tensors).some((k) => k === "quantizer.codebook")).toBe(true);
    tok.dispose();
  });

  it("refuses saved weights that are not finite, of the wrong shape, or for another quantizer, naming the tensor", async () => {
    const tok = AutoencoderTokenizer.init(MNIST_VQVAE, 0);
    const saved = await tok.save();
    tok.dispose();
    const book = saved.tensors["quantizer.codebook"]!;
    const nan = Float32Array.from(book.data as Float32Array);
    nan[5] = Number.NaN;
    expect(() => AutoencoderTokenizer.fromSaved({ ...saved, tensors: { ...saved.tensors, "quantizer.codebook": { ...book, data: nan } as never } })).toThrow(
      'tensor "quantizer.codebook" has a non-finite value (NaN) at element 5',
    );
    const other = { ...saved, config: { ...saved.config, quantizer: { name: "vq", options: { codebookSize: 128, dim: 16 } } } };
    expect(() => AutoencoderTokenizer.fromSaved(other)).toThrow('tensor "quantizer.codebook" has shape [256,16], expected [128,16]');
    const fsq = { ...saved, config: { ...saved.config, quantizer: { name: "fsq", options: {} } } };
    expect(() => AutoencoderTokenizer.fromSaved(fsq)).toThrow('unexpected tensor "quantizer.codebook"');
    expect(() => AutoencoderTokenizer.fromSaved({ ...saved, config: { ...saved.config, quantizer: { name: "vqq", options: {} } } })).toThrow(
      'image tokenizer config.quantizer.name: unknown quantizer "vqq"; expected one of vq, rvq, group-vq, multiscale, fsq, lfq, binary',
    );
    expect(() => AutoencoderTokenizer.fromSaved({ ...saved, config: { ...saved.config, quantizer: { name: "vq", options: { codebookSize: 8, dim: 4, bata: 1 } } } })).toThrow(
      'image tokenizer config.quantizer.options.bata: not an option of "vq"; valid: codebookSize, dim, beta',
    );
    expect(() => AutoencoderTokenizer.fromSaved({ ...saved, config: { ...saved.config, height: 30 } })).toThrow("image tokenizer config.height: expected a multiple of 4 in [4, 4096] (two stride-2 convs; or set grid), got 30");
  });

  it("rejects images of the wrong size and ids out of range with clear errors", async () => {
    const tok = AutoencoderTokenizer.init(MNIST_VQVAE, 0);
    await expect(tok.encode([{ data: new Float32Array(900), channels: 1, height: 30, width: 30 }])).rejects.toThrow("image 0 is 1×30×30 (900 values), expected 1×28×28");
    await expect(tok.encodeImages(new Float32Array(900), 1)).rejects.toThrow("expected 1 images of 1×28×28 (784 values), got 900 values");
    await expect(tok.decode([new Int32Array(49).fill(256)])).rejects.toThrow("unknown vq token id 256 at position 0: expected an integer in [0, 255]");
    await expect(tok.decode([new Int32Array(48)])).rejects.toThrow("item 0 has 48 ids, expected 49 ([7, 7])");
    tok.dispose();
  });

  it("takes colour images: 3 channels in, 3 channels out", async () => {
    const tok = AutoencoderTokenizer.init({ ...MNIST_VQVAE, imageChannels: 3, channels: [8, 16] }, 1);
    const rgb: Image = { data: Float32Array.from({ length: 3 * 784 }, (_, i) => (i % 97) / 97), channels: 3, height: 28, width: 28 };
    const [ids] = await tok.encode([rgb]);
    const [out] = await tok.decode([ids!]);
    expect([out!.channels, out!.data.length]).toEqual([3, 3 * 784]);
    tok.dispose();
  });
});
