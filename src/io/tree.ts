/**
 * Nested params trees ↔ dotted names (`blocks.0.attn.qkv.w`), the tensor names of every
 * checkpoint. Browser-safe: no file system here (checkpoint.ts writes the files).
 */
/** A nested params object: leaves inside plain objects and arrays. */
export type Tree<L> = L | readonly Tree<L>[] | { readonly [key: string]: Tree<L> | undefined };

const isBranch = (x: unknown): x is Record<string, unknown> =>
  Array.isArray(x) || (typeof x === "object" && x !== null && [Object.prototype, null].includes(Object.getPrototypeOf(x)));

/**
 * Nested params → dotted names, e.g. `{blocks: [{attn: {qkv: {w}}}]}` → `{"blocks.0.attn.qkv.w": w}`.
 * Leaves are everything except arrays and plain objects (pass `isLeaf` to stop earlier, e.g. at
 * TensorRecords); `undefined` values (absent optional params) are skipped.
 */
export function flattenTree<L>(tree: Tree<L>, isLeaf: (x: unknown) => boolean = (x) => !isBranch(x)): Record<string, L> {
  const out: Record<string, L> = {};
  const walk = (node: unknown, prefix: string) => {
    if (node === undefined) return;
    if (isLeaf(node) || !isBranch(node)) {
      if (prefix === "") throw new Error("flattenTree: the root must be an object or an array, got a leaf");
      out[prefix] = node as L;
      return;
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === "" || k.includes(".")) throw new Error(`flattenTree: key ${JSON.stringify(k)} under "${prefix}" cannot be part of a dotted name`);
      walk(v, prefix ? `${prefix}.${k}` : k);
    }
  };
  walk(tree, "");
  return out;
}

/** An own, enumerable property even for "__proto__" (assignment would set the prototype instead). */
const own = (o: object, key: string, value: unknown) => Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });

/** Dotted names → nested objects; a level whose keys are exactly 0..n-1 becomes a JS array. */
export function unflattenTree<L>(flat: Readonly<Record<string, L>>): Tree<L> {
  type Node = { [key: string]: Node | L };
  const root: Node = {};
  const isNode = new Set<Node>([root]);
  for (const [name, leaf] of Object.entries(flat)) {
    const parts = name.split(".");
    if (parts.some((p) => p === "")) throw new Error(`unflattenTree: bad name ${JSON.stringify(name)}`);
    let node = root;
    parts.slice(0, -1).forEach((p, i) => {
      if (!Object.hasOwn(node, p)) {
        const child: Node = {};
        isNode.add(child);
        own(node, p, child);
      }
      const next = node[p];
      if (!isNode.has(next as Node)) throw new Error(`unflattenTree: "${parts.slice(0, i + 1).join(".")}" is both a leaf and a branch (via "${name}")`);
      node = next as Node;
    });
    const last = parts[parts.length - 1];
    if (Object.hasOwn(node, last)) throw new Error(`unflattenTree: "${name}" is both a leaf and a branch`);
    own(node, last, leaf);
  }
  const arrays = (x: Node | L): Tree<L> => {
    if (!isNode.has(x as Node)) return x as L;
    const entries = Object.entries(x as Node);
    const mapped = entries.map(([k, v]) => [k, arrays(v)] as const);
    const isList = entries.length > 0 && entries.every(([k]) => /^(0|[1-9]\d*)$/.test(k) && Number(k) < entries.length);
    if (!isList) return Object.fromEntries(mapped);
    const list: Tree<L>[] = [];
    for (const [k, v] of mapped) list[Number(k)] = v;
    return list;
  };
  return arrays(root);
}
