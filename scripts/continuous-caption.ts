/**
 * The continuous-input captioner (src/pipelines/continuous.ts) trained in its default
 * configuration (a CNN encoder, LLaVA-1.5's MLP projector, a small transformer) on the embedded
 * MNIST digits outside the demo's held-out split, then scored on those 1,500 held-out digits as
 * the demo scores its captions. Prints one JSON line: caption_accuracy, steps, seconds, config.
 *
 *   node --import tsx scripts/continuous-caption.ts                       # the default (≈ 4 min on 2 cores)
 *   node --import tsx scripts/continuous-caption.ts --set steps=20        # a smoke run
 *   node --import tsx scripts/continuous-caption.ts --set encoder=vit --set projector=resampler
 */
import "../src/engine/node.ts";
import { applyOverrides, parseArgs } from "../src/cli/args.ts";
import { DEFAULT_CONTINUOUS } from "../src/pipelines/continuous-config.ts";
import { runContinuousCaptioning } from "../src/pipelines/continuous.ts";

const SPEC = {
  usage: "node --import tsx scripts/continuous-caption.ts",
  options: [{ name: "set", type: "string", multiple: true, help: "override a config key by dotted path, e.g. steps=500 or backbone.layers=3" }],
} as const;

const args = parseArgs(process.argv.slice(2), SPEC);
if (args.kind === "help") {
  console.log(args.text);
  process.exit(0);
}
const report = await runContinuousCaptioning(applyOverrides(DEFAULT_CONTINUOUS, args.values.set));
console.log(JSON.stringify(report));
