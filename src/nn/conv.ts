import { lax, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { fanIn, zeros } from "./init.ts";
import { fmt } from "./shapes.ts";

/** Conv2d: w: [Cout, Cin, k, k] (PyTorch layout), b: [Cout]. */
export type Conv2dParams = { w: Array; b: Array };
/** ConvTranspose2d: w: [Cin, Cout, k, k] (PyTorch layout), b: [Cout]. */
export type ConvTranspose2dParams = { w: Array; b: Array };
export type ConvOptions = { stride?: number; padding?: number };

export function initConv2d(keys: KeyStream, cin: number, cout: number, k: number): Conv2dParams {
  return { w: fanIn(keys, [cout, cin, k, k], cin * k * k, Math.SQRT2), b: zeros([cout]) };
}

export function initConvTranspose2d(keys: KeyStream, cin: number, cout: number, k: number): ConvTranspose2dParams {
  return { w: fanIn(keys, [cin, cout, k, k], cin * k * k, Math.SQRT2), b: zeros([cout]) };
}

function checkNCHW(x: Array, cin: number, what: string): void {
  if (x.ndim !== 4 || x.shape[1] !== cin) throw new Error(`${what}: expected input [N, ${cin}, H, W], got ${fmt(x.shape)}`);
}

/** x: [N, Cin, H, W] → [N, Cout, (H + 2p - k) / s + 1, …]. Matches torch.nn.Conv2d. */
export function conv2d(p: Conv2dParams, x: Array, { stride = 1, padding = 0 }: ConvOptions = {}): Array {
  checkNCHW(x, p.w.shape[1], "conv2d");
  const y = lax.convGeneralDilated(x, p.w, [stride, stride], [[padding, padding], [padding, padding]]);
  return y.add(p.b.reshape([1, -1, 1, 1]));
}

/** x: [N, Cin, H, W] → [N, Cout, (H - 1) s - 2p + k, …]. Matches torch.nn.ConvTranspose2d. */
export function convTranspose2d(p: ConvTranspose2dParams, x: Array, { stride = 1, padding = 0 }: ConvOptions = {}): Array {
  checkNCHW(x, p.w.shape[0], "convTranspose2d");
  const y = lax.convTranspose(x, p.w, [stride, stride], [[padding, padding], [padding, padding]], { transposeKernel: true });
  return y.add(p.b.reshape([1, -1, 1, 1]));
}
