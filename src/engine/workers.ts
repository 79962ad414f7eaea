/**
 * A Web `Worker` over `node:worker_threads`, so jax-js's wasm worker pool runs in Node.
 *
 * How the pool (jax-js 0.1.25, `backend/wasm/parallel.ts`) uses workers:
 * - `new WasmBackend()` runs when `@jax-js/jax` is *loaded*; if `SharedArrayBuffer` and a
 *   global `Worker` exist it makes its memory shared and builds a pool of
 *   `navigator.hardwareConcurrency || 4` workers. So the shim must be installed before the
 *   first import of jax-js (src/engine/index.ts imports this file first); installing later
 *   is worse than useless: kernels are then compiled for shared memory while the backend
 *   memory is not, and every kernel fails to link.
 * - On the first async dispatch (`await x.data()`, `blockUntilReady`) it synchronously does
 *   `new Worker(blobUrl, { type: "module" })` for each worker and posts
 *   `{ type: "init", memory }` straight away; the worker's script sets `self.onmessage` and
 *   calls the global `postMessage`. The pool only assigns `worker.onmessage` / `onerror`,
 *   reads `e.data`, posts no transfer lists, and every message it posts gets exactly one
 *   reply (`ready`, or `done` with `ok` / `error`). It never calls `terminate()`.
 * - `dataSync()` / `js()` still run kernels on the calling thread; only async reads use it.
 * - Kernels below 2^22 multiply-adds run inline on the calling thread, in queue order (mmntp's
 *   vendored patch, vendor/README.md): a worker round trip costs ~0.3 ms, so without it every
 *   small kernel got slower on the pool (decoding 4× slower).
 *
 * Shim design:
 * - A Blob can only be read asynchronously, so each shim starts its thread at once with a
 *   small bootstrap and forwards the blob's text as the thread's first message when it
 *   arrives; messages the pool posts meanwhile wait in a queue (order is kept).
 * - A thread holds the process open only while a request is unanswered (ref while busy,
 *   unref when idle): a finished CLI exits by itself, and an `await` on worker results can
 *   never see an empty event loop. `shutdownEngineWorkers()` also ends them explicitly.
 * - jax-js drops dispatch failures (the pool's job promise is never observed and the
 *   output is read anyway), so an `{ ok: false }` reply, a crashed or exited thread, or work
 *   sent after `shutdownEngineWorkers()` ends the process instead of yielding wrong numbers.
 */
import { resolveObjectURL } from "node:buffer";
import { Worker as ThreadWorker } from "node:worker_threads";

export interface WorkerShimOptions {
  /** Threads that run kernels; 1 = no pool (jax-js computes on the calling thread).
   *  Default: `MMNTP_THREADS`, else 1 (no pool; see `threadsFromEnv`). */
  readonly threads?: number;
}

export interface EngineWorkerStats {
  /** Pool size told to jax-js, or 0 when the shim is not installed. */
  readonly threads: number;
  /** Worker threads started so far (the pool starts them on its first async dispatch). */
  readonly spawned: number;
  /** Worker threads started and not yet terminated. */
  readonly alive: number;
  /** Requests (kernels, routines, inits) the threads have answered: grows with pool use. */
  readonly answered: number;
}

/** What the page-side script in a worker sees as `e` in `self.onmessage = (e) => ...`. */
interface ShimMessageEvent {
  readonly type: "message" | "messageerror";
  readonly data: unknown;
}
interface ShimErrorEvent {
  readonly type: "error";
  readonly message: string;
  readonly error: unknown;
}
type ShimEvent = ShimMessageEvent | ShimErrorEvent;
type Listener = (event: ShimEvent) => void;

// Runs first inside each thread: the Web globals a worker script uses, mapped onto
// parentPort. The first message is the script itself (strict, like the module it was).
const BOOTSTRAP = `"use strict";
const { parentPort } = require("node:worker_threads");
const { runInThisContext } = require("node:vm");
const listeners = new Set();
globalThis.self = globalThis;
globalThis.onmessage = null;
globalThis.postMessage = (data, transfer) => parentPort.postMessage(data, transfer);
globalThis.addEventListener = (type, fn) => { if (type === "message") listeners.add(fn); };
globalThis.removeEventListener = (type, fn) => { listeners.delete(fn); };
globalThis.close = () => process.exit(0);
let loaded = false;
parentPort.on("message", (data) => {
  if (!loaded) {
    loaded = true;
    runInThisContext('"use strict";\\n' + data, { filename: "jax-js-worker.js" });
    return;
  }
  const event = { type: "message", data };
  if (typeof self.onmessage === "function") self.onmessage(event);
  for (const fn of listeners) fn(event);
});
`;

