"""The benchmark GPT as an ONNX decode step, for bench:backbone's ONNX Runtime anchor.

Builds mmntp's backbone in PyTorch (mmntp_torch.Backbone: the architecture mmntp runs, tanh-GELU,
untied head without bias) with bench:backbone's shape (vocab 1024, d 256, 4 layers, 4 heads,
context 256, learned positions), seeded, and writes to --out:
  decode.onnx         one decode step as transformers.js-style exports have it: ids [B, 1], the
                      position [1], per layer past_k_i / past_v_i [B, H, L, Dh] -> logits [B, V]
                      and present_k_i / present_v_i [B, H, L + 1, Dh] (the cache grows by
                      concatenation); B and L are dynamic, L may be 0
  weights.safetensors the same weights under the nanoGPT names mmntp's backboneFromTorch loads
  greedy.json         PyTorch's greedy tokens from token 0 (--tokens of them, batch 1), which
                      ONNX Runtime's and mmntp's must equal
The files are remade at bench time (about 15 MB of weights, not committed).

Run: /usr/bin/python3 reference/torch_gpt_onnx.py --out DIR [--tokens 128]  (Debian's python3-torch)
"""
import argparse, json, math, os, sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from mmntp_torch import Backbone, write_atomic, write_safetensors

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--tokens", type=int, default=128)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
CONFIG = dict(vocabSize=1024, contextLength=256, dim=256, layers=4, heads=4, mlp="gelu", mlpRatio=4, positions="learned")
if not 2 <= a.tokens <= CONFIG["contextLength"]:
    raise SystemExit(f"--tokens must be in [2, {CONFIG['contextLength']}], got {a.tokens}")
torch.manual_seed(a.seed)
model = Backbone(CONFIG).eval()


class DecodeStep(torch.nn.Module):
    """One token through the backbone with a concatenated KV cache (mmntp_torch.Block's maths)."""

    def __init__(s, m):
        super().__init__()
        s.m = m

    def forward(s, ids, pos, *past):
        t, (H, D) = s.m.transformer, (CONFIG["heads"], CONFIG["dim"])
        x = t.wte(ids) + t.wpe(pos)[None]  # [B, 1, D]
        B = x.shape[0]
        present = []
        for i, blk in enumerate(t.h):
            q, k, v = (u.reshape(B, 1, H, D // H).transpose(1, 2) for u in blk.attn.c_attn(blk.ln_1(x)).split(D, dim=2))
            k, v = torch.cat([past[2 * i], k], 2), torch.cat([past[2 * i + 1], v], 2)
            present += [k, v]
            y = ((q @ k.transpose(-2, -1)) * (1 / math.sqrt(D // H))).softmax(-1) @ v
            x = x + blk.attn.c_proj(y.transpose(1, 2).reshape(B, 1, D))
            x = x + blk.mlp.c_proj(F.gelu(blk.mlp.c_fc(blk.ln_2(x)), approximate="tanh"))
        return (s.m.lm_head(t.ln_f(x))[:, 0], *present)


step = DecodeStep(model).eval()
L, H, Dh = CONFIG["layers"], CONFIG["heads"], CONFIG["dim"] // CONFIG["heads"]
empty = lambda b, n: [torch.zeros(b, H, n, Dh) for _ in range(2 * L)]


def greedy(n):
    """n tokens from token 0 at batch 1: the first is 0, each next the argmax after the last."""
    ids, past, out = torch.zeros(1, 1, dtype=torch.long), empty(1, 0), [0]
    with torch.no_grad():
        for i in range(n - 1):
            logits, *past = step(ids, torch.tensor([i]), *past)
            ids = logits.argmax(-1, keepdim=True)
            out.append(int(ids[0, 0]))
    return out


os.makedirs(a.out, exist_ok=True)
names = [f"past_{kv}_{i}" for i in range(L) for kv in "kv"]
outs = ["logits"] + [f"present_{kv}_{i}" for i in range(L) for kv in "kv"]
axes = {**{n: {0: "batch", 2: "past"} for n in names}, **{n: {0: "batch", 2: "length"} for n in outs[1:]}, "ids": {0: "batch"}, "logits": {0: "batch"}}
tmp = os.path.join(a.out, f"decode.onnx.{os.getpid()}.tmp")
with torch.no_grad():
    torch.onnx.export(step, (torch.zeros(2, 1, dtype=torch.long), torch.tensor([3]), *empty(2, 3)), tmp,
                      input_names=["ids", "pos"] + names, output_names=outs, dynamic_axes=axes, opset_version=14)
os.replace(tmp, os.path.join(a.out, "decode.onnx"))
write_safetensors(os.path.join(a.out, "weights.safetensors"), model.state_dict())
tokens = greedy(a.tokens)
write_atomic(os.path.join(a.out, "greedy.json"), json.dumps({"config": CONFIG, "seed": a.seed, "torch": torch.__version__, "tokens": tokens}))
print(json.dumps({"out": a.out, "tokens": len(tokens), "distinct": len(set(tokens))}))
