/**
 * Images/s of each generation order on the demo-size text→image model (d 96, 3 layers, 7×7 =
 * 49 image tokens; next-scale: scales 1, 2, 3, 5, 7 = 88 tokens), at batch 1 and batched, with
 * and without classifier-free guidance (which doubles the rows), and the model passes each needs.
 * Speed does not depend on what the weights learned, so the models are freshly initialised (no
 * training in the benchmark); the decoded codes go through the VQ-VAE decoder as `generate` does.
 * Ratios are against raster decoding with the KV cache in the same run.
 *
 *   npm run bench:orders                      # one JSON object on stdout
 *   npm run bench:orders -- --reps 9 --batch 64
 */
import { startEngine, tree } from "../src/engine/node.ts";
import { KeyStream } from "../src/engine/rng.ts";
import { initTargetPositions, type OrderParams } from "../src/backbone/orders/forward.ts";
import type { TrainedOrder } from "../src/backbone/orders/training.ts";
import { initTransformer } from "../src/backbone/transformer.ts";
import { DEFAULT_PAIRED } from "../src/backbone/sequence/presets.ts";
import { OrderDecoder, orderLength, type DecodeOrder } from "../src/generate/order-decoder.ts";
import { imagesPerSecond, passesOf, tokenizerConfig } from "../src/experiments/orders.ts";
import { DEFAULT_ORDERS_EXPERIMENT } from "../src/experiments/orders-config.ts";
import { generateWithOrder, imagePrompt, orderVocabOfSizes } from "../src/pipelines/orders.ts";
import { AutoencoderTokenizer } from "../src/tokenizers/image/autoencoder.ts";
import { benchArgs, positiveInt, printReport } from "./lib/cli.ts";
import { loadAverage, machineInfo, round, today, versions } from "./lib/machine.ts";

const SPEC = {
  usage: "npm run bench:orders --",
  description: "Images/s per generation order (raster, MaskGIT 4/8/12, random order, next-scale) on the demo-size model. One JSON object on stdout.",
  options: [
    { name: "reps", type: "number", default: 7, help: "timed single-image generations per variant (median)" },
    { name: "batch", type: "number", default: 64, help: "images generated at once for the batched figure" },
    { name: "text-vocab", type: "number", default: 40, help: "text ids in the joint vocabulary (the demo's tokenizer has about this many)" },
  ],
} as const;

const log = (msg: string) => process.stderr.write(`[bench:orders] ${msg}\n`);

async function main(): Promise<void> {
  const args = benchArgs(SPEC);
  if (!args) return;
  const reps = positiveInt("reps", args.reps);
  const batch = positiveInt("batch", args.batch);
  await startEngine();
  const cfg = DEFAULT_ORDERS_EXPERIMENT;
  const variants: { order: TrainedOrder; decode: DecodeOrder; label: string }[] = [
    { order: { name: "raster" }, decode: { name: "raster" }, label: "raster" },
    ...cfg.maskgitSteps.map((steps) => ({ order: { name: "maskgit" } as const, decode: { name: "maskgit", steps } as const, label: `maskgit-${steps}` })),
    { order: { name: "random" }, decode: { name: "random", order: "random" }, label: "random" },
    { order: { name: "next-scale", scales: cfg.scales }, decode: { name: "next-scale" }, label: "next-scale" },
  ];
  const results = [];
  for (const { order, decode, label } of variants) {
    const image = AutoencoderTokenizer.init(tokenizerConfig(order.name, cfg), 0);
    const vocab = orderVocabOfSizes(args["text-vocab"], image.codebookSize);
    const shape = image.tokenShape;
    const prompt = (d: number) => [3 + (d % 10), 7];
    const p = imagePrompt(vocab, prompt(0), shape, DEFAULT_PAIRED).length;
    const config = { ...cfg.model, contextLength: orderLength(order.name, p, image.tokensPerImage), vocabSize: vocab.size };
    const keys = new KeyStream(1);
    const params: OrderParams = initTransformer(keys, config);
    if (order.name === "random") params.target = initTargetPositions(keys, image.tokensPerImage, config.dim);
    keys.dispose();
    const decoder = new OrderDecoder({ params, config, order }, vocab);
    const row: Record<string, number | string> = { variant: label, passes_per_image: passesOf(decode, image.tokensPerImage, order), tokens_per_image: image.tokensPerImage };
    for (const guidance of [1, 3]) {
      const gen = async (count: number, seed: number) => {
        const codes = await generateWithOrder(decoder, vocab, Array.from({ length: count }, (_, i) => prompt(i)), shape, { order: decode, sampling: { temperature: 0.6, topK: 0 }, seed, guidance, layout: DEFAULT_PAIRED });
        await image.decodeImages(Int32Array.from(codes.flat()), count);
      };
      const speed = await imagesPerSecond(gen, reps, batch);
      const suffix = guidance === 1 ? "" : "_guided";
      row[`images_per_s_batch1${suffix}`] = round(speed.batch1, 2);
      row[`images_per_s_batch${batch}${suffix}`] = round(speed.batched, 2);
      log(`${label}${suffix}: ${round(speed.batch1, 2)} img/s at batch 1, ${round(speed.batched, 2)} at batch ${batch}`);
    }
    results.push(row);
    decoder.dispose();
    tree.dispose(params);
    image.dispose();
  }
  const raster = results[0]!;
  const ratios = Object.fromEntries(
    results.slice(1).map((r) => [
      r.variant,
      Object.fromEntries(Object.keys(r).filter((k) => k.startsWith("images_per_s")).map((k) => [k, round((r[k] as number) / (raster[k] as number), 2)])),
    ]),
  );
  printReport({ bench: "orders", date: today(), machine: machineInfo(), versions: versions(), threads: process.env.MMNTP_THREADS ?? "default", load_average: loadAverage(), model: cfg.model, results, ratios_over_raster: ratios });
}

await main();
