"""Continue training an mmntp backbone in PyTorch, on one process or many (torchrun, DDP).

    mmntp export runs/demo --format torch --data 6400 -o export/
    torchrun --nproc_per_node=2 reference/train_torch.py --model export/ --steps 200 --out export/trained
    mmntp import export/trained --run runs/demo --out runs/demo-torch

Reads what `mmntp export` writes (config.json, model.safetensors, data.safetensors) and writes a
checkpoint in the same format (model.safetensors, then config.json, each atomically, on rank 0),
which `mmntp import` reads back. The backend is gloo on CPU and NCCL when CUDA is there; the
script is otherwise unchanged between the two.

Training is mmntp's (src/pipelines/unified.ts, src/train/): the weighted next-token loss, AdamW
with betas (0.9, 0.95), decay 0.1 on rank >= 2 tensors, global-norm clipping at 1.0, linear
warm-up then cosine decay to a tenth. The optimizer state starts fresh (mmntp does not export
its moments). Each step takes --batch sequences (global) from one seeded permutation of the shard;
rank r takes every world-th row, and its loss is normalized by the weight of the whole global batch
times the world size, so DDP's gradient average is exactly the one-process gradient of the
global batch (the same model, up to float summation order, for any number of processes).

Prints one JSON line on rank 0: steps, world size, mean step time, first and last loss.
Run with /usr/bin/python3 (Debian's python3-torch), or under torchrun.
"""
import argparse, json, os, sys, time
import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmntp_torch import adamw, load_backbone, read_safetensors, save_backbone, warmup_cosine

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--model", required=True, help="folder written by `mmntp export` (config.json, model.safetensors)")
p.add_argument("--data", help="training shard (default: MODEL/data.safetensors, from `mmntp export --data N`)")
p.add_argument("--out", required=True, help="folder to write the trained checkpoint into")
p.add_argument("--steps", type=int, default=200)
p.add_argument("--batch", type=int, default=32, help="global batch: sequences per step over all processes")
p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (warm-up, then cosine to a tenth)")
p.add_argument("--warmup", type=int, default=30)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=0, help="intra-op threads per process (default: cores / processes)")
a = p.parse_args()

world = int(os.environ.get("WORLD_SIZE", "1"))
rank = int(os.environ.get("RANK", "0"))
cuda = torch.cuda.is_available()
if world > 1:
    dist.init_process_group(backend="nccl" if cuda else "gloo")
device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else "cpu")
torch.set_num_threads(a.threads or max(1, (os.cpu_count() or 1) // world))
if a.batch % world != 0:
    raise SystemExit(f"--batch {a.batch} must be divisible by the number of processes ({world})")

model, cfg = load_backbone(a.model)
model.to(device)
shard, _ = read_safetensors(a.data or os.path.join(a.model, "data.safetensors"))
for name in ("inputs", "targets", "weights"):
    if name not in shard:
        raise SystemExit(f"the data shard has no {name!r} tensor (write it with `mmntp export RUN --data N`)")
n = shard["inputs"].shape[0]
data = {k: torch.from_numpy(v) for k, v in shard.items()}
net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
opt = adamw(model, a.lr)
order = torch.randperm(n, generator=torch.Generator().manual_seed(a.seed))

losses, times = [], []
for step in range(a.steps):
    start = (step * a.batch) % n
    rows = torch.cat([order, order])[start : start + a.batch]  # wraps to the next epoch
    mine = rows[rank::world]
    ids, tgt, w = (data[k][mine].to(device) for k in ("inputs", "targets", "weights"))
    mask = data["mask"][mine][:, None].bool().to(device) if "mask" in data else None
    pos = data["positions"][mine].long().to(device) if "positions" in data else None
    total = data["weights"][rows].sum().item()  # the global batch's loss weight
    t0 = time.perf_counter()
    for g in opt.param_groups:
        g["lr"] = warmup_cosine(step, a.lr, a.warmup, a.steps)
    opt.zero_grad(set_to_none=True)
    logp = net(ids.long(), mask, pos).log_softmax(-1).gather(-1, tgt[..., None].long())[..., 0]
    loss = -(logp * w).sum() / (total + 1e-9) * world  # DDP averages: the global batch's mean gradient
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    report = loss.detach() / world
    if world > 1:
        dist.all_reduce(report)
    times.append(time.perf_counter() - t0)
    losses.append(report.item())
    if rank == 0 and (step % 20 == 0 or step == a.steps - 1):
        print(f"step {step + 1}/{a.steps} loss {losses[-1]:.4f} {1000 * times[-1]:.1f} ms", file=sys.stderr, flush=True)

timed = times[min(5, len(times) - 1) :]  # the first steps warm allocators and threads up
summary = dict(steps=a.steps, world=world, batch=a.batch, lr=a.lr, backend=("nccl" if cuda else "gloo") if world > 1 else "none", threads=torch.get_num_threads(), step_ms=1000 * float(np.mean(timed)), first_loss=losses[0], last_loss=losses[-1], torch=torch.__version__)
if rank == 0:
    save_backbone(a.out, model, {k: cfg[k] for k in ("format", "version", "model", "source")}, {"training": summary})
    print(json.dumps(summary))
if world > 1:
    dist.barrier()
    dist.destroy_process_group()