let installedThreads = 0;
let spawned = 0;
let answered = 0;
const alive = new Set<NodeWebWorker>();
let lastSource: { url: string; text: Promise<string> } | undefined;

/** The pool makes all its workers from one blob URL in one go: read it once. */
function readBlobUrl(url: string): Promise<string> {
  if (lastSource?.url !== url) {
    const blob = resolveObjectURL(url);
    if (blob === undefined) throw new Error(`Worker shim: blob URL ${url} is not registered (revoked already?)`);
    lastSource = { url, text: blob.text() };
  }
  return lastSource.text;
}

/**
 * jax-js never observes a failed dispatch: the pool's job promise is dropped and the output
 * is read from memory regardless, so results would be silently wrong. A failure therefore
 * ends the process, like an uncaught exception.
 */
function fail(message: string, cause?: unknown): void {
  const error = new Error(`${message} (MMNTP_THREADS=1 runs kernels on the main thread instead)`, cause === undefined ? {} : { cause });
  process.nextTick(() => {
    throw error;
  });
}

/** The subset of the Web `Worker` API that jax-js's pool uses, plus listeners. */
class NodeWebWorker {
  onmessage: Listener | null = null;
  onmessageerror: Listener | null = null;
  onerror: Listener | null = null;
  readonly #thread: ThreadWorker;
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #exited: Promise<void>;
  #queue: unknown[] | undefined = []; // undefined once the script has been sent
  #unanswered = 0;
  #ended = false;

