/**
 * Does synthesis use the text where the digit is spoken? For each held-out clip, the speech run's
 * synthesis document (`<bos> text <boa> codes…`, pipelines/speech.ts) is scored teacher-forced
 * with the clip's real codes under each of the 10 digit texts ("a handwritten seven" becomes "a
 * handwritten zero" … "a handwritten nine"). The text whose stream-0 log-likelihood over a span of
 * frames is highest is the model's guess of the digit. A model that reads the digit from its text
 * guesses right where the digit is heard: the whole of a single word, the second half of a phrase.
 * A phrase's first half ("a handwritten") is the control: it should stay near chance (10%). Prints
 * JSON (docs/audio/speech.md has the figures).
 *
 *   npx tsx scripts/speech-text-probe.ts [SPEECH_RUN]     # default runs/speech (`mmntp speech train`)
 */
import "../src/engine/node.ts";
import { tree, type Array } from "../src/engine/index.ts";
import { inferenceJit } from "../src/engine/lean.ts";
import { compileStreams, streamBatch } from "../src/backbone/streams.ts";
import { DIGIT_WORDS } from "../src/data/captions.ts";
import { loadSpokenDigits } from "../src/data/speech.ts";
import { disposeSpeechRun, loadSpeechRun } from "../src/pipelines/speech-run.ts";
import { speechExamples, ttsSegments } from "../src/pipelines/speech.ts";
import { streamLogits, tokenLogProbs } from "../src/train/losses.ts";

const run = await loadSpeechRun(process.argv[2] ?? "runs/speech");
const { model, text, codec } = run;
const cfg = model.config;
const t = cfg.contextLength;
const { test } = loadSpokenDigits();
const examples = await speechExamples(codec, text, test.clips.map((c) => ({ samples: c.samples, text: c.text })));
// stream 0's log-probabilities [10, T] of one clip's documents (one compiled shape: padded to the context)
const logProbs = inferenceJit((p: typeof model.params, inputs: Array[], targets: Array) => tokenLogProbs(streamLogits(p, inputs, cfg), targets));
const hits = new Map<string, { right: number; clips: number }>();
const count = (span: string, right: boolean) => {
  const h = hits.get(span) ?? { right: 0, clips: 0 };
  hits.set(span, { right: h.right + (right ? 1 : 0), clips: h.clips + 1 });
};
try {
  for (const e of examples) {
    const words = e.transcript.split(" ");
    const texts = DIGIT_WORDS.map((d) => [...words.slice(0, -1), d].join(" "));
    const seqs = texts.map((s) => compileStreams(model.vocab, ttsSegments({ text: text.encodeText(s), codes: e.codes, frames: e.frames }, { condition: model.textCondition })));
    const batch = streamBatch(model.vocab, seqs, t);
    tree.dispose([batch.targets.slice(1), batch.weights.slice(1)]);
    const lp = (await logProbs(tree.ref(model.params), [...batch.inputs, ...batch.conditions], batch.targets[0]!).data()) as Float32Array;
    const w = (await batch.weights[0]!.data()) as Float32Array;
    // stream 0's weighted cells are frame 0 … F−1's level-0 codes, then <eoa>
    const score = (row: number, lo: number, hi: number) => {
      let s = 0;
      let n = 0;
      for (let p = 0; p < t; p++) {
        if (w[row * t + p]! === 0) continue;
        if (n >= lo && n < hi) s += lp[row * t + p]!;
        n++;
      }
      return s;
    };
    const half = e.frames >> 1;
    const spans: [string, number, number][] =
      words.length > 1
        ? [["phrase, first half", 0, half], ["phrase, second half", half, e.frames], ["phrase, whole", 0, e.frames]]
        : [["single word, whole", 0, e.frames], ["single word, first half", 0, half]];
    for (const [span, lo, hi] of spans) {
      const s = texts.map((_, i) => score(i, lo, hi));
      count(span, DIGIT_WORDS[s.indexOf(Math.max(...s))] === words.at(-1));
    }
  }
} finally {
  logProbs.dispose();
  disposeSpeechRun(run);
}
console.log(JSON.stringify(Object.fromEntries([...hits].map(([k, h]) => [k, { accuracy: Math.round((h.right / h.clips) * 1000) / 1000, clips: h.clips }])), null, 2));
