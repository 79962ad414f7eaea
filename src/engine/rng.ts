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

/** A tiny seeded PRNG (mulberry32) for host-side choices: batches, templates, sampling. */
export { mulberry32 as hostRng } from "../data/shuffle.ts";
