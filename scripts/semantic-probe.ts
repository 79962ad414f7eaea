/**
 * How much of the spoken word each token stream carries: a bag-of-ids linear probe (eval/probe.ts)
 * fit on the 12 training speakers' clips and scored on the 4 held-out speakers', for each RVQ
 * level of the codec alone and for HuBERT-style MFCC k-means units (tokenizers/audio/semantic.ts).
 * Given a speech run, also for k-means units of that model's hidden states (HuBERT's second
 * iteration, pipelines/speech-units.ts), at each depth. Prints JSON (docs/audio/speech.md has the
 * table).
 *
 *   npx tsx scripts/semantic-probe.ts [CODEC_DIR] [SPEECH_RUN]   # default runs/codec (`mmntp codec train`)
 */
import "../src/engine/node.ts";
import { loadSpokenDigits } from "../src/data/speech.ts";
import { bagOf, probeAccuracy } from "../src/eval/probe.ts";
import { loadCodec } from "../src/pipelines/codec.ts";
import { loadSpeechRun, disposeSpeechRun } from "../src/pipelines/speech-run.ts";
import { speechExamples } from "../src/pipelines/speech.ts";
import { speechFeatures } from "../src/pipelines/speech-units.ts";
import { assignFrames, clusterFrames, DEFAULT_SEMANTIC, encodeUnits, fitSemanticUnits } from "../src/tokenizers/audio/semantic.ts";

const codec = await loadCodec(process.argv[2] ?? "runs/codec");
const { train, test } = loadSpokenDigits();
const labels = (s: typeof train) => s.clips.map((c) => c.label);
const rows: { tokens: string; vocabulary: number; heldOutAccuracy: number }[] = [];
const ids = async (s: typeof train) => (await codec.encode(s.clips.map((c) => ({ samples: c.samples, sampleRate: 16000 })))).map((t) => t.ids);
const [trainIds, testIds] = [await ids(train), await ids(test)];
const levels = codec.levels;
for (let k = 0; k < levels; k++) {
  const bags = (all: Int32Array[]) => all.map((x) => bagOf(x.filter((_, i) => i % levels === k), codec.vocabSize));
  rows.push({ tokens: `codec level ${k + 1}`, vocabulary: codec.vocabSize, heldOutAccuracy: probeAccuracy({ bags: bags(trainIds), labels: labels(train) }, { bags: bags(testIds), labels: labels(test) }, 10) });
}
for (const n of [64, 256]) {
  const cfg = { ...DEFAULT_SEMANTIC, units: n };
  const units = await fitSemanticUnits(train.clips.map((c) => c.samples), cfg);
  const bags = async (s: typeof train) => (await encodeUnits(units, s.clips.map((c) => c.samples))).map((u) => bagOf(u, n));
  rows.push({ tokens: `MFCC k-means units`, vocabulary: n, heldOutAccuracy: probeAccuracy({ bags: await bags(train), labels: labels(train) }, { bags: await bags(test), labels: labels(test) }, 10) });
}
if (process.argv[3]) {
  const run = await loadSpeechRun(process.argv[3]);
  const examples = async (s: typeof train) => speechExamples(run.codec, run.text, s.clips);
  const [a, b] = [await examples(train), await examples(test)];
  for (let layer = 1; layer <= run.model.config.layers; layer++) {
    const n = 64;
    const d = run.model.config.dim;
    const [fa, fb] = [await speechFeatures(run.model, a, layer), await speechFeatures(run.model, b, layer)];
    const clusters = clusterFrames(fa, d, { ...DEFAULT_SEMANTIC, units: n });
    const bags = (f: Float32Array[]) => assignFrames(clusters, f).map((u) => bagOf(u, n));
    rows.push({ tokens: `speech model layer ${layer} k-means units`, vocabulary: n, heldOutAccuracy: probeAccuracy({ bags: bags(fa), labels: labels(train) }, { bags: bags(fb), labels: labels(test) }, 10) });
  }
  disposeSpeechRun(run);
}
console.log(JSON.stringify({ train: train.clips.length, test: test.clips.length, chance: 0.1, rows }, null, 2));
codec.dispose();
