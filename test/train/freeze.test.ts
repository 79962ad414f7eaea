import { beforeAll, describe, expect, it } from "vitest";
import { nn, np, startEngine, tree, type Array as JaxArray } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { initProjector, projectFeatures, type ProjectorParams } from "../../src/backbone/adapters/projector.ts";
import { flattenTree } from "../../src/io/tree.ts";
import { initViT, meanPool, vitEncode, type ViTConfig, type ViTParams } from "../../src/tokenizers/continuous/vit.ts";
import { FrozenTrainer, matchesPattern, splitParams } from "../../src/train/freeze.ts";
import type { Params } from "../../src/train/optim.ts";
import { f32, flat, ints } from "../helpers/fixtures.ts";
import { uniformValues } from "../helpers/values.ts";

beforeAll(startEngine);

/** A params-shaped tree of scalars: an encoder, a backbone with two blocks, a projector. */
const model = () => {
  const a = () => np.zeros([1]);
  const block = () => ({ ln: { g: a(), b: a() }, attn: { qkv: { w: a(), b: a() } }, mlp: { up: { w: a() } } });
  return { encoder: { embed: { w: a() }, pos: a() }, backbone: { tok: { table: a() }, blocks: [block(), block()] }, projector: { fc1: { w: a(), b: a() } } };
};
const paths = (t: Params) => Object.keys(flattenTree<JaxArray>(t as never));

describe("parameter-path patterns", () => {
  it.each([
    ["encoder.**", "encoder.embed.w", true],
    ["encoder.**", "encoders.embed.w", false],
    ["encoder.*", "encoder.pos", true],
    ["encoder.*", "encoder.embed.w", false],
    ["backbone.blocks.*.attn.**", "backbone.blocks.1.attn.qkv.b", true],
    ["backbone.blocks.*.attn.**", "backbone.blocks.1.mlp.up.w", false],
    ["**.b", "backbone.blocks.0.ln.b", true],
    ["**.b", "backbone.blocks.0.ln.g", false],
    ["**", "anything.at.all", true],
    ["a.**.w", "a.w", true],
    ["a.**.w", "a.x.y.w", true],
    ["a.**.w", "a.x.y.b", false],
  ])("%s ~ %s: %s", (pattern, path, want) => {
    expect(matchesPattern(pattern, path)).toBe(want);
  });

  it("refuses malformed patterns", () => {
    expect(() => matchesPattern("encoder.", "encoder.w")).toThrow('splitParams: bad pattern "encoder."');
    expect(() => matchesPattern("enc*.w", "encoder.w")).toThrow('bad pattern "enc*.w": expected dotted names, with "*" for one segment and "**" for any number');
  });
});

describe("splitParams", () => {
  it("splits by pattern, keeping paths and order; merge gives back the very same tree", () => {
    const params = model();
    const before = tree.leaves(params);
    const s = splitParams(params, ["encoder.**", "backbone.blocks.*.attn.**", "backbone.tok.*"]);
    expect(s.frozenPaths).toEqual(["encoder.embed.w", "encoder.pos", "backbone.tok.table", "backbone.blocks.0.attn.qkv.w", "backbone.blocks.0.attn.qkv.b", "backbone.blocks.1.attn.qkv.w", "backbone.blocks.1.attn.qkv.b"]);
    expect(s.trainablePaths).toEqual(paths(params).filter((p) => !s.frozenPaths.includes(p)));
    expect(paths(s.frozen)).toEqual(s.frozenPaths);
    expect(paths(s.trainable)).toEqual(s.trainablePaths); // paths kept: blocks stay an array
    const merged = s.merge(s.trainable, s.frozen);
    expect(tree.structure(merged).equals(tree.structure(params))).toBe(true);
    expect(tree.leaves(merged).every((a, i) => a === before[i])).toBe(true);
    tree.dispose(params);
  });

  it("an array element wholly on one side is {} on the other (pytrees hold no undefined)", () => {
    const params = model();
    const s = splitParams(params, ["backbone.blocks.0.**"]);
    const blocks = (s.trainable as { backbone: { blocks: Params[] } }).backbone.blocks;
    expect(blocks.length).toBe(2);
    expect(blocks[0]).toEqual({});
    expect(paths(s.frozen)).toEqual(["backbone.blocks.0.ln.g", "backbone.blocks.0.ln.b", "backbone.blocks.0.attn.qkv.w", "backbone.blocks.0.attn.qkv.b", "backbone.blocks.0.mlp.up.w"]);
    const before = tree.leaves(params);
    expect(tree.leaves(s.merge(s.trainable, s.frozen)).every((a, i) => a === before[i])).toBe(true);
    tree.dispose(params);
  });

  it('select: "trainable" names what trains (alignment pre-training: only the projector)', () => {
    const params = model();
    const s = splitParams(params, ["projector.**"], { select: "trainable" });
    expect(s.trainablePaths).toEqual(["projector.fc1.w", "projector.fc1.b"]);
    expect(s.frozenPaths.length).toBe(paths(params).length - 2);
    expect(Object.keys(s.frozen)).toEqual(["encoder", "backbone"]);
    tree.dispose(params);
  });

  it("a pattern that matches nothing is an error naming it and listing the top-level paths", () => {
    const params = model();
    expect(() => splitParams(params, ["encoder.**", "vision.**"])).toThrow('splitParams: pattern "vision.**" matches no parameter (top-level paths: encoder, backbone, projector)');
    expect(() => splitParams(params, ["backbone.blocks.2.**", "decoder"])).toThrow('patterns "backbone.blocks.2.**", "decoder" match no parameter');
    expect(() => splitParams(params, [])).not.toThrow();
    const merge = splitParams(params, ["encoder.**"]).merge;
    expect(() => merge({}, {})).toThrow("merge: expected 13 trainable and 2 frozen tensors, got 0 and 0");
    tree.dispose(params);
  });
});

