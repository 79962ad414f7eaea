"""Side-by-side anchor: PyTorch CPU encode throughput of VQ, FSQ and LFQ.

The same work as bench/quantizers.ts, written as a PyTorch user would, under torch.no_grad():
- VQ: nearest-code ids of N vectors [N, 64] against K = 1024 codes, in chunks (so the [chunk, K]
  distance block stays small), three ways:
    addmm    ids = argmin(‖c‖² − 2·x@cᵀ) with one fused torch.addmm per chunk (the fastest form),
    cdist    ids = argmin(torch.cdist(x, c)),
    vq-pytorch   vector-quantize-pytorch's EuclideanCodebook: −sqrt(clamp(‖x‖² + ‖c‖² − 2·x@cᵀ, 0)),
             argmax (its gumbel_sample at temperature 0),
  each at a few chunk sizes; the bench compares against the fastest.
- FSQ (Mentzer et al. 2023; vector-quantize-pytorch's FSQ): bound, round (straight-through form),
  codes / ⌊L/2⌋, ids by the mixed-radix basis; levels [8, 5, 5, 5], x [N, 4].
- LFQ (MAGVIT-2; vector-quantize-pytorch's LFQ without the entropy loss): codes = ±1 by sign,
  ids = Σ [x > 0]·2^(d−1−i); x [N, 10].
Inputs are uniform in [−1, 1] (FSQ/LFQ: ×2), fixed seed. Prints one JSON object.

Needs Debian's python3-torch (run with /usr/bin/python3). Threads: PyTorch's own choice, as a user
would run it (ATen's own ops, such as argmin, use at::get_num_threads(); matmuls go to OpenBLAS,
which threads them itself).
Usage: bench_quantizers.py [--n 1000000] [--chunks 1024,4096,16384] [--reps 3] [--threads N]
"""
import argparse, json, math, time
import torch

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=1_000_000)
p.add_argument("--k", type=int, default=1024)
p.add_argument("--d", type=int, default=64)
p.add_argument("--chunks", default="1024,4096,16384")
p.add_argument("--reps", type=int, default=3, help="timed passes of FSQ and LFQ (median); VQ: 1 pass per form and chunk")
p.add_argument("--threads", type=int, default=0)
a = p.parse_args()
if a.threads > 0:
    torch.set_num_threads(a.threads)
torch.manual_seed(0)
torch.set_grad_enabled(False)


def timed(fn, reps=1):
    """Median wall seconds of `reps` calls after a warm-up call, and CPU seconds (all threads) / wall seconds."""
    fn()  # warm-up (allocator, OpenBLAS threads)
    times, busy = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        busy.append((time.process_time() - c0) / times[-1])
    return sorted(times)[len(times) // 2], sorted(busy)[len(busy) // 2]


# ---------------------------------------------------------------- VQ
x = torch.rand(a.n, a.d) * 2 - 1
codebook = torch.rand(a.k, a.d) * 2 - 1


def vq_addmm(chunk):
    cc = (codebook * codebook).sum(1)  # [K]
    ids = torch.empty(a.n, dtype=torch.long)
    for i in range(0, a.n, chunk):
        ids[i : i + chunk] = torch.addmm(cc, x[i : i + chunk], codebook.t(), alpha=-2).argmin(1)
    return ids


def vq_cdist(chunk):
    ids = torch.empty(a.n, dtype=torch.long)
    for i in range(0, a.n, chunk):
        ids[i : i + chunk] = torch.cdist(x[i : i + chunk], codebook).argmin(1)
    return ids


def vq_pytorch(chunk):
    # vector_quantize_pytorch.vector_quantize_pytorch.cdist + EuclideanCodebook.forward (no batch dims)
    y2 = (codebook**2).sum(-1)
    ids = torch.empty(a.n, dtype=torch.long)
    for i in range(0, a.n, chunk):
        xb = x[i : i + chunk]
        x2 = (xb**2).sum(-1)
        xy = torch.einsum("i d, j d -> i j", xb, codebook) * -2
        dist = -(x2[:, None] + y2[None, :] + xy).clamp(min=0).sqrt()
        ids[i : i + chunk] = dist.argmax(-1)
    return ids


chunks = [int(c) for c in a.chunks.split(",")]
flop = 2 * a.n * a.k * a.d
vq_runs = []
reference_ids = None
for name, fn in [("addmm", vq_addmm), ("cdist", vq_cdist), ("vq-pytorch", vq_pytorch)]:
    for chunk in chunks if name == "addmm" else chunks[len(chunks) // 2 : len(chunks) // 2 + 1]:
        s, busy = timed(lambda: fn(chunk))
        ids = fn(chunk)
        if reference_ids is None:
            reference_ids = ids
        agree = (ids == reference_ids).float().mean().item()
        vq_runs.append({"form": name, "chunk": chunk, "vectors_per_s": round(a.n / s, 1), "gflops": round(flop / s / 1e9, 2), "seconds": round(s, 3), "cpu_cores_busy": round(busy, 2), "ids_agree_with_addmm": round(agree, 6)})
best = max(vq_runs, key=lambda r: r["vectors_per_s"])

# ---------------------------------------------------------------- FSQ
levels = torch.tensor([8, 5, 5, 5], dtype=torch.int32)
fsq_x = (torch.rand(a.n, len(levels)) * 2 - 1) * 2
basis = torch.cumprod(torch.tensor([1] + levels[:-1].tolist()), dim=0, dtype=torch.int32)


def round_ste(z):
    return z + (z.round() - z).detach()


def fsq():
    # vector_quantize_pytorch.finite_scalar_quantization.FSQ: bound, quantize, codes_to_indices
    eps = 1e-3
    half_l = (levels - 1) * (1 + eps) / 2
    offset = torch.where(levels % 2 == 0, 0.5, 0.0)
    shift = (offset / half_l).atanh()
    bounded = (fsq_x + shift).tanh() * half_l - offset
    half_width = levels // 2
    codes = round_ste(bounded) / half_width
    indices = ((codes * half_width + half_width) * basis).sum(dim=-1).to(torch.int32)
    return codes, indices


# ---------------------------------------------------------------- LFQ
lfq_d = 10
lfq_x = (torch.rand(a.n, lfq_d) * 2 - 1) * 2
mask = 2 ** torch.arange(lfq_d - 1, -1, -1)


def lfq():
    # vector_quantize_pytorch.lookup_free_quantization.LFQ.forward, entropy and commitment off
    positive = lfq_x > 0
    quantized = torch.where(positive, 1.0, -1.0)
    indices = (positive.int() * mask.int()).sum(-1)
    codes = lfq_x + (quantized - lfq_x).detach()
    return codes, indices


fsq_s, _ = timed(fsq, a.reps)
lfq_s, _ = timed(lfq, a.reps)
print(
    json.dumps(
        {
            "engine": f"torch {torch.__version__}",
            "threads": torch.get_num_threads(),
            "n": a.n,
            "vq": {"k": a.k, "d": a.d, "runs": vq_runs, "best": best},
            "fsq": {"levels": levels.tolist(), "vectors_per_s": round(a.n / fsq_s, 1), "seconds": round(fsq_s, 4)},
            "lfq": {"d": lfq_d, "vectors_per_s": round(a.n / lfq_s, 1), "seconds": round(lfq_s, 4)},
        }
    )
)
