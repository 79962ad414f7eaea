"""Side-by-side anchor: PyTorch CPU throughput of a tiny decoder-only transformer.

Prints one JSON line with training tokens/s and KV-cached greedy decoding tokens/s,
for the same shape as the project's benchmark config, so the project can report
its own figures as a ratio measured in the same run.

Needs Debian's python3-torch and libopenblas0-pthread (apt-get install -y python3-torch
libopenblas0-pthread); run with /usr/bin/python3.
mmntp's copy (bench/backbone.ts runs it) adds train_cpu_s / decode_cpu_s: process CPU seconds
(all threads) over each timed loop, so a run on a shared machine can be normalized by CPU time,
and peak_rss_mib, the process's peak resident memory, to set beside mmntp's.
Usage: torch_gpt_bench.py [--vocab 1024] [--d 256] [--layers 4] [--heads 4] [--ctx 256] [--batch 16]
                          [--threads N]  (default: PyTorch's own choice, as a user would run it;
                          here OpenBLAS already threads each matmul, and --threads 2 measured slower)
"""
import argparse, json, resource, time
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--vocab", type=int, default=1024)
p.add_argument("--d", type=int, default=256)
p.add_argument("--layers", type=int, default=4)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--ctx", type=int, default=256)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--decode", type=int, default=128)
p.add_argument("--threads", type=int, default=0)
a = p.parse_args()
if a.threads > 0:
    torch.set_num_threads(a.threads)
a.decode = min(a.decode, a.ctx)
torch.manual_seed(0)


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(a.d), nn.LayerNorm(a.d)
        s.qkv, s.proj = nn.Linear(a.d, 3 * a.d), nn.Linear(a.d, a.d)
        s.mlp = nn.Sequential(nn.Linear(a.d, 4 * a.d), nn.GELU(), nn.Linear(4 * a.d, a.d))

    def forward(s, x, cache=None):
        B, T, C = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, a.heads, C // a.heads).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        att = (q @ k.transpose(-2, -1)) / (C // a.heads) ** 0.5
        if T > 1:  # causal mask over the T new positions (prefill/training)
            att = att.masked_fill(torch.ones(T, k.shape[2]).triu(k.shape[2] - T + 1).bool(), float("-inf"))
        y = att.softmax(-1) @ v
        x = x + s.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + s.mlp(s.ln2(x))


class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.tok, s.pos = nn.Embedding(a.vocab, a.d), nn.Embedding(a.ctx, a.d)
        s.blocks = nn.ModuleList(Block() for _ in range(a.layers))
        s.ln, s.head = nn.LayerNorm(a.d), nn.Linear(a.d, a.vocab, bias=False)

    def forward(s, idx, caches=None, start=0):
        x = s.tok(idx) + s.pos(torch.arange(start, start + idx.shape[1]))
        for i, b in enumerate(s.blocks):
            x = b(x, None if caches is None else caches[i])
        return s.head(s.ln(x))


m = GPT()
opt = torch.optim.AdamW(m.parameters(), lr=3e-4)
x = torch.randint(0, a.vocab, (a.batch, a.ctx + 1))


def step():
    logits = m(x[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, a.vocab), x[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()


for _ in range(2):
    step()
t, c = time.perf_counter(), time.process_time()
for _ in range(a.steps):
    step()
train_tps = a.steps * a.batch * a.ctx / (time.perf_counter() - t)
train_cpu = time.process_time() - c

m.eval()
with torch.no_grad():
    caches = [{} for _ in m.blocks]
    idx = torch.zeros(1, 1, dtype=torch.long)
    m(idx, caches, 0)
    t, c = time.perf_counter(), time.process_time()
    for i in range(1, a.decode):
        idx = m(idx, caches, i)[:, -1:].argmax(-1)
    decode_tps = (a.decode - 1) / (time.perf_counter() - t)
    decode_cpu = time.process_time() - c

params = sum(p.numel() for p in m.parameters())
print(json.dumps({**vars(a), "engine": f"torch {torch.__version__}", "threads": torch.get_num_threads(),
                  "params": params, "train_tokens_per_s": round(train_tps, 1),
                  "decode_tokens_per_s": round(decode_tps, 1),
                  "train_cpu_s": round(train_cpu, 3), "decode_cpu_s": round(decode_cpu, 3),
                  # the whole process's high-water mark (Linux reports KiB), training included
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
