#!/usr/bin/python3
"""Independent PyTorch reference for the implicit-codebook quantizers in
src/tokenizers/quantizers/{fsq,lfq,binary}.ts, written from the published reference code:

  FSQ    Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple", appendix A.1
         (JAX), as ported in vector-quantize-pytorch's `FSQ`.
  LFQ    Yu et al. 2023, "Language Model Beats Diffusion" (MAGVIT-2), eq. 3 and the entropy
         penalty, as implemented in vector-quantize-pytorch's `LFQ` (bit order, -2 x.c distance,
         clamped-log entropy, inverse temperature).
  binary Weber et al. 2024, "MaskBit", whose `LookupFreeQuantizer` keeps no embedding table;
         bits are grouped into tokens of `bits_per_token` bits, least significant bit first.

Everything runs in float64. Each case stores the input, the expected codes / ids / losses /
stats, and the gradient w.r.t. the input of S = sum(w * codes) + sum_k c_k * losses[k] for fixed
weights w, c that are stored too. Inputs are resampled away from rounding / sign boundaries so a
float32 implementation cannot land on the other side.

Run:  /usr/bin/python3 reference/quantizers_implicit.py   (torch >= 1.13)
Writes test/fixtures/quantizers/{fsq,lfq,binary}.json.
"""

import json
import math
import os

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "quantizers")


def round_ste(z):
    """Round with straight-through gradient (FSQ appendix A.1)."""
    return z + (z.round() - z).detach()


# ---------------------------------------------------------------- FSQ


def fsq_bound(z, levels, eps=1e-3):
    lv = torch.tensor(levels, dtype=torch.float64)
    half_l = (lv - 1) * (1 + eps) / 2
    offset = torch.where(lv % 2 == 0, torch.tensor(0.5), torch.tensor(0.0))
    shift = torch.atanh(offset / half_l)
    return torch.tanh(z + shift) * half_l - offset


def fsq_forward(z, levels, eps=1e-3):
    lv = torch.tensor(levels, dtype=torch.float64)
    half_width = torch.div(lv, 2, rounding_mode="floor")
    codes = round_ste(fsq_bound(z, levels, eps)) / half_width
    basis = torch.cumprod(torch.tensor([1] + list(levels[:-1]), dtype=torch.int64), dim=0)
    ids = ((codes.detach() * half_width + half_width).round().long() * basis).sum(-1)
    return codes, ids, {}, {}


def fsq_indices_to_codes(ids, levels):
    lv = torch.tensor(levels, dtype=torch.int64)
    basis = torch.cumprod(torch.tensor([1] + list(levels[:-1]), dtype=torch.int64), dim=0)
    digits = torch.div(ids[..., None], basis, rounding_mode="floor") % lv
    half_width = torch.div(lv, 2, rounding_mode="floor")
    return (digits - half_width).double() / half_width.double()


def fsq_sample(gen, shape, levels, scale):
    """Normal inputs, resampled where bound(z) lies within 1e-3 of a rounding midpoint."""
    z = torch.randn(shape, generator=gen) * scale
    for _ in range(100):
        b = fsq_bound(z, levels)
        bad = ((b - b.floor()) - 0.5).abs() < 1e-3
        if not bad.any():
            return z
        z = torch.where(bad, torch.randn(shape, generator=gen) * scale, z)
    raise RuntimeError("could not sample FSQ inputs away from rounding midpoints")


# ---------------------------------------------------------------- LFQ


def lfq_codebook(d):
    """All 2^d codes; row j holds the bits of j, channel 0 = most significant bit (vq-pytorch LFQ mask)."""
    mask = 2 ** torch.arange(d - 1, -1, -1)
    bits = ((torch.arange(2**d)[:, None] & mask) != 0).double()
    return bits * 2 - 1


def entropy(p):
    return (-p * p.clamp(min=1e-5).log()).sum(-1)


def lfq_forward(x, d, entropy_weight, diversity_weight, commitment_weight, inv_temperature):
    quantized = torch.where(x > 0, torch.ones_like(x), -torch.ones_like(x))
    codes = x + (quantized - x).detach()
    mask = 2 ** torch.arange(d - 1, -1, -1)
    ids = ((x > 0).long() * mask).sum(-1)
    flat = x.reshape(-1, d)
    distance = -2 * flat @ lfq_codebook(d).T  # [N, 2^d], equals ||x - c||^2 up to a per-row constant
    prob = (-distance * inv_temperature).softmax(dim=-1)
    per_sample = entropy(prob).mean()
    codebook_entropy = entropy(prob.mean(0))
    losses = {
        "entropy": entropy_weight * (per_sample - diversity_weight * codebook_entropy),
        "commitment": commitment_weight * ((x - quantized.detach()) ** 2).mean(),
    }
    stats = {"perSampleEntropy": per_sample, "codebookEntropy": codebook_entropy}
    return codes, ids, losses, stats


def lfq_indices_to_codes(ids, d):
    mask = 2 ** torch.arange(d - 1, -1, -1)
    return ((ids[..., None] & mask) != 0).double() * 2 - 1


# ---------------------------------------------------------------- binary (MaskBit)


def binary_scale(d, scale):
    return 1.0 if scale == "unit" else 1.0 / math.sqrt(d)


