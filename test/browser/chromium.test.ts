import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleForBrowser } from "./bundle.ts";

/**
 * The browser bundle in a real browser: headless Chromium loads src/browser.ts bundled by esbuild,
 * rebuilds an image tokenizer that Node saved (safetensors bytes + JSON config), encodes an MNIST
 * digit and decodes the ids, on jax-js's wasm backend (no WebGPU adapter without a GPU; no
 * SharedArrayBuffer without cross-origin isolation, so no worker pool). Node computes the
 * reference with MMNTP_NATIVE=0 so both sides run jax-js's own wasm kernels (the native GEMM rounds
 * differently): the ids must match exactly, the pixels to float32 rounding.
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`test/browser/chromium.test.ts skipped: no ${CHROMIUM}. Install it (Debian/Ubuntu: apt-get install -y --no-install-recommends chromium); .ci/run does.`);

const DIGIT = 0; // the first embedded MNIST digit
const tmp = mkdtempSync(join(tmpdir(), "mmntp-chromium-"));

type Result = { ids: number[]; shape: number[]; pixels: number[] };

/** Node side, in a child so the engine runs without the native GEMM; writes what the page fetches. */
function nodeReference(): Result & { native: boolean } {
  const out = JSON.stringify(tmp);
  const script = `
    import { writeFileSync } from "node:fs";
    import { join } from "node:path";
    import { AutoencoderTokenizer, encodeSafetensors, loadMnist, MNIST_VQVAE, nativeStats, startEngine } from "./src/index.ts";
    await startEngine();
    const digit = loadMnist().images.slice(${DIGIT * 784}, ${(DIGIT + 1) * 784});
    const tok = AutoencoderTokenizer.init(MNIST_VQVAE, 0);
    const [ids] = await tok.encode([{ data: digit, channels: 1, height: 28, width: 28 }]);
    const [image] = await tok.decode([ids]);
    const saved = await tok.save();
    writeFileSync(join(${out}, "tokenizer.safetensors"), encodeSafetensors(saved.tensors));
    writeFileSync(join(${out}, "tokenizer.json"), JSON.stringify({ kind: saved.kind, config: saved.config }));
    writeFileSync(join(${out}, "digit.f32"), new Uint8Array(digit.buffer, digit.byteOffset, digit.byteLength));
    console.log(JSON.stringify({ native: nativeStats().enabled, ids: [...ids.ids], shape: ids.shape, pixels: [...image.data] }));
  `;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, MMNTP_NATIVE: "0", MMNTP_THREADS: "1" },
  });
  if (r.status !== 0) throw new Error(`the Node reference failed (status ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Result & { native: boolean };
}

// The page: fetch the saved tokenizer and the digit, round-trip it, leave the answer on window.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>mmntp browser smoke test</title>
<script type="module">
  import { AutoencoderTokenizer, decodeSafetensors, startEngine } from "./mmntp.js";
  try {
    await startEngine();
    const get = (name) => fetch(name).then((r) => { if (!r.ok) throw new Error(name + ": HTTP " + r.status); return r; });
    const [bytes, saved, digit] = await Promise.all([
      get("tokenizer.safetensors").then((r) => r.arrayBuffer()),
      get("tokenizer.json").then((r) => r.json()),
      get("digit.f32").then((r) => r.arrayBuffer()),
    ]);
    const tok = AutoencoderTokenizer.fromSaved({ ...saved, tensors: decodeSafetensors(new Uint8Array(bytes)).tensors });
    const [ids] = await tok.encode([{ data: new Float32Array(digit), channels: 1, height: 28, width: 28 }]);
    const [image] = await tok.decode([ids]);
    tok.dispose();
    window.mmntpResult = { ids: [...ids.ids], shape: ids.shape, pixels: [...image.data] };
  } catch (e) {
    window.mmntpResult = { error: String(e && e.stack ? e.stack : e) };
  }
</script>
`;

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".json": "application/json" };

/** Serves `files` (name → bytes) on 127.0.0.1 at a free port. */
async function serve(files: ReadonlyMap<string, string | Uint8Array>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const name = new URL(req.url ?? "/", "http://localhost").pathname.slice(1) || "index.html";
    const body = files.get(name);
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": TYPES[name.slice(name.lastIndexOf("."))] ?? "application/octet-stream", "cache-control": "no-store" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error(`unexpected server address ${address}`);
  return { server, url: `http://127.0.0.1:${address.port}/` };
}

describe.skipIf(!hasChromium)("the browser bundle in headless Chromium", () => {
  let reference: Result & { native: boolean };
  let server: Server | undefined;
  let url: string;
  let browser: Browser | undefined;

  beforeAll(async () => {
    const bundle = await bundleForBrowser("src/browser.ts", ROOT);
    if (bundle.code === undefined) throw new Error(`src/browser.ts did not bundle:\n${bundle.errors.join("\n")}`);
    reference = nodeReference();
    const files = new Map<string, string | Uint8Array>([
      ["index.html", PAGE],
      ["mmntp.js", bundle.code],
      ...["tokenizer.safetensors", "tokenizer.json", "digit.f32"].map((name) => [name, readFileSync(join(tmp, name))] as [string, Uint8Array]),
    ]);
    ({ server, url } = await serve(files));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // playwright's launch gives each browser a fresh temporary profile (user-data dir)
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    rmSync(tmp, { recursive: true, force: true });
  });

  it("the Node reference ran on jax-js's wasm kernels", () => {
    expect(reference.native).toBe(false);
    expect(reference.shape).toEqual([7, 7]);
  });

  it("rebuilds the saved tokenizer and round-trips a digit: the same ids as Node, pixels within 1e-5", async () => {
    const page = await browser!.newPage();
    const log: string[] = [];
    page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
    await page.goto(url);
    const handle = await page.waitForFunction(() => (window as unknown as { mmntpResult?: unknown }).mmntpResult, undefined, { timeout: 150_000 });
    const got = (await handle.jsonValue()) as Result & { error?: string };
    await page.close();
    expect(got.error, `the page failed:\n${got.error}\n${log.join("\n")}`).toBeUndefined();
    expect(got.shape).toEqual(reference.shape);
    expect(got.ids).toEqual(reference.ids);
    expect(got.pixels).toHaveLength(784);
    const worst = Math.max(...got.pixels.map((p, i) => Math.abs(p - reference.pixels[i]!)));
    expect(worst).toBeLessThanOrEqual(1e-5);
  });
});
