/**
 * Device params trees ↔ host tensor records under dotted names (io/tree.ts), the form every
 * checkpoint and saved tokenizer stores. Browser-safe.
 */
import { flattenTree, unflattenTree } from "../io/tree.ts";
import type { TensorRecord } from "../io/safetensors.ts";
import { fromHost, tree, type Array, type JsTree } from "./index.ts";

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
export function expectationsOf(like: JsTree<Array>): Record<string, { shape: number[]; dtype: "I32" | "F32" }> {
  return Object.fromEntries(Object.entries(flattenTree<Array>(like as never)).map(([k, a]) => [k, { shape: a.shape, dtype: a.dtype === "int32" ? ("I32" as const) : ("F32" as const) }]));
}

/**
 * Host tensors → device params shaped like `expect` (from `expectationsOf`), in its key order
 * (so the tree's structure matches the model's). Every expected tensor must be there with its
 * shape and dtype, none other, and every float finite: `what` names the source in errors.
 */
export function paramsFromTensors<P extends JsTree<Array>>(
  tensors: Readonly<Record<string, TensorRecord>>,
  expect: Readonly<Record<string, { shape: readonly number[]; dtype: "I32" | "F32" }>>,
  what: string,
): P {
  const problems: string[] = [];
  for (const [key, want] of Object.entries(expect)) {
    const t = Object.hasOwn(tensors, key) ? tensors[key] : undefined;
    if (!t) problems.push(`missing tensor "${key}"`);
    else if (t.shape.join(",") !== want.shape.join(",")) problems.push(`tensor "${key}" has shape [${t.shape}], expected [${want.shape}]`);
    else if (t.dtype !== want.dtype) problems.push(`tensor "${key}" has dtype ${t.dtype}, expected ${want.dtype}`);
    else if (t.dtype === "F32") {
      const bad = (t.data as Float32Array).findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) problems.push(`tensor "${key}" has a non-finite value (${(t.data as Float32Array)[bad]}) at element ${bad}`);
    }
  }
  for (const key of Object.keys(tensors)) if (!Object.hasOwn(expect, key)) problems.push(`unexpected tensor "${key}"`);
  if (problems.length > 0) {
    const shown = problems.length > 8 ? [...problems.slice(0, 8), `… and ${problems.length - 8} more`] : problems;
    throw new Error(`${what} does not fit the model: ${shown.join("; ")}`);
  }
  const arrays: Record<string, Array> = {};
  for (const key of Object.keys(expect)) {
    const t = tensors[key]!;
    arrays[key] = fromHost(t.data as Float32Array | Int32Array, [...t.shape]);
  }
  return unflattenTree(arrays) as P;
}

/** `paramsFromTensors` with the expectations of `like`, which is disposed. */
export function paramsLike<P extends JsTree<Array>>(tensors: Readonly<Record<string, TensorRecord>>, like: P, what: string): P {
  const expect = expectationsOf(like);
  tree.dispose(like);
  return paramsFromTensors<P>(tensors, expect, what);
}
