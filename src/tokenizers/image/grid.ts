/**
 * The auto-encoder's token grid (`ConvAEConfig.grid`): how many stride-2 stages make it, each
 * stage's kernel, the grid they give, and the check that a grid is one the stages can make.
 * Each stage takes a side n to ⌈n/2⌉ (kernel 4 from an even side, 3 from an odd one, padding 1).
 */
import { InputError } from "../../io/errors.ts";

/** What decides the stages: the image height, and `grid` (absent: two stages). */
export type StageConfig = { readonly height?: number; readonly grid?: number | undefined };

/** Stride-2 stages the encoder may have. */
export const MAX_STAGES = 3;

/** [n, ⌈n/2⌉, ⌈n/4⌉, …]: a side after 0, 1, … stride-2 stages. */
export function halvings(n: number, stages = MAX_STAGES): number[] {
  const sides = [n];
  for (let i = 0; i < stages; i++) sides.push(Math.ceil(sides[i]! / 2));
  return sides;
}

/** How many stride-2 stages make `cfg.grid` (2 when absent). Assumes a checked config. */
export function stagesOf(cfg: { readonly height: number; readonly grid?: number | undefined }): number {
  return cfg.grid === undefined ? 2 : halvings(cfg.height).indexOf(cfg.grid);
}

/** A stride-2 stage's kernel: 4 from an even side (n → n/2), 3 from an odd one (n → (n+1)/2), both padded by 1. */
const kernelFrom = (side: number) => (side % 2 === 0 ? 4 : 3);

/** The latent grid [rows, columns]: 28×28 → 7×7 by default; see `ConvAEConfig.grid`. */
export const latentGrid = (cfg: { readonly height: number; readonly width: number; readonly grid?: number | undefined }) => {
  const d = stagesOf(cfg);
  return [halvings(cfg.height, d)[d]!, halvings(cfg.width, d)[d]!] as const;
};

/** Each stage's kernel, from the side it reads (height and width halve alike: checked). */
export const stageKernels = (cfg: { readonly height: number; readonly grid?: number | undefined }) => {
  const d = stagesOf(cfg);
  return halvings(cfg.height, d).slice(0, d).map(kernelFrom);
};

/** Stages of a model from the parts of its config that decide them (`grid`, and `height` when it is set). */
export const stagesFor = (cfg: StageConfig) => (cfg.grid === undefined ? 2 : stagesOf(cfg as { height: number; grid: number }));

/** Throws an InputError naming `where` when no stage count makes a `grid`-row grid of height × width images. */
export function checkGrid(height: number, width: number, grid: unknown, where: string): void {
  const [hs, ws] = [halvings(height), halvings(width)];
  const options = [...new Set(hs.slice(1))];
  const d = hs.indexOf(grid as number);
  if (!Number.isInteger(grid) || d < 1) {
    throw new InputError(`${where}.grid: a ${JSON.stringify(grid)}-row grid does not divide ${height}-row images: each stride-2 stage halves a side (${hs.join(" → ")}), so grid must be one of ${options.join(", ")}`, { field: "grid", value: grid });
  }
  const odd = hs.slice(0, d).findIndex((n: number, i: number) => n % 2 !== ws[i]! % 2);
  if (odd >= 0) {
    throw new InputError(`${where}: ${height}×${width} images halve unevenly: stage ${odd + 1} reads sides ${hs[odd]} and ${ws[odd]}, one odd and one even, and the encoder's square kernels need both alike (pad the images, or pick another grid)`, { field: "width", value: width });
  }
}
