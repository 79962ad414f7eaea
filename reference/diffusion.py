"""Reference values for mmntp's diffusion pieces, in float64 numpy (no torch): writes
test/fixtures/diffusion.json.

Written independently of the TypeScript, from the published formulas and diffusers' code:

- the cosine schedule (Nichol & Dhariwal 2021, "Improved DDPM", §3.2, eq. 17): diffusers'
  `betas_for_alpha_bar(T, alpha_transform_type="cosine")` ("squaredcos_cap_v2"): for index
  i = 0..T-1, beta_i = min(1 - f((i + 1) / T) / f(i / T), 0.999) with
  f(u) = cos((u + 0.008) / 1.008 * pi / 2) ** 2, and alphas_cumprod = cumprod(1 - betas);
- the forward process q(x_t | x_0): diffusers' `DDPMScheduler.add_noise`,
  sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps;
- the DDIM update (Song et al. 2021, eq. 12): diffusers' `DDIMScheduler.step` with
  prediction_type="epsilon", clip_sample=False, set_alpha_to_one=True (abar_prev = 1 when
  t_prev < 0): pred_original_sample, std_dev_t = eta * sqrt(variance) with variance =
  (beta_prod_t_prev / beta_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev), the direction
  term sqrt(1 - abar_prev - std_dev_t**2) * eps, plus std_dev_t * variance_noise when eta > 0;
- the sampling sub-sequence: diffusers' `DDIMScheduler.set_timesteps` with
  timestep_spacing="leading" (its default; the DDIM paper's range(0, T, T // S)),
  (np.arange(0, S) * (T // S)).round()[::-1], steps_offset 0;
- MAR's `SimpleMLPAdaLN` (Li et al. 2024, models/diffloss.py) forward, for one set of random
  weights stored in mmntp's parameter names: timestep_embedding (cos then sin, max_period
  10000), TimestepEmbedder, cond_embed, input_proj, ResBlocks (LayerNorm eps 1e-6 with affine,
  modulate(x, shift, scale) = x * (1 + scale) + shift, x + gate * mlp(h)), FinalLayer
  (LayerNorm eps 1e-6 without affine).

Run: /usr/bin/python3 reference/diffusion.py
"""

import json
import math
import os

import numpy as np

T = 1000