def binary_forward(x, d, bits_per_token, scale, commitment_weight):
    s = binary_scale(d, scale)
    quantized = torch.where(x > 0, torch.full_like(x, s), torch.full_like(x, -s))
    codes = x + (quantized - x).detach()
    bits = (x > 0).long().reshape(*x.shape[:-1], d // bits_per_token, bits_per_token)
    ids = (bits * 2 ** torch.arange(bits_per_token)).sum(-1)  # MaskBit: bit j of a group weighs 2^j
    losses = {"commitment": commitment_weight * ((x - quantized.detach()) ** 2).mean()}
    stats = {"positiveFraction": (x > 0).double().mean()}
    return codes, ids, losses, stats


def binary_indices_to_codes(ids, d, bits_per_token, scale):
    s = binary_scale(d, scale)
    bits = ((ids[..., None] >> torch.arange(bits_per_token)) & 1).double()
    return (bits * 2 * s - s).reshape(*ids.shape[:-1], d)


def sign_sample(gen, shape, scale):
    """Normal inputs, resampled where |x| < 1e-3 (too close to the sign boundary)."""
    x = torch.randn(shape, generator=gen) * scale
    for _ in range(100):
        bad = x.abs() < 1e-3
        if not bad.any():
            return x
        x = torch.where(bad, torch.randn(shape, generator=gen) * scale, x)
    raise RuntimeError("could not sample inputs away from 0")


# ---------------------------------------------------------------- fixtures


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def make_case(name, options, x, forward, gen, codebook=None):
    x = x.clone().requires_grad_(True)
    codes, ids, losses, stats = forward(x)
    w = torch.randn(codes.shape, generator=gen)
    c = {k: float(torch.randn((), generator=gen)) for k in losses}
    total = (w * codes).sum() + sum((c[k] * v for k, v in losses.items()), torch.tensor(0.0))
    (g,) = torch.autograd.grad(total, x)
    case = {
        "name": name,
        "options": options,
        "shape": list(x.shape),
        "x": flat(x),
        "codes": flat(codes),
        "indices": [int(v) for v in ids.reshape(-1).tolist()],
        "losses": {k: float(v) for k, v in losses.items()},
        "stats": {k: float(v) for k, v in stats.items()},
        "weights": {"codes": flat(w), "losses": c},
        "grad": flat(g),
    }
    if codebook is not None:
        case["codebook"] = flat(codebook)  # indicesToCodes(arange(K)), [K, D], from the reference decoder
    return case


def write(name, doc, cases):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{name}.json")
    with open(path, "w") as f:
        json.dump({"doc": doc, "cases": cases}, f, separators=(",", ":"))
    print(f"{path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


def main():
    gen = torch.Generator().manual_seed(20231027)

    fsq_cases = []
    for levels, shape_lead, scale in [
        ([8, 5, 5, 5], [2, 3], 1.5),
        ([3, 3], [10], 1.0),
        ([4, 4, 4], [2, 2], 2.0),
        ([2, 2, 2], [5], 3.0),
        ([8, 6, 5], [4], 1.0),
        ([7, 5, 5, 5, 5], [3], 0.7),
    ]:
        d = len(levels)
        x = fsq_sample(gen, shape_lead + [d], levels, scale)
        k = math.prod(levels)
        cb = fsq_indices_to_codes(torch.arange(k), levels) if k <= 64 else None
        fsq_cases.append(
            make_case(f"levels={levels}", {"levels": levels, "boundEps": 1e-3}, x, lambda t, lv=levels: fsq_forward(t, lv), gen, cb)
        )
    write("fsq", "FSQ (Mentzer et al. 2023) reference by reference/quantizers_implicit.py", fsq_cases)

    lfq_cases = []
    for d, shape_lead, scale, ew, gamma, cw, inv_t in [
        (4, [2, 3], 0.05, 0.1, 1.0, 0.25, 100.0),
        (3, [8], 1.0, 0.1, 1.0, 0.25, 1.0),
        (6, [2, 2], 0.2, 0.5, 0.5, 0.1, 10.0),
        (2, [5], 0.5, 1.0, 2.0, 0.0, 3.0),
        (8, [3], 0.02, 0.1, 1.0, 0.25, 100.0),
    ]:
        x = sign_sample(gen, shape_lead + [d], scale)
        opts = {"dim": d, "entropyWeight": ew, "diversityWeight": gamma, "commitmentWeight": cw, "invTemperature": inv_t}
        cb = lfq_indices_to_codes(torch.arange(2**d), d) if 2**d <= 64 else None
        fwd = lambda t, a=(d, ew, gamma, cw, inv_t): lfq_forward(t, *a)
        lfq_cases.append(make_case(f"d={d} invT={inv_t} gamma={gamma}", opts, x, fwd, gen, cb))
    write("lfq", "LFQ (MAGVIT-2, Yu et al. 2023) reference by reference/quantizers_implicit.py", lfq_cases)

    bin_cases = []
    for d, b, scale, shape_lead, cw in [
        (12, 6, "unit", [2, 2], 0.25),
        (8, 4, "sphere", [3], 0.25),
        (6, 3, "unit", [4], 1.0),
        (4, 4, "sphere", [2, 3], 0.5),
        (6, 1, "unit", [3], 0.25),
    ]:
        x = sign_sample(gen, shape_lead + [d], 1.0)
        opts = {"dim": d, "bitsPerToken": b, "scale": scale, "commitmentWeight": cw}
        groups = d // b
        k = 2**b
        if k <= 64:
            all_ids = torch.arange(k)[:, None].repeat(1, groups)  # [K, G]: every id in every group
            cb = binary_indices_to_codes(all_ids, d, b, scale)
        else:
            cb = None
        fwd = lambda t, a=(d, b, scale, cw): binary_forward(t, *a)
        bin_cases.append(make_case(f"d={d} bits={b} {scale}", opts, x, fwd, gen, cb))
    write("binary", "Binary (MaskBit, Weber et al. 2024) reference by reference/quantizers_implicit.py", bin_cases)


if __name__ == "__main__":
    main()
