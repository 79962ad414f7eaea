"""Audio feature fixtures for src/tokenizers/audio/ (test/tokenizers/audio-features.test.ts):
mu-law and A-law companding to 8-bit codes, STFT / iSTFT (torch.stft / torch.istft), the HTK mel
filterbank, log-mel and MFCC, on fixed signals, in float64.

The formulas follow torchaudio's (not installed here; Debian has no python3-torchaudio), written
out below: `mu_law_encoding` / `mu_law_decoding`; `melscale_fbanks(norm=None, mel_scale="htk")`;
`MFCC(log_mels=True)` = DCT-II (orthonormal, `create_dct(norm="ortho")`) of log(mel + 1e-6) of the
power spectrogram. A-law is the continuous A = 87.6 law (G.711's curve, without its
segment/bit-inversion byte format), quantized to codes as mu-law is.

Run: /usr/bin/python3 reference/audio_features.py  -> test/fixtures/audio/features.json
"""
import json, math, os
import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "audio")
SR, N_FFT, HOP, N_MELS, N_MFCC = 16000, 64, 16, 12, 8


def mu_law_encode(x, qc=256):
    mu = qc - 1.0
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    return np.floor((y + 1) / 2 * mu + 0.5).astype(np.int64)


def mu_law_decode(c, qc=256):
    mu = qc - 1.0
    y = c / mu * 2 - 1
    return np.sign(y) * (np.exp(np.abs(y) * math.log1p(mu)) - 1) / mu


A = 87.6


def a_law_encode(x, qc=256):
    ax = np.abs(x)
    small = ax < 1 / A
    y = np.where(small, A * ax / (1 + math.log(A)), (1 + np.log(np.maximum(A * ax, 1e-300))) / (1 + math.log(A)))
    y = np.sign(x) * y
    return np.floor((y + 1) / 2 * (qc - 1) + 0.5).astype(np.int64)


def a_law_decode(c, qc=256):
    y = c / (qc - 1) * 2 - 1
    ay = np.abs(y)
    small = ay < 1 / (1 + math.log(A))
    x = np.where(small, ay * (1 + math.log(A)) / A, np.exp(ay * (1 + math.log(A)) - 1) / A)
    return np.sign(y) * x


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)


def mel_to_hz(m):
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


def mel_fbanks(n_freqs, f_min, f_max, n_mels, sr):
    all_freqs = np.linspace(0, sr // 2, n_freqs)
    f_pts = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0, np.minimum(down, up))  # [n_freqs, n_mels]


def dct_ortho(n_mfcc, n_mels):
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    d = np.cos(math.pi / n_mels * (n + 0.5) * k)
    d[0] *= 1 / math.sqrt(2)
    d *= math.sqrt(2 / n_mels)
    return d.T  # [n_mels, n_mfcc]


def main():
    g = torch.Generator().manual_seed(7)
    t = torch.arange(400, dtype=torch.float64) / SR
    # two clips [2, 400]: a chirp-like sum of tones with noise, and a decaying tone
    x = torch.stack([0.5 * torch.sin(2 * math.pi * 440 * t) + 0.3 * torch.sin(2 * math.pi * 2500 * t) + 0.05 * torch.randn(400, generator=g, dtype=torch.float64), 0.8 * torch.exp(-t * 200) * torch.sin(2 * math.pi * 1000 * t)])
    x = x.float().double()  # the fixture stores float32: compute from exactly those values
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    spec = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="reflect", onesided=True, return_complex=True)  # [B, K, F]
    back = torch.istft(spec, N_FFT, HOP, window=window, center=True, length=x.shape[1])
    power = spec.abs() ** 2
    fb = mel_fbanks(N_FFT // 2 + 1, 0.0, SR / 2, N_MELS, SR)
    mel = np.einsum("bkf,km->bfm", power.numpy(), fb)
    log_mel = np.log(mel + 1e-6)
    mfcc = log_mel @ dct_ortho(N_MFCC, N_MELS)
    companding = np.concatenate([np.linspace(-1, 1, 41), np.array([0.0, 1e-4, -1e-4, 0.004, 0.0114, -0.0115, 0.5, -0.999])])
    out = dict(
        sampleRate=SR, nFft=N_FFT, hop=HOP, nMels=N_MELS, nMfcc=N_MFCC,
        x=x.flatten().tolist(), shape=list(x.shape),
        stftReal=spec.real.permute(0, 2, 1).flatten().tolist(), stftImag=spec.imag.permute(0, 2, 1).flatten().tolist(), stftShape=[x.shape[0], spec.shape[2], spec.shape[1]],
        istft=back.flatten().tolist(),
        melFilterbank=fb.flatten().tolist(), mel=mel.flatten().tolist(), logMel=log_mel.flatten().tolist(), mfcc=mfcc.flatten().tolist(),
        companding=dict(x=companding.tolist(), muLaw=mu_law_encode(companding).tolist(), muLawDecoded=mu_law_decode(mu_law_encode(companding)).tolist(), aLaw=a_law_encode(companding).tolist(), aLawDecoded=a_law_decode(a_law_encode(companding)).tolist()),
        torch=torch.__version__,
    )
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "features.json"), "w") as f:
        json.dump(out, f)
    print("frames", spec.shape[2], "istft max error", float((back - x).abs().max()))


if __name__ == "__main__":
    main()
