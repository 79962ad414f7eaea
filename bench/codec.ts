/**
 * How much faster than real time the audio codec encodes and decodes (the audio issue's target:
 * ≥ 50× on 2 cores), at its full bitrate and at 7 levels (5.6 kbps), on the held-out spoken
 * digits: 200 clips, batched by the tokenizer (16 per call, lengths padded to half-seconds), after
 * one warm-up pass so that compiling is not counted. Real time is the reference: a ratio of 50 is
 * 50 s of audio per wall second.
 *
 *   npm run bench:codec -- [--codec runs/codec]    # a trained codec; default: random weights of the default config
 */
import { existsSync } from "node:fs";
import { startEngine } from "../src/engine/node.ts";
import { loadSpokenDigits } from "../src/data/speech.ts";
import { loadCodec } from "../src/pipelines/codec.ts";
import { CodecTokenizer, DEFAULT_CODEC } from "../src/tokenizers/audio/codec-tokenizer.ts";
import { benchArgs } from "./lib/cli.ts";
import { loadAverage, machineInfo, median, versions } from "./lib/machine.ts";

const args = benchArgs({ usage: "npm run bench:codec --", options: [{ name: "codec", type: "string", help: "a codec folder (default: random weights of the default config)" }, { name: "reps", type: "number", default: 3, help: "timed passes" }] } as const);
if (args) {
  await startEngine();
  const clips = loadSpokenDigits().test.clips.map((c) => ({ samples: c.samples, sampleRate: 16000 }));
  const seconds = clips.reduce((a, c) => a + c.samples.length, 0) / 16000;
  const full = args.codec && existsSync(args.codec) ? await loadCodec(args.codec) : CodecTokenizer.init(DEFAULT_CODEC, 0);
  const results = [];
  for (const levels of [full.config.rvq.levels, Math.max(1, full.config.rvq.levels - 1)]) {
    const codec = levels === full.levels ? full : full.withLevels(levels);
    await codec.decode(await codec.encode(clips)); // warm-up: compile every bucket's shapes
    const enc: number[] = [];
    const dec: number[] = [];
    for (let r = 0; r < args.reps; r++) {
      const t0 = performance.now();
      const ids = await codec.encode(clips);
      const t1 = performance.now();
      await codec.decode(ids);
      enc.push((t1 - t0) / 1000);
      dec.push((performance.now() - t1) / 1000);
    }
    results.push({ levels, kbps: codec.bitrate / 1000, audio_s: Number(seconds.toFixed(2)), encode_s: median(enc), decode_s: median(dec), encode_x_realtime: Number((seconds / median(enc)).toFixed(1)), decode_x_realtime: Number((seconds / median(dec)).toFixed(1)) });
    if (codec !== full) codec.dispose();
  }
  full.dispose();
  console.log(JSON.stringify({ bench: "codec", machine: machineInfo(), versions: versions(), threads: Number(process.env.MMNTP_THREADS ?? 1), load: loadAverage(), codec: args.codec ?? "random init (default config)", clips: clips.length, results }, null, 2));
}
