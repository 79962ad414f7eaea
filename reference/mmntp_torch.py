"""mmntp's models in PyTorch: the backbone and the image tokenizer's decoder, loading what
`mmntp export RUN --format torch` writes (docs/scale-out.md), with the same masks, positions,
norms, heads, loss and optimizer as mmntp.

    model = load_backbone("export/")             # config.json + model.safetensors
    logits = model(ids, mask=None, positions=None)
    loss = weighted_cross_entropy(logits, targets, weights)
    opt = adamw(model, lr)                       # mmntp's AdamW: betas (0.9, 0.95), wd 0.1 on
    clip_grad_norm_(model.parameters(), 1.0)     # rank >= 2 tensors only, clip 1.0

Backbone (src/backbone/transformer.ts): GPT-2 pre-LN blocks, LayerNorm eps 1e-5, tanh-GELU or
SwiGLU MLP, learned / 1-D rotary / 2-D axial rotary positions (rotate-half layout, base 10000),
masked scores set by adding -1e9 (not -inf, so a fully masked padding row stays finite, as in
mmntp), an untied LM head without bias. Tensor names are nanoGPT's (src/backbone/torch-names.ts).

Image decoder (src/tokenizers/image/autoencoder.ts, the VQ-VAE's): ids -> codebook rows ->
conv 3x3 + ReLU -> ConvTranspose 4x4/2 + ReLU -> ConvTranspose 4x4/2 (-> sigmoid, or clipped to
[0, 1] for the linear head).

Safetensors are read and written here with numpy alone (Debian has no python3-safetensors).
Run with /usr/bin/python3 (Debian's python3-torch).
"""
import json, math, os, struct
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "mmntp-torch"
VERSION = 1

# ------------------------------------------------------------------ safetensors (numpy)

_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def read_safetensors(path):
    """path -> ({name: np.ndarray}, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b : 8 + n + e], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"]).copy()
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """{name: np.ndarray | torch.Tensor} -> path, atomically (a temporary file, fsync, rename)."""
    arrays = {k: (v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)) for k, v in tensors.items()}
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        blob = a.tobytes()
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)  # data 8-byte aligned, as the reference writer pads
    write_atomic(path, struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_atomic(path, data):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------ backbone


def rotate(x, blocks):
    """x [B, T, H, Dh]; blocks: angle tensors [B|1, T, 1, Dh/2k] -> channel block j (width Dh/k) rotated by blocks[j], rotate-half layout."""
    w = x.shape[-1] // (2 * len(blocks))
    cos = torch.cat([c for a in blocks for c in (a.cos(), a.cos())], -1)
    sin = torch.cat([s for a in blocks for s in (-a.sin(), a.sin())], -1)
    swapped = torch.cat([h for j in range(len(blocks)) for h in (x[..., 2 * j * w + w : 2 * j * w + 2 * w], x[..., 2 * j * w : 2 * j * w + w])], -1)
    return x * cos + swapped * sin


def angles(pos, n, base, dtype):
    """pos [T] or [B, T] -> [1|B, T, 1, n]: pos * theta_i, theta_i = base^(-i/n)."""
    inv = torch.exp(torch.arange(n, dtype=dtype) * (-math.log(base) / n))
    pos = pos.to(dtype)
    if pos.dim() == 1:
        pos = pos[None]
    return pos[:, :, None, None] * inv


class Block(nn.Module):
    def __init__(s, c):
        super().__init__()
        d, f = c["dim"], c["dim"] * c["mlpRatio"]
        s.c = c
        s.ln_1, s.ln_2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
        s.attn = nn.Module()
        s.attn.c_attn, s.attn.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        s.mlp = nn.Module()
        s.mlp.c_fc, s.mlp.c_proj = nn.Linear(d, f), nn.Linear(f, d)
        if c["mlp"] == "swiglu":
            s.mlp.c_gate = nn.Linear(d, f)

    def attention(s, x, bias, positions):
        B, T, D = x.shape
        H = s.c["heads"]
        q, k, v = (t.reshape(B, T, H, D // H) for t in s.attn.c_attn(x).split(D, dim=2))
        kind = s.c["positions"]
        if kind == "rope":
            a = angles(positions, D // H // 2, 10000.0, x.dtype)
            q, k = rotate(q, [a]), rotate(k, [a])
        elif kind == "rope2d":
            g = positions if positions.dim() == 3 else positions[None]
            r, c = angles(g[..., 0], D // H // 4, 10000.0, x.dtype), angles(g[..., 1], D // H // 4, 10000.0, x.dtype)
            q, k = rotate(q, [r, c]), rotate(k, [r, c])
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, Dh]
        scores = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(D // H)) + bias
        y = scores.softmax(-1) @ v
        return s.attn.c_proj(y.transpose(1, 2).reshape(B, T, D))

    def forward(s, x, bias, positions):
        x = x + s.attention(s.ln_1(x), bias, positions)
        h = s.ln_2(x)
        if s.c["mlp"] == "swiglu":
            h = F.silu(s.mlp.c_gate(h)) * s.mlp.c_fc(h)
        else:
            h = F.gelu(s.mlp.c_fc(h), approximate="tanh")
        return x + s.mlp.c_proj(h)


class Backbone(nn.Module):
    """config: mmntp's TransformerConfig (vocabSize, contextLength, dim, layers, heads, mlp, mlpRatio, positions)."""

    def __init__(s, config):
        super().__init__()
        s.config = c = dict(config)
        s.transformer = nn.Module()
        s.transformer.wte = nn.Embedding(c["vocabSize"], c["dim"])
        if c["positions"] == "learned":
            s.transformer.wpe = nn.Embedding(c["contextLength"], c["dim"])
        s.transformer.h = nn.ModuleList([Block(c) for _ in range(c["layers"])])
        s.transformer.ln_f = nn.LayerNorm(c["dim"], eps=1e-5)
        s.lm_head = nn.Linear(c["dim"], c["vocabSize"], bias=False)

    def forward(s, ids, mask=None, positions=None):
        """ids [B, T] -> logits [B, T, V]. mask: bool [T, T] or [B, 1, T, T], True = may attend
        (default causal). positions: [T] or [B, T] (learned, rope), [T, 2] or [B, T, 2] (rope2d
        row/column ids); default 0..T-1 (rope2d: (t, t))."""
        T = ids.shape[1]
        dtype = s.transformer.wte.weight.dtype
        if mask is None:
            mask = torch.ones(T, T, dtype=torch.bool).tril()
        bias = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, -1e9)
        x = s.transformer.wte(ids)
        if s.config["positions"] == "learned":
            x = x + (s.transformer.wpe.weight[:T] if positions is None else s.transformer.wpe(positions))
        elif positions is None:
            positions = torch.arange(T)
            if s.config["positions"] == "rope2d":
                positions = torch.stack([positions, positions], -1)
        for blk in s.transformer.h:
            x = blk(x, bias, positions)
        return s.lm_head(s.transformer.ln_f(x))


