/**
 * `mmntp export RUN --format torch`: a run's backbone (and its image tokenizer's decoder) as
 * PyTorch state dicts under conventional names (backbone/torch-names.ts,
 * tokenizers/image/torch-names.ts), and optionally a shard of training sequences, so the model
 * can be trained on with PyTorch (reference/train_torch.py under torchrun) and come back through
 * `mmntp import` (pipelines/import.ts). docs/scale-out.md has the commands and the guarantees.
 *
 *   OUT/config.json                 format, version, the backbone's config, the run it came from,
 *                                   the vocabulary and layout, the decoder's config, the shard's
 *   OUT/model.safetensors           the backbone (reference/mmntp_torch.py: Backbone)
 *   OUT/image-decoder.safetensors   the VQ decoder (ImageDecoder), when the quantizer is plain VQ
 *   OUT/data.safetensors            with `data`: inputs, targets int32 [N, L], weights f32 [N, L]
 *                                   (+ positions [N, L, 2] for rope2d, mask u8 [N, L, L] for a
 *                                   layout that is not plainly causal)
 *
 * Every file is written atomically; config.json last, so a folder with a config.json is whole.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { np, startEngine, tree, type Array as JaxArray, type JsTree } from "../engine/index.ts";
import { paramsToTensors } from "../engine/params.ts";
import { hostRng } from "../engine/rng.ts";
import { randomCaption } from "../data/captions.ts";
import { loadMnist, MNIST_INFO, splitTrainTest, subset } from "../data/mnist.ts";
import { writeAtomic } from "../io/checkpoint.ts";
import { InputError } from "../io/errors.ts";
import { encodeSafetensors, type TensorRecord } from "../io/safetensors.ts";
import { backboneToTorch } from "../backbone/torch-names.ts";
import type { TransformerConfig } from "../backbone/transformer.ts";
import { imageDecoderToTorch, imageDecoderUnsupported, torchImageDecoderConfig, type TorchImageDecoderConfig } from "../tokenizers/image/torch-names.ts";
import { DEMO_SPLIT } from "./demo.ts";
import { disposeRun, loadRun, type Run } from "./run.ts";
import { pairedBatch } from "./unified.ts";

export const TORCH_FORMAT = "mmntp-torch";
export const TORCH_VERSION = 1;

/** config.json of an export (and of a checkpoint reference/train_torch.py writes back). */
export type TorchExportConfig = {
  readonly format: typeof TORCH_FORMAT;
  readonly version: number;
  readonly model: TransformerConfig;
  /** The run the model came from: its folder and run.json digest. */
  readonly source: { readonly run: string; readonly digest: string };
  readonly imageDecoder?: TorchImageDecoderConfig;
  readonly data?: { readonly examples: number; readonly length: number; readonly seed: number; readonly split: typeof DEMO_SPLIT; readonly tensors: readonly string[] };
};

export type ExportOptions = {
  /** Training sequences to write into data.safetensors (0 = none). */
  readonly data?: number;
  /** Seed of the shard's examples and captions. */
  readonly seed?: number;
};

export type ExportResult = { readonly dir: string; readonly files: string[]; readonly parameters: number; readonly imageDecoder: string };

/** The most sequences a shard may hold: 2^20 × 64 tokens is ~800 MB of int32 and float32 rows. */
export const MAX_SHARD_EXAMPLES = 1 << 20;

