"""PyTorch reference for the VQ family of quantizers (src/tokenizers/quantizers/{vq,rvq,group-vq}.ts).

Writes test/fixtures/quantizers/{vq,vq-ema,rvq,group-vq}.json: inputs, codebooks, expected ids,
codes, losses, and the gradients of a fixed objective

    f = sum(w * codes) + a * codebook_loss + b * commitment_loss

with respect to the input and every parameter. The math is written here independently of the
TypeScript (pairwise differences instead of the ‖x‖² − 2x·c + ‖c‖² expansion, torch autograd
instead of jax-js), following vector-quantize-pytorch's semantics where the two agree:

- VQ (van den Oord et al. 2017): codebook = mean ‖sg(z) − e‖², commitment = β mean ‖z − sg(e)‖²,
  codes = z + sg(e − z). Cosine (ViT-VQGAN, Yu et al. 2022): z and the codebook l2-normalized.
- Factorized lookup (ViT-VQGAN): z = x W_in + b_in, lookup in the low dim, codes = ST(e) W_out + b_out.
- EMA update (van den Oord 2017 app. A.1; vq-pytorch EuclideanCodebook): cluster sizes and
  embedding sums decay as EMAs; cluster sizes are Laplace-smoothed before dividing.
- RVQ (SoundStream, Zeghidour et al. 2021, Alg. 1): level i quantizes r_i = x − sg(Σ_{j<i} e_j);
  codes = x + sg(Σ e_i − x) (one straight-through over the sum, EnCodec's fix: per-level
  straight-through as in vq-pytorch would make d codes / dx = L·I); losses summed over levels.
- Group VQ: D split into G chunks, chunk g quantized by codebook g (or one shared codebook).

Run with the system Python that has torch: /usr/bin/python3 reference/quantizers_vq.py
Values are rounded to float32 first, then everything is computed in float64.
"""

import json
import os

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "quantizers")
A_CODEBOOK, B_COMMIT = 0.7, 1.3  # loss weights in the objective
MIN_GAP = 1e-3  # nearest and second-nearest distance must differ by this much (no float32 ties)


def f32(t):
    """Round to float32 (what the TypeScript side holds), keep computing in float64."""
    return t.float().double()


def randn(g, *shape, scale=1.0):
    return f32(torch.randn(*shape, generator=g) * scale)


def l2norm(t):
    return t / torch.sqrt((t * t).sum(-1, keepdim=True) + 1e-12)


def nearest(z, codebook):
    """z: [N, C], codebook: [K, C] → ids [N], gap (min over rows of 2nd-best − best distance)."""
    d = ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)  # [N, K]
    top = torch.topk(d.detach(), 2, dim=-1, largest=False).values
    return d.argmin(-1), (top[:, 1] - top[:, 0]).min().item()


def vq_level(z, codebook, distance, beta):
    """One VQ lookup. z: [N, C] → (zn, e, ids, codebook_loss, commitment, gap)."""
    if distance == "cosine":
        z, codebook = l2norm(z), l2norm(codebook)
    ids, gap = nearest(z, codebook)
    e = codebook[ids]
    return z, e, ids, ((z.detach() - e) ** 2).mean(), beta * ((z - e.detach()) ** 2).mean(), gap


def flat(t):
    return [round(v, 9) for v in t.detach().reshape(-1).tolist()]


def leaf(*tensors):
    for t in tensors:
        t.requires_grad_(True)


def grads(obj, named):
    gs = torch.autograd.grad(obj, [t for _, t in named], allow_unused=True)
    return {n: flat(g if g is not None else torch.zeros_like(t)) for (n, t), g in zip(named, gs)}


# ---------------------------------------------------------------- VQ (+ factorized lookup)


