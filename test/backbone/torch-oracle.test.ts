/**
 * The whole-model oracle (llm.c's test_gpt2): mmntp's backbone on the weights and inputs of
 * test/fixtures/torch/<case> (written by reference/torch_model_oracle.py with the PyTorch module
 * of reference/mmntp_torch.py, in float64) must give PyTorch's logits and loss to 1e-4, every
 * parameter's gradient to 1e-3 and the losses of 10 AdamW steps to 1e-3, all relative to the
 * largest reference value. The weights enter through the PyTorch names (backboneFromTorch), so
 * the naming and layout `mmntp export` / `mmntp import` use are checked too. No Python here.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fromHost, np, tree, valueAndGrad, type Array } from "../../src/engine/index.ts";
import { paramsOfInit, paramsToTensors } from "../../src/engine/params.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { decodeSafetensors, type TensorRecord } from "../../src/io/safetensors.ts";
import type { SequenceBatch } from "../../src/backbone/batch.ts";
import { backboneFromTorch, backboneToTorch } from "../../src/backbone/torch-names.ts";
import { causalMask } from "../../src/backbone/masks.ts";
import { forward, initTransformer, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { nextTokenLoss } from "../../src/train/losses.ts";
import { Trainer } from "../../src/train/step.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { relativeError } from "../helpers/values.ts";

type Meta = { config: TransformerConfig; loss: number; lr: number; losses: number[]; adamw: typeof DEFAULT_ADAMW };
type Case = { meta: Meta; tensors: Record<string, TensorRecord> };

const CASES = ["learned-gelu", "rope-swiglu", "rope2d-gelu"] as const;

function loadCase(name: string): Case {
  const at = (ext: string) => new URL(`../fixtures/torch/${name}.${ext}`, import.meta.url);
  return { meta: JSON.parse(readFileSync(at("json"), "utf8")) as Meta, tensors: decodeSafetensors(new Uint8Array(readFileSync(at("safetensors")))).tensors };
}

/** The tensors under `prefix`, without it. */
const under = (tensors: Record<string, TensorRecord>, prefix: string) => Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));

function paramsOf(c: Case, perturb?: { tensor: string; index: number; by: number }): TransformerParams {
  const torch = under(c.tensors, "param.");
  if (perturb) {
    const t = torch[perturb.tensor]!;
    const data = Float32Array.from(t.data as Float32Array);
    data[perturb.index]! += perturb.by;
    torch[perturb.tensor] = { ...t, data } as TensorRecord;
  }
  const init = () => {
    const keys = new KeyStream(0);
    const p = initTransformer(keys, c.meta.config);
    keys.dispose();
    return p;
  };
  return paramsOfInit(backboneFromTorch(torch, c.meta.config, "oracle"), init, "oracle");
}

function batchOf(c: Case): SequenceBatch {
  const t = c.tensors;
  const arr = (name: string) => fromHost(t[name]!.data as Float32Array | Int32Array, t[name]!.shape);
  const batch: SequenceBatch = { inputs: arr("inputs"), targets: arr("targets"), weights: arr("weights") };
  if (t.mask) batch.mask = fromHost(Int32Array.from(t.mask.data), t.mask.shape).astype(np.bool);
  if (t.positions) batch.positions = arr("positions");
  return batch;
}

/** Relative errors of the logits, the loss and each gradient (by PyTorch name) against the fixture. */
async function oneStepErrors(c: Case, p: TransformerParams): Promise<{ logits: number; loss: number; grads: Record<string, number> }> {
  const b = batchOf(c);
  const t = b.inputs.shape[1];
  const logits = forward(tree.ref(p), b.inputs.ref, b.mask ? b.mask.ref : causalMask(t), c.meta.config, b.positions?.ref);
  const logitsErr = relativeError(await logits.data(), c.tensors.logits!.data as Float32Array);
  const [loss, grads] = valueAndGrad((q: TransformerParams) => nextTokenLoss(q, b, c.meta.config)[0])(p) as unknown as [Array, TransformerParams];
  const lossValue = (await loss.data())[0]!;
  const torchGrads = backboneToTorch(await paramsToTensors(grads));
  tree.dispose(grads);
  const expected = under(c.tensors, "grad.");
  expect(Object.keys(torchGrads).sort()).toEqual(Object.keys(expected).sort());
  const gradErr = Object.fromEntries(Object.entries(expected).map(([k, g]) => [k, relativeError(torchGrads[k]!.data as Float32Array, g.data as Float32Array)]));
  return { logits: logitsErr, loss: Math.abs(lossValue - c.meta.loss) / Math.abs(c.meta.loss), grads: gradErr };
}

describe.each(CASES)("the PyTorch oracle, %s", (name) => {
  const c = loadCase(name);

  it("gives PyTorch's logits and loss to 1e-4 and every gradient to 1e-3", async () => {
    const e = await oneStepErrors(c, paramsOf(c));
    expect(e.logits).toBeLessThan(1e-4);
    expect(e.loss).toBeLessThan(1e-4);
    const worst = Object.entries(e.grads).sort((a, b) => b[1] - a[1])[0]!;
    expect(worst[1], `gradient of ${worst[0]}`).toBeLessThan(1e-3);
    expect(Object.keys(e.grads).length).toBe(Object.keys(under(c.tensors, "param.")).length);
  });

  it("follows PyTorch's AdamW losses for 10 steps (clipping, decay on rank ≥ 2) to 1e-3", async () => {
    expect(c.meta.adamw).toEqual(DEFAULT_ADAMW);
    const trainer = new Trainer<SequenceBatch>(paramsOf(c), (q, b) => nextTokenLoss(q as TransformerParams, b, c.meta.config), DEFAULT_ADAMW);
    const losses: number[] = [];
    for (let i = 0; i < c.meta.losses.length; i++) losses.push((await trainer.step(batchOf(c), c.meta.lr)).loss);
    trainer.dispose();
    expect(relativeError(losses, c.meta.losses)).toBeLessThan(1e-3);
    expect(c.meta.losses.at(-1)!).toBeLessThan(c.meta.losses[0]! / 4); // the steps move the model: a real trajectory
  });
});

describe("the oracle can fail", () => {
  const c = loadCase("learned-gelu");

  it("one weight moved by 1e-2 breaks the logits check, and its gradient checks", async () => {
    for (const tensor of ["transformer.h.1.attn.c_attn.weight", "transformer.h.0.mlp.c_proj.weight", "transformer.ln_f.bias"]) {
      const e = await oneStepErrors(c, paramsOf(c, { tensor, index: 7, by: 1e-2 }));
      expect(e.logits, tensor).toBeGreaterThan(1e-4);
      expect(Math.max(...Object.values(e.grads)), tensor).toBeGreaterThan(1e-3);
    }
  });

  it("a transposed linear weight is refused or caught: the layout matters", async () => {
    const torch = under(c.tensors, "param.");
    const w = torch["transformer.h.0.attn.c_proj.weight"]!; // square [D, D]: a transpose keeps the shape
    const [r, k] = w.shape as [number, number];
    const data = new Float32Array(r * k);
    for (let i = 0; i < r; i++) for (let j = 0; j < k; j++) data[j * r + i] = (w.data as Float32Array)[i * k + j]!;
    const swapped: Case = { ...c, tensors: { ...c.tensors, "param.transformer.h.0.attn.c_proj.weight": { dtype: "F32", shape: [k, r], data } } };
    expect((await oneStepErrors(swapped, paramsOf(swapped))).logits).toBeGreaterThan(1e-4);
  });
});