def cosine_betas(num_steps, max_beta=0.999):
    def alpha_bar(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = []
    for i in range(num_steps):
        t1 = i / num_steps
        t2 = (i + 1) / num_steps
        betas.append(min(1 - alpha_bar(t2) / alpha_bar(t1), max_beta))
    return np.array(betas, dtype=np.float64)


betas = cosine_betas(T)
alphas_cumprod = np.cumprod(1.0 - betas)


def add_noise(x0, eps, t):
    a = alphas_cumprod[t]
    return math.sqrt(a) * x0 + math.sqrt(1 - a) * eps


def ddim_step(model_output, timestep, sample, prev_timestep, eta, variance_noise=None):
    alpha_prod_t = alphas_cumprod[timestep]
    alpha_prod_t_prev = alphas_cumprod[prev_timestep] if prev_timestep >= 0 else 1.0
    beta_prod_t = 1 - alpha_prod_t
    beta_prod_t_prev = 1 - alpha_prod_t_prev
    pred_original_sample = (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
    pred_epsilon = model_output
    variance = (beta_prod_t_prev / beta_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)
    std_dev_t = eta * variance ** 0.5
    pred_sample_direction = (1 - alpha_prod_t_prev - std_dev_t ** 2) ** 0.5 * pred_epsilon
    prev_sample = alpha_prod_t_prev ** 0.5 * pred_original_sample + pred_sample_direction
    if eta > 0:
        prev_sample = prev_sample + std_dev_t * variance_noise
    return prev_sample, pred_original_sample, std_dev_t


def leading_timesteps(num_inference_steps):
    step_ratio = T // num_inference_steps
    return (np.arange(0, num_inference_steps) * step_ratio).round()[::-1].astype(np.int64)


# ── MAR's SimpleMLPAdaLN, in numpy ──


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = np.exp(-math.log(max_period) * np.arange(half, dtype=np.float64) / half)
    args = t[:, None].astype(np.float64) * freqs[None]
    return np.concatenate([np.cos(args), np.sin(args)], axis=-1)


def silu(x):
    return x / (1 + np.exp(-x))


def layer_norm(x, g=None, b=None, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    return y if g is None else y * g + b


def lin(p, x):
    return x @ p["w"] + p["b"]


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


def head_forward(p, x, t, c):
    freq = p["time"]["fc1"]["w"].shape[0]
    temb = lin(p["time"]["fc2"], silu(lin(p["time"]["fc1"], timestep_embedding(t, freq))))
    y = temb + lin(p["cond"], c)
    h = lin(p["input"], x)
    width = h.shape[-1]
    for blk in p["blocks"]:
        m = lin(blk["ada"], silu(y))
        shift, scale, gate = m[:, :width], m[:, width : 2 * width], m[:, 2 * width :]
        u = modulate(layer_norm(h, blk["norm"]["g"], blk["norm"]["b"]), shift, scale)
        u = lin(blk["fc2"], silu(lin(blk["fc1"], u)))
        h = h + gate * u
    m = lin(p["final"]["ada"], silu(y))
    shift, scale = m[:, :width], m[:, width:]
    return lin(p["final"]["out"], modulate(layer_norm(h), shift, scale))


def random_head(rng, dx, dz, width, depth, freq):
    def linear(din, dout, scale=0.4):
        return {"w": rng.normal(0, scale / math.sqrt(din), (din, dout)), "b": rng.normal(0, 0.1, (dout,))}

    return {
        "time": {"fc1": linear(freq, width), "fc2": linear(width, width)},
        "cond": linear(dz, width),
        "input": linear(dx, width),
        "blocks": [
            {
                "norm": {"g": 1 + rng.normal(0, 0.1, (width,)), "b": rng.normal(0, 0.1, (width,))},
                "fc1": linear(width, width),
                "fc2": linear(width, width),
                "ada": linear(width, 3 * width),
            }
            for _ in range(depth)
        ],
        "final": {"ada": linear(width, 2 * width), "out": linear(width, dx, 1.0)},
    }


def tolist(tree):
    if isinstance(tree, dict):
        return {k: tolist(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [tolist(v) for v in tree]
    if isinstance(tree, np.ndarray):
        return {"shape": list(tree.shape), "data": tree.reshape(-1).tolist()}
    return tree


def main():
    rng = np.random.default_rng(20240623)
    probe_t = [0, 1, 10, 100, 250, 500, 750, 900, 990, 998, 999]
    out = {
        "T": T,
        "schedule": {
            "t": probe_t,
            "alphaBar": [float(alphas_cumprod[t]) for t in probe_t],
            "beta": [float(betas[t]) for t in probe_t],
        },
        "qSample": [],
        "ddim": [],
        "timesteps": [{"steps": s, "timesteps": leading_timesteps(s).tolist()} for s in [1, 3, 7, 20, 50, 100, 1000]],
    }
    for t in [0, 37, 500, 999]:
        x0 = rng.normal(0, 1, (3, 4))
        eps = rng.normal(0, 1, (3, 4))
        out["qSample"].append({"t": t, "shape": [3, 4], "x0": x0.reshape(-1).tolist(), "eps": eps.reshape(-1).tolist(), "xt": add_noise(x0, eps, t).reshape(-1).tolist()})
    for t, t_prev in [(999, 946), (950, 900), (500, 450), (100, 50), (50, 0), (20, -1), (0, -1)]:
        for eta in [0.0, 1.0, 0.5]:
            xt = rng.normal(0, 1, (2, 3))
            eps_hat = rng.normal(0, 1, (2, 3))
            noise = rng.normal(0, 1, (2, 3))
            prev, x0, sigma = ddim_step(eps_hat, t, xt, t_prev, eta, noise)
            out["ddim"].append({"t": t, "tPrev": t_prev, "eta": eta, "shape": [2, 3], "xt": xt.reshape(-1).tolist(), "epsHat": eps_hat.reshape(-1).tolist(), "noise": noise.reshape(-1).tolist(), "prev": prev.reshape(-1).tolist(), "x0": x0.reshape(-1).tolist(), "sigma": float(sigma)})

    # the whole head: tokenDim 3, conditionDim 4, width 8, depth 2, frequency dim 6; 5 rows
    dx, dz, width, depth, freq = 3, 4, 8, 2, 6
    p = random_head(rng, dx, dz, width, depth, freq)
    x = rng.normal(0, 1, (5, dx))
    t = np.array([0, 1, 17, 500, 999], dtype=np.float64)
    c = rng.normal(0, 1, (5, dz))
    out["head"] = {
        "config": {"tokenDim": dx, "conditionDim": dz, "width": width, "depth": depth, "steps": T, "frequencyDim": freq},
        "params": tolist(p),
        "x": x.reshape(-1).tolist(),
        "t": t.tolist(),
        "z": c.reshape(-1).tolist(),
        "timeEmbedding": timestep_embedding(t, freq).reshape(-1).tolist(),
        "eps": head_forward(p, x, t, c).reshape(-1).tolist(),
    }

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "diffusion.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
