import { tree, type Array, type JsTree } from "../engine/index.ts";
import { DEFAULT_ADAMW, type AdamWConfig, type Params } from "./optim.ts";
import { Trainer, type LossFn, type StepResult } from "./step.ts";

/**
 * Freezing parameters by path patterns. Alignment pre-training (LLaVA, Liu et al. 2023, §4.2
 * stage 1) trains only the projector, the encoder and language model frozen; BLIP-2 and Flamingo
 * freeze both ends too. A pattern is a dotted path (`io/tree.ts`'s names, e.g.
 * `backbone.blocks.0.attn.qkv.w`) whose segments may be `*` (exactly one segment) or `**` (any
 * number, none included): "encoder.**", "backbone.blocks.*.attn.**", "**.b".
 *
 * `splitParams` cuts a params tree in two, the tensors that match and the rest, keeping each
 * tree's paths (an array with some elements wholly on the other side keeps `{}` in their place,
 * as jax-js pytrees cannot hold `undefined`); `merge` puts the two back in the original order.
 * `FrozenTrainer` trains the trainable part: the frozen one rides into the jitted step with the
 * batch, as an input that is not differentiated (train/autoencoder.ts does so with an EMA codebook).
 */
export type ParamSplit = {
  readonly trainable: Params;
  readonly frozen: Params;
  /** dotted paths of the two parts, in the original tree's order */
  readonly trainablePaths: readonly string[];
  readonly frozenPaths: readonly string[];
  /**
   * The original tree from its two parts (as `splitParams` made them, or trees of the same
   * structure: new params, tracers inside `jit`). Moves the leaves: the result holds the same
   * arrays, nothing is copied or consumed.
   */
  merge(trainable: Params, frozen: Params): Params;
};

/** Which side the patterns name: the tensors to freeze (default) or the ones to train. */
export type SplitOptions = { readonly select?: "frozen" | "trainable" };

const isObject = (x: unknown): x is Record<string, Params> => typeof x === "object" && x !== null && !globalThis.Array.isArray(x) && x.constructor === Object;

function parsePattern(pattern: string): string[] {
  const segs = pattern.split(".");
  if (pattern === "" || segs.some((s) => s === "" || (s.includes("*") && s !== "*" && s !== "**"))) {
    throw new Error(`splitParams: bad pattern ${JSON.stringify(pattern)}: expected dotted names, with "*" for one segment and "**" for any number (e.g. "encoder.**", "blocks.*.attn.**")`);
  }
  return segs;
}

/** Whether the path's segments match the pattern's, `*` one segment and `**` any number. */
function matches(pattern: readonly string[], path: readonly string[]): boolean {
  if (pattern.length === 0) return path.length === 0;
  const [head, ...rest] = pattern;
  if (head === "**") {
    for (let i = 0; i <= path.length; i++) if (matches(rest, path.slice(i))) return true;
    return false;
  }
  return path.length > 0 && (head === "*" || head === path[0]) && matches(rest, path.slice(1));
}

/** Whether the dotted `path` matches the dotted `pattern` (see the file header). */
export function matchesPattern(pattern: string, path: string): boolean {
  return matches(parsePattern(pattern), path.split("."));
}

type Part = Params | undefined;

/** Splits `node` into its selected and unselected parts (undefined when empty), recording each leaf's side. */
function cut(node: Params, path: string[], pick: (path: string[]) => boolean, sides: boolean[], paths: [string[], string[]]): [Part, Part] {
  if (globalThis.Array.isArray(node)) {
    const kids = node.map((c, i) => cut(c as Params, [...path, String(i)], pick, sides, paths));
    const side = (j: 0 | 1): Part => (kids.some((k) => k[j] !== undefined) ? kids.map((k) => k[j] ?? {}) : undefined);
    return [side(0), side(1)];
  }
  if (isObject(node)) {
    const kids = Object.entries(node).map(([k, c]) => [k, cut(c, [...path, k], pick, sides, paths)] as const);
    const side = (j: 0 | 1): Part => {
      const kept = kids.filter(([, parts]) => parts[j] !== undefined);
      return kept.length > 0 ? Object.fromEntries(kept.map(([k, parts]) => [k, parts[j]!])) : undefined;
    };
    return [side(0), side(1)];
  }
  const selected = pick(path);
  sides.push(selected);
  paths[selected ? 0 : 1].push(path.join("."));
  return selected ? [node, undefined] : [undefined, node];
}

/**
 * params → { trainable, frozen, merge }. `patterns` name the frozen tensors (or, with
 * `select: "trainable"`, the trained ones: ["projector.**"]). A pattern that matches no tensor
 * is an error naming it and listing the top-level paths. Moves the leaves into the two parts:
 * they own what `params` owned.
 */
