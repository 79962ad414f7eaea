/**
 * VQGAN's auxiliary losses (Esser et al. 2021, taming-transformers' `VQLPIPSWithDiscriminator`)
 * for the auto-encoder tokenizer:
 * - a perceptual loss: LPIPS's form (each layer's features unit-normalized over channels, squared
 *   differences averaged over positions, summed over layers) on a frozen in-project network, the
 *   judge classifier trained on the same images (LPIPS's VGG weights cannot be downloaded here);
 * - a PatchGAN discriminator with the hinge loss, its generator term scaled by the adaptive
 *   weight λ = ‖∇_L L_rec‖ / (‖∇_L L_G‖ + 1e-4) at the decoder's last layer L (clamped to
 *   [0, 10⁴], times `discWeight`), and switched on only from step `discStart`.
 * λ is recomputed every `adaptiveEvery` steps (each costs two extra forward/backward passes) and
 * held between; taming recomputes it every step.
 */
import { grad, jit, lax, nn, np, tree, type Array, type JsTree, type OwnedFunction } from "../engine/index.ts";
import { KeyStream } from "../engine/rng.ts";
import { DEFAULT_ADAMW } from "./optim.ts";
import { Trainer } from "./step.ts";
import { InputError } from "../io/errors.ts";
import { conv2d, initConv2d, type Conv2dParams } from "../nn/conv.ts";
import type { JudgeParams } from "../eval/judge.ts";
import { linear } from "../nn/linear.ts";

export type VqganLosses = {
  /** Weight of the perceptual distance (taming: 1.0). */
  readonly perceptualWeight: number;
  /** Scale of the adaptive weight (taming: disc_weight 0.8 in its configs, 1.0 by default). */
  readonly discWeight: number;
  /** First step the generator sees the discriminator (the discriminator trains from then too). */
  readonly discStart: number;
  /** Steps between recomputations of the adaptive weight. */
  readonly adaptiveEvery: number;
  /** The discriminator's peak learning rate. */
  readonly discLr: number;
};

export const DEFAULT_VQGAN: VqganLosses = { perceptualWeight: 0.1, discWeight: 0.1, discStart: 300, adaptiveEvery: 10, discLr: 2e-4 };

export function checkVqganLosses(v: unknown, where = "vqgan"): asserts v is VqganLosses {
  const x = v as Record<string, unknown> | null;
  if (typeof x !== "object" || x === null) throw new InputError(`${where}: expected an object, got ${JSON.stringify(v)}`);
  for (const k of ["perceptualWeight", "discWeight", "discLr"] as const) {
    if (typeof x[k] !== "number" || !((x[k] as number) >= 0 && (x[k] as number) < 1000)) throw new InputError(`${where}.${k}: expected a number in [0, 1000), got ${JSON.stringify(x[k])}`, { field: k, value: x[k] });
  }
  for (const k of ["discStart", "adaptiveEvery"] as const) {
    if (!Number.isInteger(x[k]) || (x[k] as number) < (k === "adaptiveEvery" ? 1 : 0)) throw new InputError(`${where}.${k}: expected an integer ≥ ${k === "adaptiveEvery" ? 1 : 0}, got ${JSON.stringify(x[k])}`, { field: k, value: x[k] });
  }
}

/** PatchGAN (Isola et al. 2017), scaled to small images: two stride-2 4×4 convs (LeakyReLU 0.2), then one logit per patch. */
export type PatchDiscParams = { c1: Conv2dParams; c2: Conv2dParams; out: Conv2dParams };

export function initPatchDiscriminator(keys: KeyStream, channels: number, width = 32): PatchDiscParams {
  return { c1: initConv2d(keys, channels, width, 4), c2: initConv2d(keys, width, 2 * width, 4), out: initConv2d(keys, 2 * width, 1, 3) };
}

/** images [N, C, H, W] → patch logits [N, 1, H/4, W/4]. Consumes params and images. */
export function patchLogits(p: PatchDiscParams, images: Array): Array {
  let h = nn.leakyRelu(conv2d(p.c1, images, { stride: 2, padding: 1 }), 0.2);
  h = nn.leakyRelu(conv2d(p.c2, h, { stride: 2, padding: 1 }), 0.2);
  return conv2d(p.out, h, { padding: 1 });
}

