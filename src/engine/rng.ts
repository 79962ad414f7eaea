import { random, type Array } from "./index.ts";

/**
 * A stream of PRNG keys from one seed: `next()` splits the running key, so every
 * initializer or dropout call gets a fresh, reproducible key without threading
 * keys by hand.
 */
export class KeyStream {
  #key: Array;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
    this.#key = random.key(seed);
  }

  next(): Array {
    const keys = random.split(this.#key, 2); // [2, 2] uint32
    this.#key = keys.ref.slice(0);
    return keys.slice(1);
  }

  dispose(): void {
    this.#key.dispose();
  }
}

/** mulberry32: a tiny seeded PRNG for host-side choices (batches, templates, sampling). */
export function hostRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
