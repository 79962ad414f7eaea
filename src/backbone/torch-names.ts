/**
 * The backbone's tensors under PyTorch's conventional names, so that a model leaves mmntp as a
 * state dict any GPT-2-style PyTorch module loads (reference/mmntp_torch.py), and comes back.
 * Names follow nanoGPT's model.py (HF GPT-2's module names); linear weights are stored in
 * nn.Linear's [out, in] layout, where mmntp keeps [in, out]. The head is not tied to the token
 * embedding (mmntp trains both).
 *
 *   mmntp                          PyTorch                               shape (PyTorch)
 *   tok.table                      transformer.wte.weight                [V, D]
 *   pos.table (learned only)       transformer.wpe.weight                [S, D]
 *   blocks.i.ln1.{g,b}             transformer.h.i.ln_1.{weight,bias}    [D]
 *   blocks.i.attn.qkv.{w,b}        transformer.h.i.attn.c_attn.*         [3D, D], [3D]  (q | k | v, heads contiguous)
 *   blocks.i.attn.out.{w,b}        transformer.h.i.attn.c_proj.*         [D, D], [D]
 *   blocks.i.ln2.{g,b}             transformer.h.i.ln_2.*                [D]
 *   blocks.i.mlp.up.{w,b}          transformer.h.i.mlp.c_fc.*            [F, D], [F]
 *   blocks.i.mlp.gate.{w,b}        transformer.h.i.mlp.c_gate.* (SwiGLU) [F, D], [F]
 *   blocks.i.mlp.down.{w,b}        transformer.h.i.mlp.c_proj.*          [D, F], [D]
 *   lnf.{g,b}                      transformer.ln_f.*                    [D]
 *   head.w                         lm_head.weight                        [V, D]
 *
 * Browser-safe: host tensor records in, host tensor records out.
 */
import { expectationsOfInit } from "../engine/params.ts";
import { fitProblems, refuseMisfit, type TensorRecord } from "../io/safetensors.ts";
import { initTransformerForShapes, type TransformerConfig } from "./transformer.ts";

/** One tensor's two names, and whether PyTorch stores it transposed (a linear weight). */
export type TorchName = { readonly mmntp: string; readonly torch: string; readonly transpose: boolean };

const LEAF: Readonly<Record<string, string>> = { g: "weight", b: "bias", w: "weight", table: "weight" };
const MODULE: Readonly<Record<string, string>> = {
  tok: "transformer.wte",
  pos: "transformer.wpe",
  lnf: "transformer.ln_f",
  head: "lm_head",
  ln1: "ln_1",
  ln2: "ln_2",
  "attn.qkv": "attn.c_attn",
  "attn.out": "attn.c_proj",
  "mlp.up": "mlp.c_fc",
  "mlp.gate": "mlp.c_gate",
  "mlp.down": "mlp.c_proj",
};

/** The PyTorch name of the mmntp tensor `name` (a dotted params path). */
export function torchNameOf(name: string): TorchName {
  const parts = name.split(".");
  const leaf = parts.pop()!;
  const block = parts[0] === "blocks" ? parts.splice(0, 2)[1] : undefined;
  const module = MODULE[parts.join(".")];
  const suffix = LEAF[leaf];
  if (module === undefined || suffix === undefined) throw new Error(`torchNameOf: no PyTorch name for the backbone tensor "${name}"`);
  const torch = `${block === undefined ? "" : `transformer.h.${block}.`}${module}.${suffix}`;
  return { mmntp: name, torch, transpose: leaf === "w" };
}

/** What each tensor of `cfg`'s backbone is, under its PyTorch name, with its PyTorch shape (traced; nothing allocated). */
export function torchExpectations(cfg: TransformerConfig): Map<string, { name: TorchName; shape: number[]; dtype: "F32" }> {
  const expect = expectationsOfInit(() => initTransformerForShapes(cfg));
  const out = new Map<string, { name: TorchName; shape: number[]; dtype: "F32" }>();
  for (const [key, e] of Object.entries(expect)) {
    const name = torchNameOf(key);
    out.set(name.torch, { name, shape: name.transpose ? [...e.shape].reverse() : e.shape, dtype: "F32" });
  }
  return out;
}

/** A 2-D float tensor's transpose ([R, C] → [C, R]). */
export function transpose2d(t: TensorRecord): TensorRecord {
  if (t.dtype !== "F32" || t.shape.length !== 2) throw new Error(`transpose2d: expected a 2-D F32 tensor, got ${t.dtype} [${t.shape}]`);
  const [r, c] = t.shape as [number, number];
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j]!;
  return { dtype: "F32", shape: [c, r], data: out };
}

/** mmntp tensors (dotted params paths, `paramsToTensors`) → the same tensors under PyTorch names and layouts. */
export function backboneToTorch(tensors: Readonly<Record<string, TensorRecord>>): Record<string, TensorRecord> {
  const out: Record<string, TensorRecord> = {};
  for (const [key, t] of Object.entries(tensors)) {
    const name = torchNameOf(key);
    out[name.torch] = name.transpose ? transpose2d(t) : t;
  }
  return out;
}

/**
 * A PyTorch state dict (by name) → mmntp tensors for `cfg`'s backbone. Refuses, naming every
 * tensor at fault (as `paramsFromTensors` does), a missing or unexpected tensor, a wrong shape or
 * a dtype other than F32; `what` names the source in the InputError.
 */
export function backboneFromTorch(tensors: Readonly<Record<string, TensorRecord>>, cfg: TransformerConfig, what: string): Record<string, TensorRecord> {
  const expect = torchExpectations(cfg);
  refuseMisfit(what, fitProblems(tensors, expect), what);
  const out: Record<string, TensorRecord> = {};
  for (const [torch, { name }] of expect) {
    const t = tensors[torch]!;
    out[name.mmntp] = name.transpose ? transpose2d(t) : t;
  }
  return out;
}