export function splitParams(params: Params, patterns: readonly string[], { select = "frozen" }: SplitOptions = {}): ParamSplit {
  if (select !== "frozen" && select !== "trainable") throw new Error(`splitParams: select must be "frozen" or "trainable", got ${JSON.stringify(select)}`);
  const parsed = patterns.map(parsePattern);
  const used = patterns.map(() => false);
  const pick = (path: string[]) => {
    let hit = false;
    parsed.forEach((p, i) => {
      if (matches(p, path)) hit = used[i] = true;
    });
    return hit;
  };
  const sides: boolean[] = [];
  const paths: [string[], string[]] = [[], []];
  const [sel, rest] = cut(params, [], pick, sides, paths);
  const unused = patterns.filter((_, i) => !used[i]);
  if (unused.length > 0) {
    const top = isObject(params) ? Object.keys(params) : globalThis.Array.isArray(params) ? params.map((_, i) => String(i)) : [];
    const which = unused.map((p) => `"${p}"`).join(", ");
    throw new Error(`splitParams: pattern${unused.length > 1 ? "s" : ""} ${which} match${unused.length > 1 ? "" : "es"} no parameter (top-level paths: ${top.join(", ") || "none"})`);
  }
  const def = tree.structure(params);
  // the selected side is frozen unless the patterns name the trainable tensors
  const frozenSide = select === "frozen";
  const frozenOf = (s: boolean) => s === frozenSide;
  const [frozen, trainable] = frozenSide ? [sel, rest] : [rest, sel];
  const [frozenPaths, trainablePaths] = frozenSide ? paths : [paths[1], paths[0]];
  const nFrozen = sides.filter(frozenOf).length;
  const merge = (t: Params, f: Params): Params => {
    const tl = tree.leaves(t);
    const fl = tree.leaves(f);
    if (tl.length !== sides.length - nFrozen || fl.length !== nFrozen) {
      throw new Error(`merge: expected ${sides.length - nFrozen} trainable and ${nFrozen} frozen tensors, got ${tl.length} and ${fl.length}`);
    }
    let [i, j] = [0, 0];
    return tree.unflatten(def, sides.map((s) => (frozenOf(s) ? fl[j++] : tl[i++]))) as Params;
  };
  return { trainable: trainable ?? {}, frozen: frozen ?? {}, trainablePaths, frozenPaths, merge };
}

type FrozenBatch<B> = { batch: B; frozen: Params };

/**
 * A `Trainer` of the tensors `patterns` do not freeze (`splitParams`): AdamW state only for
 * them, and a loss that sees the whole tree. The frozen tensors enter every jitted step next to
 * the batch, as references (`tree.ref`), so they stay bit-identical and are not differentiated.
 * `lossFn` is an ordinary loss of the whole params.
 */
export class FrozenTrainer<B extends JsTree<Array>> {
  readonly split: Omit<ParamSplit, "trainable" | "frozen">;
  readonly #trainer: Trainer<FrozenBatch<B>>;
  #frozen: Params;

  constructor(params: Params, patterns: readonly string[], lossFn: LossFn<B>, cfg: AdamWConfig = DEFAULT_ADAMW, opts: SplitOptions & { label?: string } = {}) {
    const { trainable, frozen, ...split } = splitParams(params, patterns, opts);
    if (split.trainablePaths.length === 0) {
      tree.dispose(frozen);
      throw new Error(`FrozenTrainer: patterns ${patterns.map((p) => `"${p}"`).join(", ")} leave nothing to train (all ${split.frozenPaths.length} tensors frozen)`);
    }
    this.split = split;
    this.#frozen = frozen;
    const loss = (p: Params, b: FrozenBatch<B>) => lossFn(split.merge(p, b.frozen), b.batch);
    this.#trainer = new Trainer(trainable, loss as never, cfg, { label: opts.label });
  }

  /** The trained tensors only (owned by the trainer; replaced by every step). */
  get trainable(): Params {
    return this.#trainer.params;
  }

  /** The frozen tensors (owned by the trainer). */
  get frozen(): Params {
    return this.#frozen;
  }

  /** The whole tree, trained and frozen tensors merged (borrowed: owned by the trainer, stale after the next step). */
  get params(): Params {
    return this.split.merge(this.#trainer.params, this.#frozen);
  }

  /** One AdamW step of the trainable tensors; consumes `batch` (not the frozen tensors). */
  step(batch: B, lr: number): Promise<StepResult> {
    return this.#trainer.step({ batch, frozen: tree.ref(this.#frozen) }, lr);
  }

  /** The whole trained tree, which the caller then owns; the trainer is disposed. */
  release(): Params {
    const out = this.params;
    this.#trainer.params = {};
    this.#frozen = {};
    this.#trainer.dispose();
    return out;
  }

  dispose(): void {
    this.#trainer.dispose();
    tree.dispose(this.#frozen);
    this.#frozen = {};
  }
}