/** Export the run in `runDir` into `outDir` (created; files in it are replaced). */
export async function exportTorch(runDir: string, outDir: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const examples = opts.data ?? 0;
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(examples) || examples < 0 || examples > MAX_SHARD_EXAMPLES) throw new InputError(`--data must be an integer in [0, ${MAX_SHARD_EXAMPLES}] (training sequences to export), got ${examples}`, { field: "data", value: examples });
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 31) throw new InputError(`--seed must be an integer in [0, 2^31), got ${seed}`, { field: "seed", value: seed });
  await startEngine();
  const run = loadRun(runDir);
  try {
    if (run.order?.name === "random") throw new InputError(`${runDir}: the random-order model has a target-position table that reference/mmntp_torch.py does not model; export a raster, maskgit or next-scale run, or the demo's`, { file: runDir, field: "order", value: "random" });
    if (examples > 0 && run.order) throw new InputError(`${runDir}: --data exports the paired layout's training sequences; this run was trained in the ${run.order.name} order, whose masks and inputs change every step`, { file: runDir, field: "order", value: run.order.name });
    if (examples > 0 && run.dataset.name !== MNIST_INFO.name) throw new InputError(`${runDir}: --data draws from the embedded MNIST digits, but this run's data set is ${JSON.stringify(run.dataset.name)}`, { file: runDir, field: "dataset.name", value: run.dataset.name });
    mkdirSync(outDir, { recursive: true });
    const files: string[] = [];
    const write = (name: string, tensors: Record<string, TensorRecord>) => {
      writeAtomic(join(outDir, name), encodeSafetensors(tensors, { format: TORCH_FORMAT }));
      files.push(join(outDir, name));
    };
    const model = backboneToTorch(await paramsToTensors(run.model.params as JsTree<JaxArray>));
    write("model.safetensors", model);
    const unsupported = imageDecoderUnsupported(run.image.config);
    if (!unsupported) write("image-decoder.safetensors", imageDecoderToTorch((await run.image.save()).tensors));
    const shard = examples > 0 ? await trainingShard(run, examples, seed) : undefined;
    if (shard) write("data.safetensors", shard);
    const config: TorchExportConfig = {
      format: TORCH_FORMAT,
      version: TORCH_VERSION,
      model: run.model.config,
      source: { run: runDir, digest: run.manifest.digest },
      ...(unsupported ? {} : { imageDecoder: torchImageDecoderConfig(run.image.config) }),
      ...(shard ? { data: { examples, length: run.model.config.contextLength, seed, split: DEMO_SPLIT, tensors: Object.keys(shard) } } : {}),
    };
    writeAtomic(join(outDir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
    files.push(join(outDir, "config.json"));
    const parameters = Object.values(model).reduce((n, t) => n + t.data.length, 0);
    return { dir: outDir, files, parameters, imageDecoder: unsupported ? `not exported: ${unsupported}` : "image-decoder.safetensors" };
  } finally {
    disposeRun(run);
  }
}

/**
 * `n` training sequences as the demo's trainer draws them (trainUnified): training digits at
 * random (never the held-out split's), a random caption template each, even rows text→image and
 * odd rows image→text, laid out by the run's layout for its model → host tensors [N, L].
 */
async function trainingShard(run: Run, n: number, seed: number): Promise<Record<string, TensorRecord>> {
  const { train } = splitTrainTest(loadMnist(), DEMO_SPLIT);
  const rng = hostRng(seed + 3);
  const picked = Int32Array.from({ length: n }, () => Math.floor(rng() * train.n));
  const chosen = subset(train, picked);
  const ids = await run.image.encodeImages(chosen.images, n);
  const t = run.image.tokensPerImage;
  const cfg = run.model.config;
  const parts: Record<string, TensorRecord[]> = {};
  for (let i = 0; i < n; i += 256) {
    const rows = Array.from({ length: Math.min(256, n - i) }, (_, j) => i + j);
    const captions = rows.map((j) => run.text.encodeText(randomCaption(chosen.labels[j]!, rng)));
    const batch = pairedBatch(run.vocab, captions, rows.map((j) => Array.from(ids.subarray(j * t, (j + 1) * t))), run.image.tokenShape, cfg, run.layout);
    const { mask, ...rest } = batch;
    const recs = await paramsToTensors(rest as JsTree<JaxArray>); // int32 ids, float32 weights (and positions)
    tree.dispose(rest as JsTree<JaxArray>);
    if (mask) {
      const shape = mask.shape;
      recs.mask = { dtype: "U8", shape, data: Uint8Array.from((await mask.astype(np.int32).data()) as Int32Array) };
    }
    for (const [name, rec] of Object.entries(recs)) (parts[name] ??= []).push(rec);
  }
  return Object.fromEntries(Object.entries(parts).map(([name, recs]) => [name, concatRows(recs)]));
}

/** Tensors of equal trailing shape → one, stacked along the first axis. */
function concatRows(recs: readonly TensorRecord[]): TensorRecord {
  const first = recs[0]!;
  const rows = recs.reduce((a, r) => a + r.shape[0]!, 0);
  const total = recs.reduce((a, r) => a + r.data.length, 0);
  const data = first.dtype === "F32" ? new Float32Array(total) : first.dtype === "I32" ? new Int32Array(total) : new Uint8Array(total);
  let at = 0;
  for (const r of recs) (data.set(r.data as never, at), (at += r.data.length));
  return { dtype: first.dtype, shape: [rows, ...first.shape.slice(1)], data } as TensorRecord;
}

