/**
 * The saving side of the kill test (sigkill.test.ts): `node --import tsx save-child.ts <dir> <seed>
 * <commit|naive>` builds the kill test's run from `seed`, prints "start", saves it into `dir` over
 * the run there, and prints "saved". "commit" is saveRun; "naive" is the negative control, the way
 * runs were saved before #27: each file replaced in place (atomically, one by one) in the folder
 * the manifest names, then the manifest — a kill in between leaves a mix.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAtomic } from "../../src/io/checkpoint.ts";
import { saveRun } from "../../src/pipelines/run.ts";
import { KILL_MODEL, tinyRun } from "./tiny-run.ts";

const [dir, seed, mode] = process.argv.slice(2) as [string, string, "commit" | "naive"];
const run = await tinyRun(Number(seed), KILL_MODEL);
const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

let naive: (() => void) | undefined;
if (mode === "naive") {
  // The new files, made by saveRun in a scratch folder before the clock starts.
  const scratch = mkdtempSync(join(tmpdir(), "mmntp-naive-"));
  const made = await saveRun(scratch, run);
  const files = Object.keys(made.files).map((name) => [name, readFileSync(join(scratch, made.checkpoint, name))] as const);
  rmSync(scratch, { recursive: true, force: true });
  naive = () => {
    const { checkpoint } = JSON.parse(readFileSync(join(dir, "run.json"), "utf8")) as { checkpoint: string };
    for (const [name, bytes] of files) writeAtomic(join(dir, checkpoint, name), bytes);
    const { digest: _, ...fields } = { ...made, checkpoint };
    writeAtomic(join(dir, "run.json"), `${JSON.stringify({ ...fields, digest: sha256(JSON.stringify(fields)) }, null, 2)}\n`);
  };
}
process.stdout.write("start\n");
if (naive) naive();
else await saveRun(dir, run);
process.stdout.write("saved\n");
process.exit(0);
