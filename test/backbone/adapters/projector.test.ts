import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, grad, nn, np, random, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { checkProjectorConfig, initProjector, projectFeatures, type ProjectorKind, type ProjectorParams } from "../../../src/backbone/adapters/projector.ts";
import { causalMask } from "../../../src/backbone/masks.ts";
import { compileSequence } from "../../../src/backbone/sequence/compile.ts";
import { JointVocab } from "../../../src/backbone/sequence/vocab.ts";
import { embedInputs, hidden, initTransformer, type TransformerConfig } from "../../../src/backbone/transformer.ts";
import { linear } from "../../../src/nn/linear.ts";
import { patchify } from "../../../src/tokenizers/continuous/patches.ts";
import { DEFAULT_ADAMW } from "../../../src/train/optim.ts";
import { Trainer } from "../../../src/train/step.ts";
import { gradCheck, probe, toF64 } from "../../helpers/gradcheck.ts";
import { expectClose, f32, flat } from "../../helpers/fixtures.ts";
import { uniformValues } from "../../helpers/values.ts";

beforeAll(startEngine);

const withBiases = (p: ProjectorParams): ProjectorParams => tree.map((a: JaxArray) => a.add(0.1), p) as ProjectorParams;

describe("projectors", () => {
  it("linear: W x + b; mlp: W₂ GELU(W₁ x + b₁) + b₂, [B, N, Din] → [B, N, D]", () => {
    const keys = new KeyStream(0);
    const lin = withBiases(initProjector(keys, { kind: "linear", inputDim: 6, dim: 4 }));
    const two = withBiases(initProjector(keys, { kind: "mlp", inputDim: 6, dim: 4 }));
    keys.dispose();
    expect(Object.keys(lin)).toEqual(["fc1"]);
    expect(two.fc2!.w.shape).toEqual([4, 4]);
    const x = () => f32(uniformValues(2 * 3 * 6, 1), [2, 3, 6]);
    const a = projectFeatures(tree.ref(lin), x());
    expect(a.shape).toEqual([2, 3, 4]);
    expectClose(flat(a), flat(linear(lin.fc1, x())), 1e-6);
    const b = projectFeatures(tree.ref(two), x());
    expectClose(flat(b), flat(linear(two.fc2!, nn.gelu(linear(two.fc1, x())))), 1e-6);
  });

  it.each(["linear", "mlp"] as const)("gradients match finite differences (float64, %s)", (kind: ProjectorKind) => {
    const p = toF64(withBiases(initProjector(new KeyStream(1), { kind, inputDim: 5, dim: 3 })));
    const err = gradCheck((p, x) => probe(projectFeatures(p as ProjectorParams, x as JaxArray)), [p as never, random.normal(random.key(2), [2, 4, 5]).astype(np.float64)]);
    expect(err).toBeLessThan(1e-3);
  });

  it("errors name the field or the shapes", () => {
    expect(() => checkProjectorConfig({ kind: "mlp3", inputDim: 4, dim: 4 })).toThrow('projector config.kind: expected one of linear, mlp, got "mlp3"');
    expect(() => checkProjectorConfig({ kind: "mlp", inputDim: 0, dim: 4 })).toThrow("projector config.inputDim: expected an integer in [1, 65536], got 0");
    const p = initProjector(new KeyStream(0), { kind: "linear", inputDim: 4, dim: 2 });
    expect(() => projectFeatures(p, np.zeros([1, 3, 5]))).toThrow("projector: expected features [B, N, 4], got [1, 3, 5]");
  });

  it("an MLP projector fits 8 fixed feature sets to 8 targets (loss falls ≥ 10×)", async () => {
    const features = f32(uniformValues(8 * 2 * 6, 3), [8, 2, 6]);
    const targets = f32(uniformValues(8 * 2 * 16, 4), [8, 2, 16]);
    const loss = (p: ProjectorParams, b: { x: JaxArray; y: JaxArray }): [JaxArray, Record<string, JaxArray>] => [np.square(projectFeatures(p, b.x).sub(b.y)).mean(), {}];
    const trainer = new Trainer(initProjector(new KeyStream(3), { kind: "mlp", inputDim: 6, dim: 16 }), (p, b) => loss(p as ProjectorParams, b as never), { ...DEFAULT_ADAMW, weightDecay: 0 });
    const losses: number[] = [];
    for (let s = 0; s < 200; s++) losses.push((await trainer.step({ x: features.ref, y: targets.ref }, 1e-2)).loss);
    tree.dispose([features, targets]);
    trainer.dispose();
    expect(losses.at(-1)!, `loss ${losses[0]} → ${losses.at(-1)}`).toBeLessThan(losses[0]! / 10);
  });

  it("the encoder-free route (Fuyu): patches → projector → a layout's placeholder slots → the backbone, gradients reaching the projector", () => {
    const vocab = JointVocab.build({ text: { size: 8, pad: 0 }, specials: ["<bos>", "<image>"], modalities: [], placeholders: ["<image>"] });
    const c = compileSequence(vocab, { segments: [{ kind: "special", name: "<bos>" }, { kind: "placeholder", name: "image", slots: 4, token: "<image>" }, { kind: "text", ids: [3, 5] }] });
    const slots = c.placeholders.flatMap((ph) => Array.from({ length: ph.slots }, (_, i) => ph.start + i));
    const cfg: TransformerConfig = { vocabSize: vocab.size, contextLength: 8, dim: 8, layers: 1, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" };
    const model = initTransformer(new KeyStream(4), cfg);
    const proj = initProjector(new KeyStream(5), { kind: "linear", inputDim: 4, dim: 8 }); // 1×4×4 images in 2×2 patches: N = 4, C·p² = 4
    const images = f32(uniformValues(2 * 16, 6), [2, 1, 4, 4]);
    const t = c.length;
    const ids = () => fromHost(Int32Array.from([...c.ids, ...c.ids]), [2, t]);
    const f = (p: ProjectorParams) => {
      const { tok, head: _h, ...body } = tree.ref(model);
      _h.w.dispose();
      const x = embedInputs(tok, { ids: ids(), embeddings: projectFeatures(p, patchify(images.ref, 2)), slots });
      // a float32 probe: float64 weights on float32 activations give NaN gradients in jax-js 0.1.25
      return hidden(body, x, causalMask(t), cfg).mul(f32(uniformValues(2 * t * 8, 7), [2, t, 8])).sum();
    };
    const g = grad(f)(tree.ref(proj)) as ProjectorParams;
    expect(g.fc1.w.shape).toEqual([4, 8]);
    const gw = flat(g.fc1.w.ref);
    expect(gw.every(Number.isFinite)).toBe(true);
    expect(Math.max(...gw.map(Math.abs))).toBeGreaterThan(1e-4);
    tree.dispose([g, model, proj, images]);
  });
});
