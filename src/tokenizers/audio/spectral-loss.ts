/**
 * The multi-resolution STFT loss of Parallel WaveGAN (Yamamoto et al. 2020) that SoundStream and
 * EnCodec train their codecs with, beside a waveform L1: at each resolution (nFft, hop = nFft/4),
 *
 *   spectral convergence  ‖ |X| − |Y| ‖_F / ‖ |X| ‖_F
 *   log magnitude         mean | ln(|X| + ε) − ln(|Y| + ε) |
 *
 * summed and averaged over the resolutions. Small windows see timing, large ones pitch; one
 * resolution alone leaves artefacts the other would hear. Differentiable (stft.ts).
 */
import { np, type Array } from "../../engine/index.ts";
import { stft } from "./stft.ts";

/** ε inside |X| = sqrt(re² + im² + ε²) and ln(|X| + ε): keeps both finite, with finite gradients, on silence. */
const EPS = 1e-5;

function magnitude(x: Array, nFft: number): Array {
  const s = stft(x, { nFft, hop: nFft / 4 });
  return np.sqrt(np.square(s.real).add(np.square(s.imag)).add(EPS * EPS));
}

/** x, y [B, T] (target, reconstruction) → the loss, a scalar. Consumes x and y. */
export function multiResolutionStftLoss(x: Array, y: Array, resolutions: readonly number[]): Array {
  if (resolutions.length === 0) throw new Error("multiResolutionStftLoss: expected at least one resolution");
  let total: Array | undefined;
  resolutions.forEach((nFft, i) => {
    const last = i === resolutions.length - 1;
    const mx = magnitude(last ? x : x.ref, nFft);
    const my = magnitude(last ? y : y.ref, nFft);
    const diff = mx.ref.sub(my.ref);
    const sc = np.sqrt(np.square(diff).sum()).div(np.sqrt(np.square(mx.ref).sum()).add(EPS));
    const logMag = np.abs(np.log(mx.add(EPS)).sub(np.log(my.add(EPS)))).mean();
    const term = sc.add(logMag);
    total = total ? total.add(term) : term;
  });
  return total!.div(resolutions.length);
}
