/**
 * One hostile input read in a process of its own, so that its memory is measured alone
 * (memory.test.ts): `node --import tsx bounded-child.ts <case> <file>` prints one JSON line with
 * the error's class and message, the time taken and the growth of the peak RSS over the RSS
 * before the read (the peak of start-up, if higher, is counted too: an overestimate).
 */
import { readFileSync } from "node:fs";
import { loadIdxImageSet, readIdx } from "../../src/data/idx.ts";
import { readGrayImage } from "../../src/io/png.ts";

const [which, file] = process.argv.slice(2) as [string, string];
const READS: Record<string, () => unknown> = {
  png: () => readGrayImage(file),
  idx: () => readIdx(readFileSync(file)),
  "idx-files": () => loadIdxImageSet(file, file),
};
const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
let error: { name: string; message: string } | null = null;
try {
  READS[which]!();
} catch (e) {
  error = { name: (e as Error).constructor.name, message: (e as Error).message };
}
const ms = performance.now() - t0;
const peak = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify({ which, file, error, ms, rssGrowthMB: (peak - rss0) / 2 ** 20 }));
