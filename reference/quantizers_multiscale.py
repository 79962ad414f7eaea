"""PyTorch reference for src/tokenizers/quantizers/multiscale.ts.

Multi-scale residual quantization of VAR (Tian et al. 2024, "Visual Autoregressive Modeling",
Alg. 1), following the forward of VAR's `VectorQuantizer2` (models/quant.py) with the phi
refinement conv left out (quant_resi = identity):

    rest = sg(f); f_hat = 0
    for each scale s (small to large):
        z   = area(rest, s x s)               (the last scale, s = H, uses rest as is)
        r_s = nearest code of every z vector  (l2, or cosine = VAR's using_znorm)
        h   = bicubic(codebook[r_s], H x W)   (the last scale is used as is)
        f_hat += h; rest -= h
        loss_cb += mse(f_hat, sg(f)); loss_commit += mse(sg(f_hat), f)
    codebook = loss_cb / S; commitment = beta * loss_commit / S
    codes = f + sg(f_hat - f)                 (straight-through)

Writes test/fixtures/quantizers/multiscale.json with inputs (channels last, [B, H, W, D] like
the TypeScript), the codebook, the expected token ids ([B, sum s^2], scales concatenated in
order), codes, losses, the gradients of sum(w * codes) + codebook + commitment with respect to
the input and the codebook (w[i] = sin(0.7 i) over the flattened codes), and the area/bicubic
resampling matrices torch's F.interpolate applies (its outputs for one-hot inputs).

Run with Debian's torch: /usr/bin/python3 reference/quantizers_multiscale.py
"""

import json
import math
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "quantizers", "multiscale.json")


def r4(x):
    """Round to 4 decimals so the TypeScript side parses the very same float32 inputs."""
    return torch.tensor([round(v, 4) for v in x.flatten().tolist()], dtype=torch.float32).reshape(x.shape)


def nearest(z_nc, codebook, distance):
    """z: [N, C], codebook: [K, C] -> ids [N], and the gap between the best two scores."""
    if distance == "cosine":
        scores = F.normalize(z_nc, dim=-1) @ F.normalize(codebook, dim=-1).T
    else:
        scores = -(z_nc.square().sum(1, keepdim=True) + codebook.square().sum(1) - 2 * z_nc @ codebook.T)
    top2 = scores.topk(2, dim=1).values
    return scores.argmax(1), (top2[:, 0] - top2[:, 1]).min().item()


def multiscale(f_bhwc, codebook, scales, beta, distance):
    """f: [B, H, W, C] channels last (converted to VAR's [B, C, H, W] inside)."""
    f = f_bhwc.permute(0, 3, 1, 2)
    B, C, H, W = f.shape
    f_no_grad = f.detach()
    rest = f_no_grad.clone()
    f_hat = torch.zeros_like(rest)
    cb_loss, commit = 0.0, 0.0
    ids, gap = [], math.inf
    S = len(scales)
    for si, s in enumerate(scales):
        last = si == S - 1
        z = rest if last else F.interpolate(rest, size=(s, s), mode="area")
        idx, g = nearest(z.permute(0, 2, 3, 1).reshape(-1, C), codebook.detach(), distance)
        gap = min(gap, g)
        e = codebook[idx].view(B, s, s, C).permute(0, 3, 1, 2)
        h = e if last else F.interpolate(e, size=(H, W), mode="bicubic", align_corners=False)
        f_hat = f_hat + h
        rest = rest - h.detach()
        cb_loss = cb_loss + F.mse_loss(f_hat, f_no_grad)
        commit = commit + F.mse_loss(f_hat.detach(), f)
        ids.append(idx.view(B, s * s))
    codes = (f_hat.detach() - f_no_grad) + f
    return codes.permute(0, 2, 3, 1), torch.cat(ids, 1), cb_loss / S, beta * commit / S, gap


def resample_matrix(mode, n_in, n_out):
    """[n_out, n_in]: F.interpolate of every one-hot input along one axis (the other has size 1)."""
    eye = torch.eye(n_in).view(n_in, 1, 1, n_in)
    kw = {"align_corners": False} if mode == "bicubic" else {}
    return F.interpolate(eye, size=(1, n_out), mode=mode, **kw).view(n_in, n_out).T


def rounded(t, digits=8):
    return [float(f"{v:.{digits}g}") for v in t.flatten().tolist()]


def make_case(name, seed, B, H, D, K, scales, distance, beta=0.25):
    """The first seed from `seed` on whose code choices have no near-ties (float32 noise could flip those)."""
    for attempt in range(seed, seed + 1000, 100):
        case = try_case(name, attempt, B, H, D, K, scales, distance, beta)
        if case is not None:
            return case
    raise RuntimeError(f"{name}: every seed tried had a near-tie between codes")


def try_case(name, seed, B, H, D, K, scales, distance, beta):
    g = torch.Generator().manual_seed(seed)
    f = r4(torch.randn(B, H, H, D, generator=g))
    codebook = r4(torch.randn(K, D, generator=g) * 0.8)
    f.requires_grad_(True)
    codebook.requires_grad_(True)
    codes, ids, cb, commit, gap = multiscale(f, codebook, scales, beta, distance)
    w = torch.tensor([math.sin(0.7 * i) for i in range(codes.numel())], dtype=torch.float32).view(codes.shape)
    ((codes * w).sum() + cb + commit).backward()
    if gap < 1e-3:
        return None
    print(f"{name}: seed {seed}, ids {ids.shape[1]} per item, min score gap {gap:.3g}, codebook {cb.item():.4f}, commitment {commit.item():.4f}")
    return {
        "name": name,
        "scales": scales,
        "distance": distance,
        "beta": beta,
        "shape": [B, H, H, D],
        "codebookSize": K,
        "input": rounded(f.detach(), 6),
        "codebook": rounded(codebook.detach(), 6),
        "indices": ids.flatten().tolist(),
        "codes": rounded(codes.detach()),
        "losses": {"codebook": cb.item(), "commitment": commit.item()},
        "grad": {"input": rounded(f.grad), "codebook": rounded(codebook.grad)},
    }


def main():
    cases = [
        make_case("l2, 7x7, VAR-style 1..7", 0, B=2, H=7, D=3, K=16, scales=[1, 2, 3, 4, 5, 6, 7], distance="l2"),
        make_case("cosine, 5x5, [1, 2, 4, 5]", 1, B=2, H=5, D=3, K=12, scales=[1, 2, 4, 5], distance="cosine"),
        make_case("l2, 6x6, [1, 3, 6], beta 1", 2, B=1, H=6, D=4, K=10, scales=[1, 3, 6], distance="l2", beta=1.0),
    ]
    resample = []
    for n in (5, 6, 7):
        for s in range(1, n):
            resample.append({"mode": "area", "in": n, "out": s, "weights": rounded(resample_matrix("area", n, s))})
            resample.append({"mode": "bicubic", "in": s, "out": n, "weights": rounded(resample_matrix("bicubic", s, n))})
    out = {
        "generator": "reference/quantizers_multiscale.py (torch " + torch.__version__ + ")",
        "weights": "w[i] = sin(0.7 i) over the flattened codes; grads are of sum(w * codes) + codebook + commitment",
        "cases": cases,
        "resample": resample,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
