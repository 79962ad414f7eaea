import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, np, random, startEngine, tree, type Array } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { loadMnist, subset } from "../../src/data/mnist.ts";
import { initJudge } from "../../src/eval/judge.ts";
import { trainAutoencoder, type AutoencoderTrainState } from "../../src/train/autoencoder.ts";
import { adaptiveWeight, checkVqganLosses, generatorLoss, hingeDiscriminatorLoss, initPatchDiscriminator, patchLogits, perceptualDistance } from "../../src/train/vqgan.ts";
import { makeQuantizer } from "../../src/tokenizers/quantizers/registry.ts";

beforeAll(startEngine);

const host = (a: Array) => globalThis.Array.from(a.dataSync() as Float32Array);
const imgs = (seed: number) => random.uniform(random.key(seed), [3, 1, 12, 12]);

describe("VQGAN losses", () => {
  it("hinge: ½(E relu(1 − D(real)) + E relu(1 + D(fake))); the generator's term is −E D(fake)", () => {
    const d = initPatchDiscriminator(new KeyStream(4), 1, 8);
    const [real, fake] = [imgs(1), imgs(2)];
    const lr = host(patchLogits(tree.ref(d), real.ref));
    const lf = host(patchLogits(tree.ref(d), fake.ref));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const want = 0.5 * (mean(lr.map((v) => Math.max(0, 1 - v))) + mean(lf.map((v) => Math.max(0, 1 + v))));
    const g = generatorLoss(tree.ref(d), fake.ref).dataSync()[0]!;
    const [loss, m] = hingeDiscriminatorLoss(d, { real, fake });
    expect(loss.dataSync()[0]).toBeCloseTo(want, 5);
    expect(g).toBeCloseTo(-mean(lf), 5);
    tree.dispose(m);
  });

  it("the adaptive weight is ‖∇rec‖ / (‖∇gan‖ + 1e-4) at w, clamped to [0, 1e4]", () => {
    const w = fromHost(Float32Array.from([1, -2, 0.5]), [3]);
    const a = fromHost(Float32Array.from([0.5, 1, 2]), [3]);
    const b = fromHost(Float32Array.from([3, 0, -4]), [3]);
    // rec = Σ a·w² → ∇ = 2a·w = (1, −4, 2); gan = Σ b·w → ∇ = b, ‖b‖ = 5
    const lambda = adaptiveWeight(w.ref, (x) => a.ref.mul(np.square(x)).sum(), (x) => b.ref.mul(x).sum());
    expect(lambda.dataSync()[0]).toBeCloseTo(Math.sqrt(21) / (5 + 1e-4), 5);
    const zero = fromHost(Float32Array.from([0, 0, 0]), [3]);
    expect(adaptiveWeight(w, (x) => np.square(x).sum().mul(1e6), (x) => zero.ref.mul(x).sum()).dataSync()[0]).toBe(1e4);
    tree.dispose([a, b, zero]);
  });

  it("the perceptual distance is 0 for equal images, symmetric, and grows with the difference", () => {
    const p = initJudge(2, { height: 12, width: 12, channels: 1, classes: 4 });
    const x = imgs(3);
    const same = perceptualDistance(tree.ref(p), x.ref, x.ref).dataSync()[0]!;
    const near = perceptualDistance(tree.ref(p), x.ref, x.ref.add(0.05)).dataSync()[0]!;
    const far = perceptualDistance(tree.ref(p), x.ref, imgs(4)).dataSync()[0]!;
    const back = perceptualDistance(p, imgs(4), x).dataSync()[0]!;
    expect(same).toBeCloseTo(0, 6);
    expect(near).toBeGreaterThan(0);
    expect(far).toBeGreaterThan(near);
    expect(back).toBeCloseTo(far, 5);
  });

  it("checks its settings, naming the field", () => {
    expect(() => checkVqganLosses({ perceptualWeight: 0.1, discWeight: -1, discStart: 0, adaptiveEvery: 1, discLr: 1e-4 })).toThrow("vqgan.discWeight: expected a number in [0, 1000), got -1");
    expect(() => checkVqganLosses({ perceptualWeight: 0.1, discWeight: 1, discStart: 0, adaptiveEvery: 0, discLr: 1e-4 })).toThrow("vqgan.adaptiveEvery: expected an integer ≥ 1, got 0");
  });
});

describe("VQGAN training", () => {
  const set = subset(loadMnist(), globalThis.Array.from({ length: 64 }, (_: unknown, i: number) => i));
  const cfg = { height: 28, width: 28, channels: [4, 8] as [number, number], output: "linear" as const };
  const vqgan = { perceptualWeight: 0.1, discWeight: 0.5, discStart: 4, adaptiveEvery: 3, discLr: 2e-4 };
  const train = { steps: 10, batchSize: 8, lr: 3e-3, seed: 1, restartEvery: 0, kmeansInit: true, vqgan };
  const perceptual = initJudge(5, { height: 28, width: 28, channels: 1, classes: 10 });

  it("starts the discriminator at discStart, recomputes λ every adaptiveEvery steps, and resumes bit-exactly", async () => {
    const fields: Record<string, number>[] = [];
    const states: AutoencoderTrainState[] = [];
    const q = () => makeQuantizer({ name: "vq", options: { codebookSize: 16, dim: 4 } }, [7, 7]);
    const whole = await trainAutoencoder(set, cfg, q(), train, (_, f) => fields.push(f), { perceptual, every: 1, onCheckpoint: (s) => void states.push(s) });
    expect(fields.slice(0, 4).every((f) => f.d_loss === undefined)).toBe(true);
    expect(fields.slice(4).every((f) => Number.isFinite(f.d_loss) && f.lambda! > 0)).toBe(true);
    const lambdas = fields.slice(4).map((f) => f.lambda);
    expect(lambdas[1]).toBe(lambdas[0]);
    expect(lambdas[2]).toBe(lambdas[0]);
    expect(lambdas[3]).not.toBe(lambdas[0]); // recomputed at step 7
    const resumed = await trainAutoencoder(set, cfg, q(), train, undefined, { perceptual, resume: states[5]! });
    const flat = (p: unknown) => tree.leaves(p as never).map((a) => host((a as Array).ref));
    expect(flat(resumed)).toEqual(flat(whole));
    tree.dispose([whole, resumed] as never);
  });
});