describe("FrozenTrainer", () => {
  const cfg: ViTConfig = { height: 8, width: 8, channels: 1, patch: 4, dim: 8, layers: 1, heads: 2, mlpRatio: 2 };
  type P = { encoder: ViTParams; projector: ProjectorParams };
  const init = (): P => {
    const keys = new KeyStream(3);
    const p = { encoder: initViT(keys, cfg), projector: initProjector(keys, { kind: "mlp", inputDim: 8, dim: 4 }) };
    keys.dispose();
    return p;
  };
  const loss = (p: P, b: { images: JaxArray; labels: JaxArray }): [JaxArray, Record<string, JaxArray>] => {
    const logp = nn.logSoftmax(projectFeatures(p.projector, meanPool(vitEncode(p.encoder, b.images, cfg))), -1);
    return [logp.mul(nn.oneHot(b.labels, 4).astype(np.float32)).sum(-1).mean().mul(-1), {}];
  };
  const batch = () => ({ images: f32(uniformValues(8 * 64, 9), [8, 1, 8, 8]), labels: ints([0, 1, 2, 3, 0, 1, 2, 3], [8]) });
  const values = (t: Params) => Object.fromEntries(Object.entries(flattenTree<JaxArray>(t as never)).map(([k, a]) => [k, Array.from(a.ref.dataSync() as Float32Array)]));

  it.each([
    [["encoder.**"], {}],
    [["projector.**"], { select: "trainable" as const }],
    [["encoder.blocks.*.attn.**", "encoder.pos"], {}],
  ])("after Trainer steps, every frozen tensor (%j) is bit-identical and every trainable one changed", async (patterns, opts) => {
    const params = init();
    const start = values(params);
    const trainer = new FrozenTrainer(params, patterns, (p, b) => loss(p as P, b as never), undefined, opts);
    const first = (await trainer.step(batch(), 1e-2)).loss;
    let last = first;
    for (let s = 0; s < 9; s++) last = (await trainer.step(batch(), 1e-2)).loss;
    expect(last).toBeLessThan(first);
    const after = values(trainer.params);
    expect(Object.keys(after)).toEqual(Object.keys(start)); // the merged tree is the model's tree
    const frozen = new Set(trainer.split.frozenPaths);
    expect(frozen.size).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(after)) {
      expect(frozen.has(k), k).toBe(patterns.some((p) => matchesPattern(p, k)) !== ("select" in opts));
      if (frozen.has(k)) expect(v, `frozen ${k}`).toEqual(start[k]);
      else expect(v, `trainable ${k}`).not.toEqual(start[k]);
    }
    const out = trainer.release() as P;
    expect(flat(out.encoder.pos.ref)).toEqual(after["encoder.pos"]);
    tree.dispose(out);
  });

  it("keeps no extra references: once disposed, its frozen and trained arrays are freed", async () => {
    const trainer = new FrozenTrainer(init(), ["encoder.**"], (p, b) => loss(p as P, b as never));
    for (let s = 0; s < 3; s++) await trainer.step(batch(), 1e-2);
    const frozenLeaf = (trainer.frozen as P).encoder.pos;
    const trainedLeaf = (trainer.trainable as P).projector.fc1.w;
    expect(frozenLeaf.refCount).toBe(1);
    expect(trainedLeaf.refCount).toBe(1);
    trainer.dispose();
    expect(() => frozenLeaf.dataSync()).toThrow("freed");
    expect(() => trainedLeaf.dataSync()).toThrow("freed");
  });

  it("refuses patterns that leave nothing to train", () => {
    expect(() => new FrozenTrainer(init(), ["**"], (p, b) => loss(p as P, b as never))).toThrow('FrozenTrainer: patterns "**" leave nothing to train (all 21 tensors frozen)');
  });
});
