/**
 * Device params trees ↔ host tensor records under dotted names (io/tree.ts), the form every
 * checkpoint and saved tokenizer stores. Browser-safe.
 */
import { InputError } from "../io/errors.ts";
import { flattenTree, unflattenTree } from "../io/tree.ts";
import { fitProblems, refuseMisfit, type TensorRecord } from "../io/safetensors.ts";
import { fromHost, makeJaxpr, tree, type Array, type JsTree } from "./index.ts";

type Expectations = Record<string, { shape: number[]; dtype: "I32" | "F32" }>;

/** Device params → host tensors under dotted names. Borrows `params`. */
export async function paramsToTensors(params: JsTree<Array>): Promise<Record<string, TensorRecord>> {
  const tensors: Record<string, TensorRecord> = {};
  for (const [k, arr] of Object.entries(flattenTree<Array>(params as never))) {
    const data = await arr.ref.data();
    tensors[k] = data instanceof Int32Array ? { dtype: "I32", shape: arr.shape, data } : { dtype: "F32", shape: arr.shape, data: data as Float32Array };
  }
  return tensors;
}

/** What each tensor of `like` must be: its shape and dtype. Borrows `like`. */
export function expectationsOf(like: JsTree<Array>): Expectations {
  return Object.fromEntries(Object.entries(flattenTree<Array>(like as never)).map(([k, a]) => [k, { shape: a.shape, dtype: a.dtype === "int32" ? ("I32" as const) : ("F32" as const) }]));
}

/**
 * What each tensor of the params `init` would build must be, found by tracing `init` (jax-js
 * `makeJaxpr`) instead of running it: nothing is allocated, so checking a file against a config
 * that declares 10⁹ weights costs milliseconds, not gigabytes (the file's own size then bounds
 * what loading allocates).
 */
export function expectationsOfInit(init: () => JsTree<Array>): Expectations {
  const { jaxpr, treedef } = makeJaxpr(() => init())();
  try {
    const avals = jaxpr.jaxpr.outs.map((o) => ({ shape: [...o.aval.shape], dtype: String(o.aval.dtype) }));
    const flat = flattenTree<{ shape: number[]; dtype: string }>(tree.unflatten(treedef, avals) as never, (x) => typeof x === "object" && x !== null && "dtype" in x);
    return Object.fromEntries(Object.entries(flat).map(([k, a]) => [k, { shape: a.shape, dtype: a.dtype === "int32" ? ("I32" as const) : ("F32" as const) }]));
  } finally {
    jaxpr.dispose();
  }
}

/**
 * Host tensors → device params shaped like `expect` (from `expectationsOf`), in its key order
 * (so the tree's structure matches the model's). Every expected tensor must be there with its
 * shape and dtype, none other, every float finite and no weight matrix all zeros: `what` names
 * the source in the InputError. `zerosAllowed`: for optimizer state, whose moments may be all zeros.
 */
export function paramsFromTensors<P extends JsTree<Array>>(
  tensors: Readonly<Record<string, TensorRecord>>,
  expect: Readonly<Record<string, { shape: readonly number[]; dtype: "I32" | "F32" }>>,
  what: string,
  { zerosAllowed = false }: { zerosAllowed?: boolean } = {},
): P {
  const problems = fitProblems(tensors, expect);
  for (const [key, want] of Object.entries(expect)) {
    const t = Object.hasOwn(tensors, key) ? tensors[key] : undefined;
    if (!t || t.dtype !== "F32" || t.dtype !== want.dtype || t.shape.join(",") !== want.shape.join(",")) continue;
    const data = t.data as Float32Array;
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) problems.push(`tensor "${key}" has a non-finite value (${data[bad]}) at element ${bad}`);
    // No trained or initialized model has a weight matrix of zeros (biases may be): a file emptied by a bug or by hand.
    else if (!zerosAllowed && t.shape.length >= 2 && data.length > 1 && data.every((v) => v === 0)) problems.push(`tensor "${key}" [${t.shape}] is all zeros`);
  }
  refuseMisfit(what, problems);
  const arrays: Record<string, Array> = {};
  for (const key of Object.keys(expect)) {
    const t = tensors[key]!;
    arrays[key] = fromHost(t.data as Float32Array | Int32Array, [...t.shape]);
  }
  return unflattenTree(arrays) as P;
}

/** `paramsFromTensors` with the expectations of the params `init` would build (traced, not run). */
export function paramsOfInit<P extends JsTree<Array>>(tensors: Readonly<Record<string, TensorRecord>>, init: () => P, what: string): P {
  return paramsFromTensors<P>(tensors, expectationsOfInit(init), what);
}