def weighted_cross_entropy(logits, targets, weights):
    """-sum(w * log p(target)) / (sum(w) + 1e-9), as mmntp's weightedCrossEntropy."""
    logp = logits.log_softmax(-1).gather(-1, targets[..., None].long())[..., 0]
    return -(logp * weights).sum() / (weights.sum() + 1e-9)


def adamw(model, lr, weight_decay=0.1):
    """mmntp's AdamW (src/train/optim.ts): decoupled decay on tensors of rank >= 2 only."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95), eps=1e-8)


def warmup_cosine(step, peak, warmup, total, min_ratio=0.1):
    """mmntp's warmupCosine: linear warm-up to peak, cosine decay to peak * min_ratio."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def read_config(folder, kind):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("format") != FORMAT or cfg.get("version") != VERSION:
        raise SystemExit(f"{folder}/config.json: expected format {FORMAT} version {VERSION}, got {cfg.get('format')} {cfg.get('version')}")
    if kind not in cfg:
        raise SystemExit(f"{folder}/config.json has no {kind!r} section")
    return cfg


def load_state(module, tensors, what):
    """Loads `tensors` (numpy, by name) into `module` strictly: a missing, extra or misshapen tensor is an error naming it."""
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    bad = [f"{k}: {list(tensors[k].shape)} vs {list(own[k].shape)}" for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or extra or bad:
        raise SystemExit(f"{what}: missing {missing}, unexpected {extra}, wrong shapes {bad}")
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)).to(own[k].dtype) for k, v in tensors.items()})


def load_module(folder, section, make, file, dtype=torch.float32):
    """config.json's `section` -> make(section config), its tensors loaded strictly from `file` -> (module, config.json)."""
    cfg = read_config(folder, section)
    module = make(cfg[section]).to(dtype)
    tensors, _ = read_safetensors(os.path.join(folder, file))
    load_state(module, tensors, f"{folder}/{file}")
    return module, cfg


def load_backbone(folder, dtype=torch.float32):
    return load_module(folder, "model", Backbone, "model.safetensors", dtype)


def save_backbone(folder, model, cfg, extra=None):
    """model.safetensors then config.json (same format `mmntp import` reads), each atomically."""
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), {k: v.float() for k, v in model.state_dict().items()}, {"format": FORMAT})
    out = {**cfg, **(extra or {})}
    out.pop("imageDecoder", None)
    write_atomic(os.path.join(folder, "config.json"), json.dumps(out, indent=2) + "\n")


# ------------------------------------------------------------------ image decoder


class ImageDecoder(nn.Module):
    """ids [N, h*w] -> images [N, C, H, W] in [0, 1]: the VQ-VAE decoder of mmntp's image tokenizer."""

    def __init__(s, c):
        super().__init__()
        s.c = c
        c1, c2 = c["channels"]
        s.quantize = nn.Module()
        s.quantize.embedding = nn.Embedding(c["codebookSize"], c["dim"])
        s.decoder = nn.Module()
        s.decoder.conv_in = nn.Conv2d(c["dim"], c2, 3, padding=1)
        s.decoder.up1 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        s.decoder.up2 = nn.ConvTranspose2d(c1, c["imageChannels"], 4, stride=2, padding=1)

    def forward(s, ids):
        h, w = s.c["grid"]
        z = s.quantize.embedding(ids.long()).reshape(ids.shape[0], h, w, -1).permute(0, 3, 1, 2)
        y = s.decoder.up2(F.relu(s.decoder.up1(F.relu(s.decoder.conv_in(z)))))
        return y.sigmoid() if s.c["output"] == "sigmoid" else y.clamp(0, 1)


def load_image_decoder(folder, dtype=torch.float32):
    return load_module(folder, "imageDecoder", ImageDecoder, "image-decoder.safetensors", dtype)
