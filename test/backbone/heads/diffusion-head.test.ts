import { beforeAll, describe, expect, it } from "vitest";
import { np, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { checkDiffusionHeadConfig, initDiffusionHead, predictNoise, timestepEmbedding, type DiffusionHeadConfig, type DiffusionHeadParams } from "../../../src/backbone/heads/diffusion-head.ts";
import { gradCheck, probe } from "../../helpers/gradcheck.ts";
import { f32, f64, flat } from "../../helpers/fixtures.ts";
import { fixture, maxRelDiff, type Tensor } from "./diffusion-fixture.ts";

beforeAll(startEngine);

const { head } = fixture;
const [n, dx, dz] = [head.t.length, head.config.tokenDim, head.config.conditionDim];

/** The fixture's parameter tree → arrays of `dtype`. */
function params(dtype: "float32" | "float64"): DiffusionHeadParams {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    const o = v as Record<string, unknown>;
    if ("shape" in o && "data" in o) return (dtype === "float64" ? f64 : f32)((o as Tensor).data, (o as Tensor).shape);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
  };
  return walk(head.params) as DiffusionHeadParams;
}

describe("the diffusion head against MAR's SimpleMLPAdaLN (numpy, reference/diffusion.py)", () => {
  it("timestep features: cos half then sin half, max period 10⁴", () => {
    const got = flat(timestepEmbedding(f64(head.t, [n]), head.config.frequencyDim, np.float64));
    const d = maxRelDiff(got, head.timeEmbedding);
    console.log(`timestep embedding: max difference ${d.toExponential(2)}`);
    // jax-js evaluates sin/cos at float32 precision: at t·ω ≈ 999 one float32 ulp is 6e-5
    expect(d).toBeLessThan(1e-4);
  });

  it.each(["float64", "float32"] as const)("ε̂ for 5 tokens at t = 0 … 999 (%s)", (dtype) => {
    const ctor = dtype === "float64" ? f64 : f32;
    const eps = flat(predictNoise(params(dtype), ctor(head.x, [n, dx]), ctor(head.t, [n]), ctor(head.z, [n, dz])));
    const d = maxRelDiff(eps, head.eps);
    console.log(`head ε̂ (${dtype}): max difference ${d.toExponential(2)} (|ε̂| up to ${Math.max(...head.eps.map(Math.abs)).toFixed(2)})`);
    expect(d).toBeLessThan(dtype === "float64" ? 1e-5 : 1e-4);
  });

  it("takes any leading dims: [B, L, Dx] equals its rows flattened", () => {
    const p = params("float32");
    const flatRows = flat(predictNoise(tree.ref(p), f32(head.x.slice(0, 4 * dx), [4, dx]), f32(head.t.slice(0, 4), [4]), f32(head.z.slice(0, 4 * dz), [4, dz])));
    const y = predictNoise(p, f32(head.x.slice(0, 4 * dx), [2, 2, dx]), f32(head.t.slice(0, 4), [2, 2]), f32(head.z.slice(0, 4 * dz), [2, 2, dz]));
    expect(y.shape).toEqual([2, 2, dx]);
    expect(maxRelDiff(flat(y), flatRows)).toBeLessThan(1e-6);
  });
});

describe("gradients (float64, central differences)", () => {
  it("of ε̂ with respect to every parameter, x_t and z", () => {
    const t = f64(head.t, [n]);
    const f = (p: unknown, x: unknown, z: unknown) => probe(predictNoise(p as DiffusionHeadParams, x as JaxArray, t.ref, z as JaxArray));
    const worst = gradCheck(f as never, [params("float64") as never, f64(head.x, [n, dx]), f64(head.z, [n, dz])], { perLeaf: 4 });
    console.log(`head gradient: worst relative error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-3);
  });
});

describe("initialisation and config", () => {
  const cfg: DiffusionHeadConfig = { tokenDim: 4, conditionDim: 6, width: 16, depth: 3, steps: 1000 };

  it("starts as MAR's: every modulation and the output zero (ε̂ ≡ 0), Xavier linears, 256 timestep features", () => {
    const p = initDiffusionHead(new KeyStream(1), cfg);
    expect(p.blocks).toHaveLength(3);
    expect(p.time.fc1.w.shape).toEqual([256, 16]);
    expect(p.blocks[0]!.ada.w.shape).toEqual([16, 48]);
    expect(p.final.ada.w.shape).toEqual([16, 32]);
    expect(p.final.out.w.shape).toEqual([16, 4]);
    const w = flat(p.input.w.ref);
    const bound = Math.sqrt(6 / (4 + 16));
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.5 * bound);
    const eps = flat(predictNoise(p, f32(new Array(8).fill(0.7), [2, 4]), f32([3, 900], [2]), f32(new Array(12).fill(1), [2, 6])));
    expect(eps).toEqual(new Array(8).fill(0));
  });

  it("is deterministic for a seed", () => {
    const a = flat(initDiffusionHead(new KeyStream(5), cfg).blocks[1]!.fc1.w);
    expect(flat(initDiffusionHead(new KeyStream(5), cfg).blocks[1]!.fc1.w)).toEqual(a);
    expect(flat(initDiffusionHead(new KeyStream(6), cfg).blocks[1]!.fc1.w)).not.toEqual(a);
  });

  it("bad configs give clear errors", () => {
    const bad = (patch: Record<string, unknown>) => () => checkDiffusionHeadConfig({ ...cfg, ...patch });
    expect(bad({ width: 0 })).toThrow("diffusion head config.width: expected an integer in [1, 16384], got 0");
    expect(bad({ depth: 1.5 })).toThrow("diffusion head config.depth: expected an integer in [1, 256], got 1.5");
    expect(bad({ tokenDim: "4" })).toThrow('diffusion head config.tokenDim: expected an integer in [1, 65536], got "4"');
    expect(bad({ steps: 0 })).toThrow("diffusion head config.steps: expected an integer T in [1, 1048576], got 0");
    expect(bad({ frequencyDim: 7 })).toThrow("diffusion head config.frequencyDim: expected an even integer in [2, 16384] (cos and sin halves), got 7");
    expect(bad({ widht: 8 })).toThrow('diffusion head config: unknown field "widht" (valid: tokenDim, conditionDim, width, depth, steps, frequencyDim)');
    expect(() => checkDiffusionHeadConfig(null)).toThrow("diffusion head config: expected an object, got null");
    expect(() => initDiffusionHead(new KeyStream(0), { ...cfg, conditionDim: -1 })).toThrow("conditionDim");
  });

  it("bad inputs name the expected and actual shapes", () => {
    const p = initDiffusionHead(new KeyStream(1), cfg);
    const call = (x: number[], t: number[], z: number[]) => () => predictNoise(tree.ref(p), np.zeros(x), np.zeros(t), np.zeros(z));
    expect(call([2, 5], [2], [2, 6])).toThrow("predictNoise: expected x_t [..., 4], got [2, 5]");
    expect(call([2, 4], [2], [3, 6])).toThrow("predictNoise: expected z [2, 6] (x_t's leading dims, then Dz), got [3, 6]");
    expect(call([2, 4], [2, 1], [2, 6])).toThrow("predictNoise: expected t [2] (one timestep per token), got [2, 1]");
    tree.dispose(p);
  });
});