def vq_case(seed, distance, lookup_dim, n=6, d=4, k=5, beta=0.25, ema=False):
    for attempt in range(100):
        g = torch.Generator().manual_seed(seed * 1000 + attempt)
        c = lookup_dim or d
        x = randn(g, 2, n // 2, d)
        codebook = randn(g, k, c)
        w_in, b_in = randn(g, d, c, scale=0.7), randn(g, c, scale=0.1)
        w_out, b_out = randn(g, c, d, scale=0.7), randn(g, d, scale=0.1)
        w = randn(g, 2, n // 2, d)
        leaf(x, codebook, w_in, b_in, w_out, b_out)
        z = x.reshape(n, d)
        if lookup_dim:
            z = z @ w_in + b_in
        zn, e, ids, cb_loss, commit, gap = vq_level(z, codebook, distance, beta)
        if gap < MIN_GAP:
            continue
        codes = zn + (e - zn).detach()
        if lookup_dim:
            codes = codes @ w_out + b_out
        codes = codes.reshape(2, n // 2, d)
        obj = (w * codes).sum() + B_COMMIT * commit + (0 if ema else A_CODEBOOK * cb_loss)
        named = [("x", x), ("codebook", codebook)] + ([("projIn.w", w_in), ("projIn.b", b_in), ("projOut.w", w_out), ("projOut.b", b_out)] if lookup_dim else [])
        case = {
            "name": f"{distance}{f', lookupDim {lookup_dim}' if lookup_dim else ''}{', ema' if ema else ''}",
            "options": {"codebookSize": k, "dim": d, "beta": beta, "distance": distance, **({"lookupDim": lookup_dim} if lookup_dim else {}), **({"codebookUpdate": "ema"} if ema else {})},
            "xShape": list(x.shape),
            "x": flat(x),
            "params": {"codebook": flat(codebook), **({"projIn": {"w": flat(w_in), "b": flat(b_in)}, "projOut": {"w": flat(w_out), "b": flat(b_out)}} if lookup_dim else {})},
            "w": flat(w),
            "indices": ids.reshape(2, n // 2).tolist(),
            "codes": flat(codes),
            "losses": {"commitment": commit.item(), **({} if ema else {"codebook": cb_loss.item()})},
            "grads": grads(obj, named),
        }
        return case
    raise RuntimeError("no tie-free draw")


# ---------------------------------------------------------------- EMA codebook update


def ema_update(cluster_size, embed_sum, z, ids, decay, eps):
    """vq-pytorch EuclideanCodebook.forward's update: ema_inplace + laplace_smoothing."""
    k = cluster_size.shape[0]
    onehot = torch.nn.functional.one_hot(ids, k).double()  # [N, K]
    cluster_size = cluster_size * decay + onehot.sum(0) * (1 - decay)
    embed_sum = embed_sum * decay + (onehot.t() @ z) * (1 - decay)
    total = cluster_size.sum()
    smoothed = (cluster_size + eps) / (total + k * eps) * total
    return cluster_size, embed_sum, embed_sum / smoothed[:, None]


def ema_fixture():
    g = torch.Generator().manual_seed(7)
    k, c, n, decay, eps = 4, 3, 10, 0.9, 1e-3
    codebook = randn(g, k, c)
    cluster_size, embed_sum = torch.ones(k), codebook.clone()  # initEmaState: sizes 1, sums = codebook
    steps = []
    for _ in range(2):
        z = randn(g, n, c)
        ids, gap = nearest(z, codebook)
        assert gap > MIN_GAP
        cluster_size, embed_sum, codebook = ema_update(cluster_size, embed_sum, z, ids, decay, eps)
        steps.append({"z": flat(z), "indices": ids.tolist(), "clusterSize": flat(cluster_size), "embedSum": flat(embed_sum), "codebook": flat(codebook)})
    cb0 = randn(torch.Generator().manual_seed(7), k, c)
    return {"codebookSize": k, "dim": c, "n": n, "decay": decay, "eps": eps, "codebook": flat(cb0), "steps": steps,
            "quantize": [vq_case(21, "l2", None, ema=True), vq_case(22, "cosine", 3, ema=True)]}


# ---------------------------------------------------------------- RVQ


def rvq_case(seed, distance, levels, active, n=6, d=4, k=6, beta=0.25):
    for attempt in range(200):
        g = torch.Generator().manual_seed(seed * 1000 + attempt)
        x = randn(g, n, d)
        codebooks = [randn(g, k, d, scale=0.8 ** i) for i in range(levels)]
        w = randn(g, n, d)
        leaf(x, *codebooks)
        residual, total, cb_loss, commit, ids, min_gap = x, 0, 0, 0, [], float("inf")
        for i in range(active):
            _, e, level_ids, cb_i, commit_i, gap = vq_level(residual, codebooks[i], distance, beta)
            min_gap = min(min_gap, gap)
            residual = residual - e.detach()
            total = total + e.detach()
            cb_loss, commit = cb_loss + cb_i, commit + commit_i
            ids.append(level_ids)
        if min_gap < MIN_GAP:
            continue
        codes = x + (total - x).detach()
        obj = (w * codes).sum() + A_CODEBOOK * cb_loss + B_COMMIT * commit
        named = [("x", x)] + [(f"levels.{i}.codebook", cb) for i, cb in enumerate(codebooks)]
        return {
            "name": f"{distance}, L={levels}, active={active}",
            "options": {"levels": levels, "codebookSize": k, "dim": d, "beta": beta, "distance": distance},
            "activeLevels": active,
            "xShape": [n, d],
            "x": flat(x),
            "params": {"levels": [{"codebook": flat(cb)} for cb in codebooks]},
            "w": flat(w),
            "indices": torch.stack(ids, -1).tolist(),
            "codes": flat(codes),
            "losses": {"codebook": cb_loss.item(), "commitment": commit.item()},
            "grads": grads(obj, named),
        }
    raise RuntimeError("no tie-free draw")


# ---------------------------------------------------------------- group VQ


def group_case(seed, distance, groups, shared, n=6, d=8, k=5, beta=0.25):
    dg = d // groups
    for attempt in range(200):
        g = torch.Generator().manual_seed(seed * 1000 + attempt)
        x = randn(g, n, d)
        codebooks = randn(g, 1 if shared else groups, k, dg)
        w = randn(g, n, d)
        leaf(x, codebooks)
        chunks = x.reshape(n, groups, dg)
        outs = [vq_level(chunks[:, i], codebooks[0 if shared else i], distance, beta) for i in range(groups)]
        if min(o[5] for o in outs) < MIN_GAP:
            continue
        zn = torch.stack([o[0] for o in outs], 1)  # [N, G, Dg]
        e = torch.stack([o[1] for o in outs], 1)
        codes = (zn + (e - zn).detach()).reshape(n, d)
        # Means over all N·D elements = the mean of the per-group means (groups are equal-sized).
        cb_loss = sum(o[3] for o in outs) / groups
        commit = sum(o[4] for o in outs) / groups
        obj = (w * codes).sum() + A_CODEBOOK * cb_loss + B_COMMIT * commit
        return {
            "name": f"{distance}, G={groups}{', shared' if shared else ''}",
            "options": {"groups": groups, "codebookSize": k, "dim": d, "beta": beta, "distance": distance, "shared": shared},
            "xShape": [n, d],
            "x": flat(x),
            "params": {"codebooks": flat(codebooks)},
            "codebooksShape": list(codebooks.shape),
            "w": flat(w),
            "indices": torch.stack([o[2] for o in outs], -1).tolist(),
            "codes": flat(codes),
            "losses": {"codebook": cb_loss.item(), "commitment": commit.item()},
            "grads": grads(obj, [("x", x), ("codebooks", codebooks)]),
        }
    raise RuntimeError("no tie-free draw")


def write(name, data):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    meta = {"objective": "sum(w * codes) + a * losses.codebook + b * losses.commitment", "a": A_CODEBOOK, "b": B_COMMIT}
    write("vq.json", {**meta, "cases": [vq_case(s, dist, ld) for s, (dist, ld) in enumerate([("l2", None), ("cosine", None), ("l2", 3), ("cosine", 3)])]})
    write("vq-ema.json", {**meta, **ema_fixture()})
    write("rvq.json", {**meta, "cases": [rvq_case(s, dist, lv, act) for s, (dist, lv, act) in enumerate([("l2", 1, 1), ("l2", 3, 3), ("l2", 3, 2), ("cosine", 3, 3), ("l2", 4, 1)])]})
    write("group-vq.json", {**meta, "cases": [group_case(s, dist, gr, sh) for s, (dist, gr, sh) in enumerate([("l2", 1, False), ("l2", 2, False), ("l2", 4, False), ("cosine", 2, False), ("l2", 4, True), ("cosine", 4, True)])]})
