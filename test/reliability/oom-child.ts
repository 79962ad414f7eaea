/**
 * One training step of a small transformer on a large batch, in a process of its own so that
 * `MMNTP_MAX_HEAP` (read at the engine's first growth) applies to it alone
 * (out-of-memory.test.ts): `node --import tsx oom-child.ts` prints one JSON line, the step's loss
 * or the error's class and message.
 */
import { fromHost, startEngine } from "../../src/engine/node.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { describeTransformer, initTransformer, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { nextTokenLoss } from "../../src/train/losses.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";

await startEngine();
const cfg: TransformerConfig = { vocabSize: 512, contextLength: 128, dim: 64, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions: "learned" };
const [B, T] = [64, 128];
const ids = (seed: number) => fromHost(Int32Array.from({ length: B * T }, (_, i) => (i * 7 + seed) % cfg.vocabSize), [B, T]);
try {
  const trainer = new Trainer(initTransformer(new KeyStream(0), cfg), (p, b) => nextTokenLoss(p as TransformerParams, b as never, cfg), DEFAULT_ADAMW, { label: `the test transformer (${describeTransformer(cfg)})` });
  const r = await trainer.step({ inputs: ids(0), targets: ids(1), weights: fromHost(new Float32Array(B * T).fill(1), [B, T]) }, 1e-3);
  console.log(JSON.stringify({ loss: r.loss }));
} catch (e) {
  console.log(JSON.stringify({ error: (e as Error).name, message: (e as Error).message, neededBytes: (e as { neededBytes?: number }).neededBytes }));
}
