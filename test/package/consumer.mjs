// Runs inside a fresh project that installed mmntp's `npm pack` tarball (test/package/pack.test.ts):
// plain `node`, no tsx, the package's compiled dist/ and its bundled engine. Does real work with
// known answers and prints one JSON line of what it found; the test compares.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import * as mmntp from "mmntp";
import * as browser from "mmntp/browser";

const facts = {};
await mmntp.startEngine();

// Which files Node picked: the package's dist/ and the jax-js copy bundled inside it.
const entry = import.meta.resolve("mmntp");
const jaxEntry = createRequire(entry).resolve("@jax-js/jax");
facts.files = {
  entry: fileURLToPath(entry),
  browser: fileURLToPath(import.meta.resolve("mmntp/browser")),
  jax: jaxEntry,
  jaxVersion: JSON.parse(readFileSync(new URL("../package.json", `file://${jaxEntry}`), "utf8")).version,
};
facts.native = mmntp.nativeStats().enabled;

// Engine: d/dx Σ x² = 2x, jitted.
const { np, jit, grad } = mmntp;
const g = jit(grad((x) => np.sum(np.multiply(x.ref, x))));
facts.grad = Array.from(await g(np.array([1, 2, 3])).data());
g.dispose();

// The layout compiler: <bos> text(padded to 3) <boi> 2×2 image <eoi> <eos> over a 10-word text
// vocabulary, 4 specials and 16 image codes (joint image ids start at 10 + 4 = 14).
const vocab = mmntp.JointVocab.build({
  text: { size: 10, pad: 0 },
  specials: ["<bos>", "<boi>", "<eoi>", "<eos>"],
  modalities: [{ name: "image", size: 16, begin: "<boi>", end: "<eoi>" }],
});
const compiled = mmntp.compileSequence(vocab, {
  segments: [
    { kind: "special", name: "<bos>" },
    { kind: "text", ids: [3, 4], padTo: 3 },
    { kind: "block", modality: "image", shape: [2, 2], ids: [0, 1, 2, 15] },
    { kind: "special", name: "<eos>" },
  ],
});
facts.layoutIds = Array.from(compiled.ids);

// The image tokenizer: one embedded MNIST digit through the demo's VQ-VAE (random weights, seed 0),
// then save → safetensors bytes → load, which must give the same ids.
const digits = mmntp.loadMnist();
const image = { data: digits.images.slice(0, 784), channels: 1, height: 28, width: 28 };
const tok = mmntp.AutoencoderTokenizer.init(mmntp.MNIST_VQVAE, 0);
const [ids] = await tok.encode([image]);
const [decoded] = await tok.decode([ids]);
const saved = await tok.save();
const bytes = mmntp.encodeSafetensors(saved.tensors);
const reloaded = mmntp.AutoencoderTokenizer.fromSaved({ ...saved, tensors: mmntp.decodeSafetensors(bytes).tensors });
const [again] = await reloaded.encode([image]);
const pixels = Array.from(decoded.data);
facts.image = {
  shape: ids.shape,
  ids: Array.from(ids.ids),
  reloadedIds: Array.from(again.ids),
  decoded: [decoded.channels, decoded.height, decoded.width],
  pixelRange: [Math.min(...pixels), Math.max(...pixels)],
  tensors: Object.keys(saved.tensors).length,
};
tok.dispose();
reloaded.dispose();

// Text: train a word-level tokenizer with HF's native binding, read it back with the JS reader.
const json = await mmntp.trainTextTokenizer(["a handwritten one", "a handwritten two"]);
facts.textIds = mmntp.TextTokenizer.fromJSON(json).encodeText("a handwritten two");

// Decoding: greedy tokens of a random tiny backbone from the jitted Decoder and, where the addon
// builds (its native/*.c compile inside the installed package), from NativeDecoder.
const cfg = { vocabSize: 20, contextLength: 12, dim: 16, layers: 1, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" };
const keys = new mmntp.KeyStream(4);
const params = mmntp.initTransformer(keys, cfg);
keys.dispose();
const jitted = new mmntp.Decoder(params, cfg);
facts.decode = { jitted: (await jitted.generate([[1, 2]], 6, { sampling: mmntp.GREEDY }))[0], nativeMissing: mmntp.nativeDecoderMissing() ?? null };
jitted.dispose();
if (facts.decode.nativeMissing === null) {
  const native = await mmntp.NativeDecoder.create(params, cfg);
  facts.decode.native = (await native.generate([[1, 2]], 6, { sampling: mmntp.GREEDY }))[0];
  native.dispose();
}

// "mmntp/browser": the same classes as the Node entry (one module graph), minus the Node-only parts.
const statics = (c) => Object.getOwnPropertyNames(c).sort();
const methods = (c) => Object.getOwnPropertyNames(c.prototype).sort();
facts.browser = {
  sameClass: browser.AutoencoderTokenizer === mmntp.AutoencoderTokenizer,
  statics: statics(browser.AutoencoderTokenizer),
  methods: methods(browser.AutoencoderTokenizer),
  nodeStatics: statics(mmntp.AutoencoderTokenizer),
  nodeMethods: methods(mmntp.AutoencoderTokenizer),
  // names the browser entry exports whose value differs in the Node entry (expected: none)
  differing: Object.keys(browser).filter((k) => browser[k] !== mmntp[k]),
  nodeOnly: ["loadMnist", "runDemo", "saveCheckpoint", "trainTextTokenizer"].filter((k) => k in browser),
};

console.log(JSON.stringify(facts));
await mmntp.shutdownEngineWorkers();
