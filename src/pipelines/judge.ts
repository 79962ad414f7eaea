/** Pipeline stage: the judge classifier, trained on real labelled images (eval/judge.ts). */
import { fromHost } from "../engine/index.ts";
import { hostRng } from "../engine/rng.ts";
import { imageSize, type DatasetInfo, type ImageSet } from "../data/types.ts";
import { initJudge, Judge, judgeLoss, type JudgeConfig, type JudgeParams } from "../eval/judge.ts";
import { Progress } from "../io/progress.ts";
import { DEFAULT_ADAMW, warmupCosine } from "../train/optim.ts";
import { Trainer } from "../train/step.ts";

export const judgeConfigOf = (info: DatasetInfo): JudgeConfig => ({ height: info.height, width: info.width, channels: info.channels, classes: info.classes.length });

/** `steps` AdamW steps on random batches of 64 (warm-up 20, cosine, peak 3e-3). */
export async function trainJudge(train: ImageSet, info: DatasetInfo, steps: number, seed: number): Promise<Judge> {
  const cfg = judgeConfigOf(info);
  const trainer = new Trainer(initJudge(seed, cfg), (p, b) => judgeLoss(p as JudgeParams, b as never), DEFAULT_ADAMW, { label: "the judge classifier" });
  const rng = hostRng(seed + 1);
  const progress = new Progress({ label: "judge classifier", total: steps });
  const bs = 64;
  const px = imageSize(train);
  for (let step = 0; step < steps; step++) {
    const idx = Array.from({ length: bs }, () => Math.floor(rng() * train.n));
    const images = new Float32Array(bs * px);
    idx.forEach((j, i) => images.set(train.images.subarray(j * px, (j + 1) * px), i * px));
    const batch = { images: fromHost(images, [bs, cfg.channels, cfg.height, cfg.width]), labels: fromHost(Int32Array.from(idx, (j) => train.labels[j]!), [bs]) };
    const r = await trainer.step(batch, warmupCosine(step, { peak: 3e-3, warmup: 20, total: steps }));
    progress.tick(1, { loss: r.loss });
  }
  progress.done();
  const params = trainer.params as JudgeParams;
  trainer.params = {};
  trainer.dispose();
  return new Judge(params, cfg);
}
