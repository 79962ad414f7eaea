/**
 * A linear probe of discrete tokens: how much of a label (the spoken word) a stream of ids
 * carries. Each clip becomes its bag of ids (the histogram of its units or of one codec level's
 * codes, normalized to sum 1), and multinomial logistic regression is fit on the training clips by
 * full-batch gradient descent, then scored on held-out clips. A bag drops order, so the probe
 * measures which sounds a level holds, not how they are arranged: a level that carries content
 * (the phones of "seven") scores high on speakers it never heard, one that carries voice or fine
 * acoustic detail scores low (SpeechTokenizer, Zhang et al. 2024, §4 probes its RVQ levels so).
 */

/** ids (values in [0, size)) → their histogram [size], summing to 1. */
export function bagOf(ids: ArrayLike<number>, size: number): Float32Array {
  const h = new Float32Array(size);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= size) throw new Error(`bagOf: id ${v} at ${i} is outside [0, ${size - 1}]`);
    h[v]! += 1 / ids.length;
  }
  return h;
}

export type ProbeSet = { readonly bags: readonly Float32Array[]; readonly labels: readonly number[] };

/**
 * Fit on `train`, return the accuracy on `test`. Features are standardized with the training
 * set's statistics; `l2` penalizes the weights (not the biases); `iters` steps of size `lr`.
 */
export function probeAccuracy(train: ProbeSet, test: ProbeSet, classes: number, { iters = 400, lr = 0.5, l2 = 1e-3 }: { iters?: number; lr?: number; l2?: number } = {}): number {
  const d = train.bags[0]!.length;
  const n = train.bags.length;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const b of train.bags) for (let j = 0; j < d; j++) mean[j]! += b[j]! / n;
  for (const b of train.bags) for (let j = 0; j < d; j++) std[j]! += (b[j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]!) + 1e-6;
  const norm = (b: Float32Array) => Float64Array.from(b, (v, j) => (v - mean[j]!) / std[j]!);
  const xs = train.bags.map(norm);
  const w = new Float64Array(classes * d);
  const bias = new Float64Array(classes);
  const scores = (x: Float64Array) => {
    const z = new Float64Array(classes);
    for (let c = 0; c < classes; c++) {
      let s = bias[c]!;
      for (let j = 0; j < d; j++) s += w[c * d + j]! * x[j]!;
      z[c] = s;
    }
    return z;
  };
  for (let it = 0; it < iters; it++) {
    const gw = new Float64Array(classes * d);
    const gb = new Float64Array(classes);
    xs.forEach((x, i) => {
      const z = scores(x);
      const m = Math.max(...z);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += (z[c] = Math.exp(z[c]! - m));
      for (let c = 0; c < classes; c++) {
        const g = z[c]! / sum - (train.labels[i] === c ? 1 : 0);
        gb[c]! += g / n;
        for (let j = 0; j < d; j++) gw[c * d + j]! += (g * x[j]!) / n;
      }
    });
    for (let k = 0; k < w.length; k++) w[k]! -= lr * (gw[k]! + l2 * w[k]!);
    for (let c = 0; c < classes; c++) bias[c]! -= lr * gb[c]!;
  }
  let right = 0;
  test.bags.forEach((b, i) => {
    const z = scores(norm(b));
    if (z.indexOf(Math.max(...z)) === test.labels[i]) right++;
  });
  return right / test.bags.length;
}