/** The discriminator's hinge loss ½(E[relu(1 − D(real))] + E[relu(1 + D(fake))]) and its mean logits. */
export function hingeDiscriminatorLoss(p: PatchDiscParams, batch: { real: Array; fake: Array }): [Array, Record<string, Array>] {
  const real = patchLogits(tree.ref(p), batch.real);
  const fake = patchLogits(p, batch.fake);
  const loss = nn.relu(np.ones([]).sub(real.ref)).mean().add(nn.relu(np.ones([]).add(fake.ref)).mean()).mul(0.5);
  return [loss, { d_real: real.mean(), d_fake: fake.mean() }];
}

/** The generator's hinge term −E[D(fake)] (the discriminator frozen: no gradient reaches it). */
export function generatorLoss(p: PatchDiscParams, fake: Array): Array {
  return patchLogits(tree.map(lax.stopGradient, p) as PatchDiscParams, fake).mean().mul(-1);
}

/** The judge's activations layer by layer: after each conv and after the hidden linear layer. Consumes params and images. */
function judgeLayers(p: JudgeParams, images: Array): Array[] {
  const h1 = nn.relu(conv2d(p.c1, images, { stride: 2, padding: 1 }));
  const h2 = nn.relu(conv2d(p.c2, h1.ref, { stride: 2, padding: 1 }));
  const f = nn.relu(linear(p.fc, h2.ref.reshape([h2.shape[0]!, -1])));
  tree.dispose(p.out);
  return [h1, h2, f.reshape([f.shape[0]!, f.shape[1]!, 1, 1])];
}

/**
 * LPIPS-form distance of images a and b [N, C, H, W] on the frozen network `p`: for each layer,
 * features unit-normalized over channels, squared difference summed over channels, averaged
 * over positions and images; summed over layers (LPIPS's learned per-channel weights are 1).
 */
export function perceptualDistance(p: JudgeParams, a: Array, b: Array): Array {
  const frozen = tree.map(lax.stopGradient, p) as JudgeParams;
  const fa = judgeLayers(tree.ref(frozen), a);
  const fb = judgeLayers(frozen, b);
  const unit = (x: Array) => x.ref.div(np.sqrt(np.square(x).sum(1, { keepdims: true })).add(1e-10));
  let total: Array | undefined;
  fa.forEach((x, i) => {
    const d = np.square(unit(x).sub(unit(fb[i]!))).sum(1).mean();
    total = total ? total.add(d) : d;
  });
  return total!;
}

/**
 * The adaptive weight ‖∇_w rec(w)‖ / (‖∇_w gan(w)‖ + 1e-4), clamped to [0, 10⁴] and without
 * gradient, at the decoder's last weight w. `rec` and `gan` take w and return scalar losses.
 */
export function adaptiveWeight(w: Array, rec: (w: Array) => Array, gan: (w: Array) => Array): Array {
  const norm = (g: Array) => np.sqrt(np.square(g).sum());
  const gRec = norm(grad(rec)(w.ref));
  const gGan = norm(grad(gan)(w));
  return lax.stopGradient(np.clip(gRec.div(gGan.add(1e-4)), 0, 1e4));
}

/** What the generator's step reads of the VQGAN losses: the frozen networks and the current GAN weight. */
export type VqganBatch = { disc: PatchDiscParams; perceptual?: JudgeParams; ganWeight: Array };

/** The generator's image terms for `autoencoderLoss`: perceptual distance and λ-weighted hinge term. */
export function vqganImageTerm(v: VqganLosses, b: VqganBatch): (recon: Array, target: Array) => [Array, Record<string, Array>] {
  return (recon, target) => {
    const g = generatorLoss(b.disc, recon.ref);
    let term = g.ref.mul(b.ganWeight);
    const metrics: Record<string, Array> = { g_loss: g };
    if (b.perceptual) {
      const d = perceptualDistance(b.perceptual, recon, target);
      term = term.add(d.ref.mul(v.perceptualWeight));
      metrics.perceptual = d;
    } else {
      recon.dispose();
      target.dispose();
    }
    return [term, metrics];
  };
}