  constructor(url: string | URL, _options?: { type?: "classic" | "module"; name?: string }) {
    const href = String(url);
    if (!href.startsWith("blob:")) throw new Error(`Worker shim: only blob: URLs are supported, got ${href}`);
    const source = readBlobUrl(href);
    // No execArgv: the parent's (tsx's loader, --input-type=module) would change how the
    // bootstrap is evaluated and slow every thread's start.
    this.#thread = new ThreadWorker(BOOTSTRAP, { eval: true, execArgv: [] });
    spawned++;
    alive.add(this);
    this.#thread.unref(); // idle until the first request
    this.#thread.on("message", (data: unknown) => this.#onReply(data));
    this.#thread.on("messageerror", (error: unknown) => this.#emit({ type: "messageerror", data: error }));
    this.#thread.on("error", (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      this.#emit({ type: "error", message, error });
      fail(`jax-js wasm worker thread crashed: ${message}`, error);
    });
    this.#exited = new Promise((resolve) => {
      this.#thread.once("exit", (code: number) => {
        alive.delete(this);
        const deliberate = this.#ended;
        this.#ended = true;
        // The pool never replaces a worker and waits for every answer.
        if (!deliberate || this.#unanswered > 0) fail(`jax-js wasm worker thread exited (code ${code}) with ${this.#unanswered} requests unanswered`);
        resolve();
      });
    });
    source.then(
      (text) => {
        if (this.#ended) return;
        this.#thread.postMessage(text);
        for (const data of this.#queue ?? []) this.#thread.postMessage(data);
        this.#queue = undefined;
      },
      (error: unknown) => {
        this.#emit({ type: "error", message: `Worker shim: cannot read ${href}: ${String(error)}`, error });
        fail(`Worker shim: cannot read ${href}`, error);
      },
    );
  }

  /** Transfer lists are ignored: the pool sends none, and it shares its memory anyway. */
  postMessage(data: unknown): void {
    if (this.#ended) return fail("jax-js dispatched work after shutdownEngineWorkers()");
    if (this.#unanswered++ === 0) this.#thread.ref();
    if (this.#queue) this.#queue.push(data);
    else this.#thread.postMessage(data);
  }

  addEventListener(type: string, listener: Listener): void {
    const set = this.#listeners.get(type) ?? new Set<Listener>();
    set.add(listener);
    this.#listeners.set(type, set);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.#listeners.get(type)?.delete(listener);
  }

  terminate(): void {
    void this.end();
  }

  /** `terminate()` that can be awaited. */
  end(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      void this.#thread.terminate();
    }
    return this.#exited;
  }

  #onReply(data: unknown): void {
    answered++;
    if (this.#unanswered > 0 && --this.#unanswered === 0) this.#thread.unref();
    const reply = data as { ok?: unknown; error?: unknown } | null;
    if (typeof reply === "object" && reply !== null && reply.ok === false) fail(`jax-js wasm worker failed: ${String(reply.error)}`);
    this.#emit({ type: "message", data });
  }

  #emit(event: ShimEvent): void {
    const handler = event.type === "message" ? this.onmessage : event.type === "error" ? this.onerror : this.onmessageerror;
    handler?.call(this, event);
    for (const listener of this.#listeners.get(event.type) ?? []) listener.call(this, event);
  }
}

/** Set by src/engine/index.ts once jax-js has loaded (a global, so this file need not import it). */
export const ENGINE_LOADED = Symbol.for("mmntp.engineLoaded");

export function threadsFromEnv(): number {
  const raw = process.env.MMNTP_THREADS;
  // Default 1 (no pool) for the library; the `mmntp` CLI sets every core (bin/mmntp.js). With
  // a pool, a synchronous read (`js()`, `dataSync()`) of an array whose inputs are still queued
  // on it throws; mmntp's trainers, tokenizers and Decoder read with `await x.data()` and wait
  // for their outputs, so they are safe, but arbitrary user code may not be.
  if (raw === undefined || raw === "") return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`MMNTP_THREADS must be a positive integer, got "${raw}"`);
  return n;
}

/**
 * Give Node a global `Worker` (and `navigator.hardwareConcurrency = threads`) so jax-js's
 * wasm backend runs kernels on a pool of `threads` worker threads. Must run before
 * `@jax-js/jax` is first imported (see the file comment). Does nothing when `threads` is 1,
 * when the platform already has a `Worker`, or on a second call.
 * @returns the pool size jax-js will use, or 0 when no pool was set up.
 */
export function installWorkerShim(options: WorkerShimOptions = {}): number {
  const threads = options.threads ?? threadsFromEnv();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
  const g = globalThis as { Worker?: unknown; navigator?: object; [ENGINE_LOADED]?: boolean };
  // jax-js already loaded (a core module was imported before node.ts): its backend memory is not
  // shared, so a pool now would get kernels compiled for shared memory that fail to link. No pool.
  if (g[ENGINE_LOADED]) return installedThreads;
  if (installedThreads > 0 || threads === 1 || g.Worker !== undefined || typeof SharedArrayBuffer === "undefined") return installedThreads;
  if (g.navigator === undefined) {
    // The navigator Node >= 21 has; Node 20 has none, and jax-js reads only this field here.
    const major = process.versions.node.split(".")[0];
    const navigator = { hardwareConcurrency: threads, userAgent: `Node.js/${major}`, platform: process.platform, language: "en-US", languages: ["en-US"] };
    Object.defineProperty(globalThis, "navigator", { value: navigator, configurable: true, writable: true });
  } else {
    Object.defineProperty(g.navigator, "hardwareConcurrency", { value: threads, configurable: true });
  }
  Object.defineProperty(globalThis, "Worker", { value: NodeWebWorker, configurable: true, writable: true });
  installedThreads = threads;
  return threads;
}

/** Pool size, threads started and alive, requests answered: is the pool really in use? */
export function engineWorkerStats(): EngineWorkerStats {
  return { threads: installedThreads, spawned, alive: alive.size, answered };
}

/**
 * Terminate the pool's threads. Not needed for a process to exit (idle threads do not hold
 * it open); for tests and explicit teardown. Async work submitted afterwards ends the
 * process (see `fail`), so call it only when done with the engine.
 */
export async function shutdownEngineWorkers(): Promise<void> {
  await Promise.all([...alive].map((worker) => worker.end()));
}

// Installed on first import, ahead of jax-js (src/engine/node-preload.ts, which node.ts imports
// before the core); MMNTP_THREADS=1 keeps every kernel on the calling thread.
installWorkerShim();
