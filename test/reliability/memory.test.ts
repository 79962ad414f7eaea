import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constants, crc32, createGzip, deflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_IDX_BYTES } from "../../src/data/idx.ts";

/**
 * The hostile files of issue #27, each read in a child process of its own (bounded-child.ts), so
 * that its memory is its own: every one must end in an InputError within 2 s and 300 MB of RSS
 * growth. Before the bounds, the 68-byte PNG aborted Node inside zlib, the 20000² PNG took 45 s
 * and 1.76 GB, /dev/zero grew to 6 GB, and the 1 MB gzip bomb took 2.2 GB.
 */
const ROOT = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "mmntp-bounds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A PNG chunk: length, type, data, CRC (PNG spec §5.3). */
function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/** A grayscale PNG declaring width × height, with `idat` as its (possibly short) pixel data. */
function png(width: number, height: number, idat: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (gray), deflate, no filter, no interlace
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", Buffer.alloc(0))]);
}

/** `bytes` zeros, gzipped as a stream (never held whole): 1 GiB becomes about 1 MB. */
async function gzipBomb(bytes: number): Promise<Buffer> {
  const gz = createGzip({ level: 9, strategy: constants.Z_RLE });
  const parts: Buffer[] = [];
  gz.on("data", (c: Buffer) => parts.push(c));
  const zero = Buffer.alloc(2 ** 20);
  for (let done = 0; done < bytes; done += zero.length) if (!gz.write(zero)) await once(gz, "drain");
  gz.end();
  await once(gz, "end");
  return Buffer.concat(parts);
}

const files: Record<string, string> = {};
beforeAll(async () => {
  files.png68 = join(dir, "crash.png");
  writeFileSync(files.png68, png(2 ** 31 - 1, 2 ** 31 - 1, deflateSync(Buffer.alloc(16))).subarray(0, 68));
  files.png20000 = join(dir, "huge.png");
  writeFileSync(files.png20000, png(20000, 20000, deflateSync(Buffer.alloc(48 * 2 ** 20)))); // a ~48 KB file, as in the issue
  const bomb = await gzipBomb(2 ** 30);
  files.bomb = join(dir, "bomb.idx.gz");
  writeFileSync(files.bomb, bomb);
  // The same bomb with a trailer that lies (ISIZE just under the limit): inflation stops there.
  const lying = Buffer.from(bomb);
  lying.writeUInt32LE(MAX_IDX_BYTES - 1, lying.length - 4);
  files.lying = join(dir, "lying.idx.gz");
  writeFileSync(files.lying, lying);
}, 60_000);

function child(which: string, file: string): { error: { name: string; message: string } | null; ms: number; rssGrowthMB: number } {
  const r = spawnSync(process.execPath, ["--import", "tsx", "test/reliability/bounded-child.ts", which, file], { cwd: ROOT, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as ReturnType<typeof child>;
}

describe("hostile files end in an InputError within 2 s and 300 MB", () => {
  it.each([
    ["the 68-byte PNG declaring 2³¹−1 × 2³¹−1", "png", "png68", "is 2147483647×2147483647 (width×height), expected 28×28"],
    ["a 48 KB PNG declaring 20000 × 20000", "png", "png20000", "is 20000×20000 (width×height), expected 28×28"],
    ["/dev/zero as a PNG", "png", "/dev/zero", "is not a regular file (a device or special file)"],
    ["/dev/zero as IDX files", "idx-files", "/dev/zero", "is not a regular file; expected an IDX file"],
    ["a 1 MB gzip bomb (1 GiB of zeros) as IDX", "idx", "bomb", `expands past ${MAX_IDX_BYTES} bytes (maxBytes)`],
    ["the bomb with a lying size in its trailer", "idx", "lying", `corrupt gzip data (it expands past the ${MAX_IDX_BYTES - 1} bytes its trailer declares)`],
  ])("%s", (_, which, name, message) => {
    const r = child(which, files[name] ?? name);
    expect(r.error?.name).toBe("InputError");
    expect(r.error?.message).toContain(message);
    // The lying bomb is inflated up to the 256 MiB it declares, as a real file that size would be.
    expect(r.ms).toBeLessThan(name === "lying" ? 5000 : 2000);
    expect(r.rssGrowthMB).toBeLessThan(300);
    if (process.env.MMNTP_FUZZ_REPORT === "1") console.log(`bounds ${name}: ${r.ms.toFixed(0)} ms, peak RSS +${r.rssGrowthMB.toFixed(0)} MB`);
  });
});
