import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError } from "../../src/io/errors.ts";
import { disposeRun, loadRun } from "../../src/pipelines/run.ts";
import { applyByteOps, applyJsonOps, byteOps, jsonOps, Tally } from "./mutate.ts";
import { saveTinyRun } from "./tiny-run.ts";

/**
 * Property-based fuzzing of `loadRun` (what `mmntp caption` and `generate` call first) on a toy run
 * folder: one of its files mutated — run.json, or a checkpoint file — and then either left as it
 * is (the manifest's hashes must catch it) or re-sealed (its hash in run.json and run.json's
 * digest recomputed, as a deliberate editor would), so the mutation reaches the validators behind
 * the hashes. Every input must load, or be refused with an InputError, within 2 s of CPU.
 */
/** Per input, in CPU time: a hang or a runaway loop trips it, descheduling on a busy machine does not. */
const BOUND_MS = 2000;
const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};
const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const dir = mkdtempSync(join(tmpdir(), "mmntp-fuzz-run-"));
let pristine: { manifest: string; checkpoint: string; files: Map<string, Buffer> };

beforeAll(async () => {
  await saveTinyRun(dir);
  const manifest = readFileSync(join(dir, "run.json"), "utf8");
  const m = JSON.parse(manifest) as { checkpoint: string; files: Record<string, string> };
  pristine = { manifest, checkpoint: m.checkpoint, files: new Map(Object.keys(m.files).map((f) => [f, readFileSync(join(dir, m.checkpoint, f))])) };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * run.json with `change` made and its digest recomputed (saveRun's rule: the sha-256 of the other
 * fields, in order); as it is when it cannot be sealed (not an object, or too deep to stringify).
 */
function sealed(manifestText: string, change: (m: Record<string, unknown>) => void = () => {}): string {
  try {
    const m = JSON.parse(manifestText) as unknown;
    if (typeof m !== "object" || m === null || Array.isArray(m)) return manifestText;
    change(m as Record<string, unknown>);
    const { digest: _, ...fields } = m as Record<string, unknown>;
    return `${JSON.stringify({ ...fields, digest: sha256(JSON.stringify(fields)) }, null, 2)}\n`;
  } catch {
    return manifestText;
  }
}

/** Writes the mutated file (and run.json), loads, restores. The outcome: "loaded" or the refusal's kind. */
function attempt(tally: Tally, name: string, bytes: Uint8Array, reseal: boolean): void {
  const target = name === "run.json" ? join(dir, "run.json") : join(dir, pristine.checkpoint, name);
  writeFileSync(target, bytes);
  if (name !== "run.json" && reseal) writeFileSync(join(dir, "run.json"), sealed(pristine.manifest, (m) => ((m.files as Record<string, string>)[name] = sha256(bytes))));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let result = "loaded";
  try {
    disposeRun(loadRun(dir));
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    const m = e.message;
    result = /sha-256 differs/.test(m) ? "refused: hash" : /digest/.test(m) ? "refused: digest" : /invalid JSON|nested/.test(m) ? "refused: JSON" : "refused: validator";
  } finally {
    writeFileSync(target, name === "run.json" ? pristine.manifest : pristine.files.get(name)!);
    writeFileSync(join(dir, "run.json"), pristine.manifest);
  }
  const [ms, cpu] = [performance.now() - t0, cpuMs(cpu0)];
  tally.add(result, ms);
  expect(cpu, `one input took ${cpu.toFixed(0)} ms of CPU`).toBeLessThan(BOUND_MS);
}

const text = (name: string) => (name === "run.json" ? pristine.manifest : pristine.files.get(name)!.toString("utf8"));
const utf8 = (s: string) => new TextEncoder().encode(s);

describe("fuzz: loadRun", () => {
  const tally = new Tally();

  // Per JSON file: structural edits re-sealed (reach the validators), byte edits re-sealed, and
  // byte edits left unsealed (the hash or digest must refuse them).
  it.each([
    ["run.json", 2731],
    ["model.json", 2732],
    ["image-tokenizer.json", 2733],
    ["judge.json", 2734],
    ["tokenizer.json", 2735],
  ])("%s: 300 mutations, structural and byte-level, sealed and not", (name, seed) => {
    const json = (ops: Parameters<typeof applyJsonOps>[1], reseal: boolean) => {
      const mutated = applyJsonOps(text(name), ops);
      return utf8(name === "run.json" && reseal ? sealed(mutated) : mutated); // run.json's own seal is its digest
    };
    fc.assert(fc.property(jsonOps, fc.boolean(), (ops, reseal) => attempt(tally, name, json(ops, reseal), reseal)), { seed, numRuns: 200 });
    fc.assert(fc.property(byteOps, fc.boolean(), (ops, reseal) => attempt(tally, name, applyByteOps(utf8(text(name)), ops), reseal)), { seed: seed + 100, numRuns: 100 });
  });

  it.each([
    ["model.safetensors", 2741],
    ["image-tokenizer.safetensors", 2742],
    ["judge.safetensors", 2743],
  ])("%s: 100 byte-level mutations, sealed and not", (name, seed) => {
    fc.assert(fc.property(byteOps, fc.boolean(), (ops, reseal) => attempt(tally, name, applyByteOps(pristine.files.get(name)!, ops), reseal)), { seed, numRuns: 100 });
  });

  it("tried ≥ 1,000 inputs; some loaded, the rest refused at each layer", () => {
    tally.report("loadRun");
    expect(tally.total).toBeGreaterThanOrEqual(1800);
    for (const kind of ["loaded", "refused: hash", "refused: digest", "refused: JSON", "refused: validator"]) expect(tally.counts.get(kind), kind).toBeGreaterThan(0);
  });
});
