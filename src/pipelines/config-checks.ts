/**
 * The checks every image pipeline's config shares (continuous-config.ts, mar-config.ts,
 * transfusion-config.ts), each failure through the pipeline's own `fail`, so its messages keep
 * the pipeline's prefix ("mar config: steps must be …").
 */

/** Fails (through `fail`) unless v is an integer in [lo, hi], naming the setting and the value. */
export type IntCheck = (what: string, v: unknown, lo: number, hi: number) => void;

export const intChecker =
  (fail: (msg: string) => never): IntCheck =>
  (what, v, lo, hi) => {
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) fail(`${what} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  };

/** seed, the images' C×H×W, steps and batch. */
export function checkImageTraining(cfg: { seed: unknown; image?: { channels?: unknown; height?: unknown; width?: unknown }; steps: unknown; batch: unknown }, int: IntCheck): void {
  int("seed", cfg.seed, 0, 2 ** 31 - 1);
  int("image.channels", cfg.image?.channels, 1, 64);
  int("image.height", cfg.image?.height, 1, 1 << 14);
  int("image.width", cfg.image?.width, 1, 1 << 14);
  int("steps", cfg.steps, 1, 1e7);
  int("batch", cfg.batch, 1, 4096);
}
