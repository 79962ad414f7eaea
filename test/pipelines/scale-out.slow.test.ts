/**
 * The scale-out path with PyTorch itself (slow suite; skipped where Debian's python3-torch is not
 * installed): a toy run exported, trained by reference/train_torch.py on 1 process and under
 * torchrun --nproc_per_node=2 (DDP, gloo; reference/torchrun.py, torchrun with Debian's Python 3.11
 * fix), imported back. The two trainings must give the same
 * model (the loss normalization makes DDP's average the global batch's gradient), the imported
 * model must fit its training shard better than before, and PyTorch's image decoder must draw
 * what mmntp's does from the same ids.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromHost, startEngine, tree } from "../../src/engine/index.ts";
import { decodeSafetensors, encodeSafetensors } from "../../src/io/safetensors.ts";
import { writeAtomic } from "../../src/io/checkpoint.ts";
import type { TransformerParams } from "../../src/backbone/transformer.ts";
import { nextTokenLoss } from "../../src/train/losses.ts";
import { exportTorch } from "../../src/pipelines/export.ts";
import { importTorch } from "../../src/pipelines/import.ts";
import { disposeRun, loadRun, saveRun } from "../../src/pipelines/run.ts";
import { mnistRun } from "../helpers/mnist-run.ts";

const PY = "/usr/bin/python3";
const ROOT = new URL("../..", import.meta.url).pathname;
const hasTorch = spawnSync(PY, ["-c", "import torch"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "mmntp-scale-out-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tensorsOf = (file: string) => decodeSafetensors(new Uint8Array(readFileSync(file))).tensors;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

/** mmntp's loss of the run's model on the whole shard. */
async function shardLoss(runDir: string, shard: string): Promise<number> {
  const t = tensorsOf(shard);
  const run = loadRun(runDir);
  const arr = (n: string) => fromHost(t[n]!.data as Int32Array | Float32Array, t[n]!.shape);
  const [loss] = nextTokenLoss(tree.ref(run.model.params as TransformerParams), { inputs: arr("inputs"), targets: arr("targets"), weights: arr("weights") }, run.model.config);
  const value = (await loss.data())[0]!;
  disposeRun(run);
  return value;
}

describe.skipIf(!hasTorch)("export → PyTorch (1 and 2 processes) → import (slow)", () => {
  const source = join(dir, "run");
  const exported = join(dir, "export");
  const train = (procs: number, out: string) => {
    const args = ["reference/train_torch.py", "--model", exported, "--steps", "12", "--batch", "8", "--lr", "3e-3", "--warmup", "2", "--out", out];
    return JSON.parse(procs === 1 ? sh(PY, args) : sh(PY, ["reference/torchrun.py", "--nproc_per_node=2", ...args])) as { world: number; first_loss: number; last_loss: number };
  };

  beforeAll(async () => {
    await startEngine();
    const run = mnistRun();
    await saveRun(source, run);
    disposeRun(run);
    await exportTorch(source, exported, { data: 96, seed: 1 });
  });

  it("trains the same model on 1 process and on 2, and the imported model fits its shard better", async () => {
    const one = train(1, join(dir, "one"));
    const two = train(2, join(dir, "two"));
    expect([one.world, two.world]).toEqual([1, 2]);
    expect(two.last_loss).toBeLessThan(two.first_loss);
    // Compared as functions, not tensor by tensor: the key bias gets an exactly-zero gradient
    // (a constant added to every score of a row), so Adam turns its rounding noise into ±lr steps
    // that differ between the two runs and change no output.
    expect(Math.abs(two.last_loss - one.last_loss) / one.last_loss).toBeLessThan(1e-4);
    const oneBack = join(dir, "one-back");
    await importTorch(join(dir, "one"), source, oneBack);
    const back = join(dir, "back");
    await importTorch(join(dir, "two"), source, back);
    const shard = join(exported, "data.safetensors");
    const [before, afterOne, afterTwo] = [await shardLoss(source, shard), await shardLoss(oneBack, shard), await shardLoss(back, shard)];
    expect(Math.abs(afterTwo - afterOne) / afterOne).toBeLessThan(1e-4);
    expect(afterTwo).toBeLessThan(before - 0.1);
  });

  it("PyTorch's image decoder draws what mmntp's draws from the same ids", async () => {
    const ids = Int32Array.from({ length: 4 * 49 }, (_, i) => (i * 53) % 256);
    writeAtomic(join(dir, "ids.safetensors"), encodeSafetensors({ ids: { dtype: "I32", shape: [4, 49], data: ids } }));
    const py = [
      "import sys, torch; sys.path.insert(0, 'reference')",
      "from mmntp_torch import load_image_decoder, read_safetensors, write_safetensors",
      `dec, _ = load_image_decoder(${JSON.stringify(exported)})`,
      `ids = torch.from_numpy(read_safetensors(${JSON.stringify(join(dir, "ids.safetensors"))})[0]['ids'])`,
      `with torch.no_grad(): write_safetensors(${JSON.stringify(join(dir, "images.safetensors"))}, {'images': dec(ids)})`,
    ].join("\n");
    sh(PY, ["-c", py]);
    const theirs = tensorsOf(join(dir, "images.safetensors")).images!;
    expect(theirs.shape).toEqual([4, 1, 28, 28]);
    const run = loadRun(source);
    const ours = await run.image.decodeImages(ids, 4);
    disposeRun(run);
    const diff = ours.reduce((m, v, i) => Math.max(m, Math.abs(v - (theirs.data as Float32Array)[i]!)), 0);
    expect(diff).toBeLessThan(1e-5);
    expect(Math.max(...ours) - Math.min(...ours)).toBeGreaterThan(0.01); // not a blank image
  });
});
