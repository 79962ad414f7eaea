"""Whole-model oracle fixtures (llm.c's test_gpt2 style) for mmntp's backbone: for each case, the
PyTorch module of mmntp_torch.py on fixed weights and inputs gives the logits, the loss, every
parameter's gradient, and the losses of 10 AdamW steps (mmntp's optimizer: clipping, decay on
rank >= 2 tensors). Computed in float64 from float32 weights; written in float32 to
test/fixtures/torch/<case>.safetensors (weights under `param.`, gradients under `grad.`, inputs,
logits) and <case>.json (config, loss, losses). test/backbone/torch-oracle.test.ts checks mmntp
against them without Python.

Run: /usr/bin/python3 reference/torch_model_oracle.py  (Debian's python3-torch)
"""
import json, os, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from mmntp_torch import Backbone, adamw, weighted_cross_entropy, write_atomic, write_safetensors

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "torch")
B, T = 3, 12
LR, STEPS = 1e-2, 10
CASES = [
    # the demo's kind: learned positions, GELU, the default causal mask, pad targets without loss
    dict(name="learned-gelu", config=dict(vocabSize=40, contextLength=16, dim=32, layers=2, heads=4, mlp="gelu", mlpRatio=4, positions="learned"), mask=None, positions=None),
    # 1-D rotary, SwiGLU, a prefix mask [T, T] and per-example positions [B, T]
    dict(name="rope-swiglu", config=dict(vocabSize=40, contextLength=16, dim=32, layers=2, heads=4, mlp="swiglu", mlpRatio=2, positions="rope"), mask="prefix", positions="per-example"),
    # 2-D axial rotary over an image block, per-example block masks [B, 1, T, T] and grids [B, T, 2]
    dict(name="rope2d-gelu", config=dict(vocabSize=40, contextLength=16, dim=32, layers=2, heads=2, mlp="gelu", mlpRatio=4, positions="rope2d"), mask="blocks", positions="grid"),
]


def inputs(case, g):
    ids = torch.randint(0, case["config"]["vocabSize"], (B, T + 1), generator=g)
    weights = (torch.rand(B, T, generator=g) > 0.25).double()
    weights[:, :3] = 0  # a prompt without loss
    out = dict(inputs=ids[:, :-1].int(), targets=ids[:, 1:].int(), weights=weights)
    causal = torch.ones(T, T).tril().bool()
    if case["mask"] == "prefix":
        m = causal.clone()
        m[:5, :5] = True
        out["mask"] = m
    elif case["mask"] == "blocks":
        ms = []
        for b in range(B):
            m = causal.clone()
            s = 3 + b  # an image block of 4 positions, bidirectional, at a different start per row
            m[s : s + 4, s : s + 4] = True
            ms.append(m)
        out["mask"] = torch.stack(ms)[:, None]
    if case["positions"] == "per-example":
        out["positions"] = torch.stack([torch.arange(T) + b for b in range(B)]).int()
    elif case["positions"] == "grid":
        grids = []
        for b in range(B):
            g2 = torch.stack([torch.arange(T), torch.arange(T)], -1)
            s = 3 + b
            for i in range(4):
                g2[s + i] = torch.tensor([s + i // 2, s + i % 2])
            grids.append(g2)
        out["positions"] = torch.stack(grids).int()
    return out


def build(case, g):
    model = Backbone(case["config"]).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            elif p.dim() == 1:  # LayerNorm gains
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            p.copy_(p.float().double())  # the fixture stores float32: compute from exactly those values
    return model


def run(case):
    g = torch.Generator().manual_seed(1234)
    model = build(case, g)
    x = inputs(case, g)
    mask, positions = x.get("mask"), x.get("positions")
    params0 = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    logits = model(x["inputs"].long(), mask, positions if positions is None else positions.long())
    loss = weighted_cross_entropy(logits, x["targets"], x["weights"])
    loss.backward()
    grads = {k: p.grad.detach().clone().float() for k, p in model.named_parameters()}
    model.zero_grad()
    opt = adamw(model, LR)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        l = weighted_cross_entropy(model(x["inputs"].long(), mask, positions if positions is None else positions.long()), x["targets"], x["weights"])
        losses.append(l.item())
        l.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    tensors = {f"param.{k}": v for k, v in params0.items()}
    tensors.update({f"grad.{k}": v for k, v in grads.items()})
    tensors.update(inputs=x["inputs"], targets=x["targets"], weights=x["weights"].float(), logits=logits.detach().float())
    if mask is not None:
        tensors["mask"] = mask.to(torch.uint8)
    if positions is not None:
        tensors["positions"] = positions
    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, f"{case['name']}.safetensors"), tensors, {"format": "mmntp-torch-oracle"})
    meta = dict(config=case["config"], loss=loss.item(), lr=LR, adamw=dict(beta1=0.9, beta2=0.95, eps=1e-8, weightDecay=0.1, clipNorm=1.0), losses=losses, torch=torch.__version__)
    write_atomic(os.path.join(OUT, f"{case['name']}.json"), json.dumps(meta, indent=2) + "\n")
    print(case["name"], "loss", round(loss.item(), 6), "after 10 steps", round(losses[-1], 6))


if __name__ == "__main__":
    for c in CASES:
        run(c)
