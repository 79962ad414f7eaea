"""Image-metric fixtures for src/eval/ (test/eval/metrics.test.ts, test/eval/frechet.test.ts):
PSNR, SSIM and the Fréchet distance of two feature sets, on small seeded inputs, in float64.

- PSNR: 10·log10(data_range² / MSE) in numpy float64 (inf when the images are equal; stored as null).
- SSIM: scikit-image's `structural_similarity(im1, im2, data_range=R, gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, channel_axis=0)`, the settings that match Wang et al.
  2004: an 11×11 Gaussian window (truncate 3.5 → radius 5), K1 = 0.01, K2 = 0.03, the SSIM map of
  scipy.ndimage.gaussian_filter(mode="reflect") over the whole image, averaged after cropping
  (win_size − 1) // 2 pixels from each side; for colour the mean over channels. skimage computes in
  its input's float type, so the float32 images are passed as float64.
- Fréchet distance: pytorch-fid's `calculate_frechet_distance` (pytorch-fid is not installed here;
  its formula is written out below): μ = mean over rows, Σ = np.cov(rowvar=False) (unbiased, n − 1),
  d² = ‖μ1 − μ2‖² + Tr(Σ1) + Tr(Σ2) − 2·Tr(sqrtm(Σ1·Σ2)) with scipy.linalg.sqrtm.

Images are [N, C, H, W] float32 (as mmntp's ImageSet), written with the shortest decimal that
reads back as the same float32, so Float32Array.from(list) in JS holds exactly these values.

Run: /usr/bin/python3 reference/image_metrics.py  -> test/fixtures/image-metrics.json
(Debian: apt-get install python3-scipy python3-skimage)
"""
import json, os
import numpy as np
import scipy, scipy.linalg, scipy.ndimage
import skimage
from skimage.metrics import structural_similarity

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "image-metrics.json")


def f32_list(x):
    x = np.asarray(x, np.float32).ravel()
    out = [float(np.format_float_positional(v, unique=True, trim="-")) for v in x]
    assert np.array_equal(np.array(out).astype(np.float32), x)  # what Float32Array.from(list) reads
    return out


def smooth_image(rng, c, h, w, blur=2.0):
    """Blurred noise stretched to [0, 1]: structure at several scales, like a natural image."""
    x = scipy.ndimage.gaussian_filter(rng.standard_normal((c, h, w)), sigma=(0, blur, blur))
    x = (x - x.min()) / (x.max() - x.min())
    return x.astype(np.float32)


def noisy(rng, x, std):
    return np.clip(x + std * rng.standard_normal(x.shape), 0, 1).astype(np.float32)


def psnr(a, b, data_range):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return None if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def ssim(a, b, data_range, sigma):
    return float(structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=data_range, gaussian_weights=True, sigma=sigma, use_sample_covariance=False, channel_axis=0))


def image_case(name, a, b, data_range=1.0, sigma=1.5):
    n, c, h, w = a.shape
    per_image = [ssim(a[i], b[i], data_range, sigma) for i in range(n)]
    return {
        "name": name, "shape": [n, c, h, w], "dataRange": data_range, "sigma": sigma,
        "a": f32_list(a), "b": f32_list(b),
        "psnr": psnr(a, b, data_range), "ssim": float(np.mean(per_image)), "ssimPerImage": per_image,
    }


def frechet(x, y):
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def frechet_case(name, x, y):
    x, y = x.astype(np.float32), y.astype(np.float32)
    return {"name": name, "dim": x.shape[1], "na": x.shape[0], "nb": y.shape[0], "a": f32_list(x), "b": f32_list(y), "distance": frechet(x.astype(np.float64), y.astype(np.float64))}


def main():
    rng = np.random.default_rng(22)
    images = []

    a = np.stack([smooth_image(rng, 1, 28, 28) for _ in range(2)])
    images.append(image_case("gray 28×28, a batch of 2 noisy pairs", a, np.stack([noisy(rng, a[0], 0.05), noisy(rng, a[1], 0.2)])))

    a = smooth_image(rng, 3, 32, 32)[None]
    images.append(image_case("rgb 32×32 noisy pair", a, noisy(rng, a, 0.1)))

    a = smooth_image(rng, 1, 16, 16)[None]
    images.append(image_case("gray 16×16 equal pair", a, a.copy()))

    a = smooth_image(rng, 1, 13, 17)[None]
    images.append(image_case("gray 13×17 (non-square) vs an unrelated image", a, smooth_image(rng, 1, 13, 17)[None]))

    a = smooth_image(rng, 1, 11, 11)[None]
    images.append(image_case("gray 11×11 (the smallest for the window: one cropped pixel)", a, noisy(rng, a, 0.1)))

    a = np.full((1, 1, 14, 14), 0.5, np.float32)
    images.append(image_case("constant 14×14 vs a smooth image", a, smooth_image(rng, 1, 14, 14)[None]))

    a = np.full((1, 3, 12, 12), 0.25, np.float32)
    images.append(image_case("rgb constant 12×12 vs another constant", a, np.full((1, 3, 12, 12), 0.75, np.float32)))

    a = smooth_image(rng, 1, 20, 20)[None]
    b = noisy(rng, a, 0.1)
    images.append(image_case("gray 20×20 on a 0..255 scale, data_range 255", np.round(a * 255), np.round(b * 255), data_range=255.0))

    a = smooth_image(rng, 1, 18, 18)[None]
    images.append(image_case("gray 18×18 with sigma 1 (9×9 window)", a, noisy(rng, a, 0.1), sigma=1.0))

    mix = rng.standard_normal((8, 8)) / 3
    x = rng.standard_normal((200, 8))
    y = rng.standard_normal((150, 8)) @ (np.eye(8) + mix) * 1.3 + np.linspace(-0.5, 0.5, 8)
    features = [frechet_case("200×8 vs 150×8 (shifted, mixed, scaled)", x, y)]
    z = rng.standard_normal((64, 4))
    features.append(frechet_case("64×4 vs 64×4 from one distribution", z, rng.standard_normal((64, 4))))

    doc = {
        "about": "reference/image_metrics.py: PSNR (numpy float64), SSIM (skimage structural_similarity, Gaussian σ window, K1 0.01, K2 0.03, population covariance, channel mean), Fréchet distance (pytorch-fid formula, np.cov n − 1, scipy sqrtm)",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "skimage": skimage.__version__},
        "images": images,
        "features": features,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    for c in images:
        print(f"  {c['name']}: psnr {c['psnr']}, ssim {c['ssim']:.6f}")
    for c in features:
        print(f"  {c['name']}: frechet {c['distance']:.6f}")


if __name__ == "__main__":
    main()