/**
 * The discriminator side of VQGAN training: its params and AdamW state (β = 0.5, 0.9 as taming),
 * the adaptive weight λ and when it was last computed. `state()`/`restore()` carry it through
 * a checkpoint. The generator's step gets `batch(step)`; after it, `afterStep` trains D on the
 * batch's real images against the reconstructions, once the discriminator has started.
 */
export class VqganTraining {
  readonly #disc: Trainer<{ real: Array; fake: Array }>;
  readonly #lambda: OwnedFunction<(p: JsTree<Array>, disc: PatchDiscParams, perceptual: JsTree<Array>, images: Array, target: Array) => Array>;
  lambda = 0;

  constructor(
    readonly v: VqganLosses,
    channels: number,
    seed: number,
    readonly perceptual: JudgeParams | undefined,
    /** From the generator's params and a batch: its decoder as a function of the last weight w, that w, and a clean-up. */
    reconstruct: (p: JsTree<Array>, images: Array) => { decode: (w: Array) => Array; w: Array; done: () => void },
  ) {
    if (v.perceptualWeight > 0 && !perceptual) throw new Error("VqganTraining: a perceptual weight needs the frozen feature network");
    const keys = new KeyStream(seed + 104_729);
    this.#disc = new Trainer(initPatchDiscriminator(keys, channels) as never, (p, b) => hingeDiscriminatorLoss(p as PatchDiscParams, b as never), { ...DEFAULT_ADAMW, beta1: 0.5, beta2: 0.9, weightDecay: 0 }, { label: "the patch discriminator" });
    keys.dispose();
    this.#lambda = jit((p: JsTree<Array>, disc: PatchDiscParams, perc: JsTree<Array>, images: Array, target: Array) => {
      const { decode, w, done } = reconstruct(p, images);
      const rec = (wi: Array) => {
        const y = decode(wi);
        const mse = np.square(y.ref.sub(target.ref)).mean();
        return this.perceptual ? mse.add(perceptualDistance(tree.ref(perc) as JudgeParams, y, target.ref).mul(v.perceptualWeight)) : (y.dispose(), mse);
      };
      const gan = (wi: Array) => generatorLoss(tree.ref(disc), decode(wi));
      const lambda = adaptiveWeight(w, rec, gan).mul(v.discWeight);
      done();
      tree.dispose([disc, perc, target] as never);
      return lambda;
    });
  }

  /** The generator step's VQGAN fields at `step` (λ is 0 before the discriminator starts). */
  batch(step: number): VqganBatch {
    const on = step >= this.v.discStart;
    return { disc: tree.ref(this.#disc.params) as PatchDiscParams, ...(this.perceptual && { perceptual: tree.ref(this.perceptual) }), ganWeight: np.array(on ? this.lambda : 0) };
  }

  /** Before the generator's step: recompute λ when it is due. Borrows params; consumes images and target. */
  async beforeStep(step: number, params: JsTree<Array>, images: Array, target: Array): Promise<void> {
    if (step < this.v.discStart || (step - this.v.discStart) % this.v.adaptiveEvery !== 0) return void tree.dispose([images, target]);
    const perc = (this.perceptual ? tree.ref(this.perceptual) : {}) as JsTree<Array>;
    this.lambda = (await this.#lambda(tree.ref(params), tree.ref(this.#disc.params) as PatchDiscParams, perc, images, target).data())[0]!;
  }

  /** After the generator's step: one discriminator step on real [B, C, H, W] against fake (host), once started. */
  async afterStep(step: number, lr: number, real: Array, fake: Array): Promise<Record<string, number>> {
    if (step < this.v.discStart) return void tree.dispose([real, fake]), {};
    const r = await this.#disc.step({ real, fake }, lr);
    return { d_loss: r.loss, ...r.metrics, lambda: this.lambda };
  }

  /** The discriminator's params and AdamW state, for a checkpoint. Borrows them. */
  live(): JsTree<Array> {
    return { params: this.#disc.params, opt: this.#disc.opt as unknown as JsTree<Array> };
  }

  /** Take over a saved state (the caller has freed the one `live()` lent it). */
  restore(s: { params: JsTree<Array>; opt: JsTree<Array> }, lambda: number): void {
    [this.#disc.params, this.#disc.opt] = [s.params, s.opt as never];
    this.lambda = lambda;
  }

  dispose(): void {
    this.#disc.dispose();
    this.#lambda.dispose();
  }
}
