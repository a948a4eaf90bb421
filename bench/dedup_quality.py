"""How well de-duplication finds planted near-copies (docs/EXPERIMENTS.md, "De-duplication").

For each dataset, COPIES source images (distinct, at random) each get one near-copy appended, made by one of
the transforms below; the copy's pair with its source is a true duplicate. Pairs inside a dataset's natural
near-duplicate groups (emoji skin-tone variants, a sprite's animation frames) are counted in their own column,
never as false positives; horizontal flips are reported apart and left out of precision and recall.
Precision and recall are over unique unordered pairs, each method's direct pairs (imagededup's definition).

Methods: the paper's semantic hash (dcgan dedup) at Hamming radius 0, 1, 2, 4; an exact hash of the decoded
pixels; 64-bit pHash and dHash at radius 0, 2, 4, 8; cosine similarity of a trained D's features (every conv
layer, max-pooled to 1×1) at 0.99, 0.98, 0.95.

    .venv/bin/python bench/dedup_quality.py --emoji data/emoji --sprites data/sprites \
        --fmnist data/fashion-mnist/test --d64 runs/faces64 --d32 runs/fmnist32
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image, ImageEnhance
from scipy.fft import dctn

from dcgan import api
from dcgan.data.dedup import HashConfig, find_duplicates, near_pairs
from dcgan.errors import DcganError
from dcgan.probes.features import extract, reestimate_bn

COPIES_PER_TRANSFORM = 40


def _pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)


def _arr(img: Image.Image, channels: int) -> np.ndarray:
    a = np.asarray(img)
    return a[..., None] if channels == 1 else a


def jpeg(q: int):
    def f(a, rng):
        buf = io.BytesIO()
        _pil(a).save(buf, format="JPEG", quality=q)
        return _arr(Image.open(buf), a.shape[2])

    return f


def crop(share: float):
    def f(a, rng):
        s = a.shape[0]
        k = round(s * share)
        o = (s - k) // 2
        return _arr(_pil(a[o : o + k, o : o + k]).resize((s, s), Image.BICUBIC), a.shape[2])

    return f


def shift(px: int):
    def f(a, rng):
        dy, dx = rng.choice([-px, px], size=2)
        padded = np.pad(a, ((px, px), (px, px), (0, 0)), mode="edge")
        s = a.shape[0]
        return padded[px + dy : px + dy + s, px + dx : px + dx + s]

    return f


def brightness(factor: float):
    return lambda a, rng: np.clip(a.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def saturation(factor: float):
    return lambda a, rng: _arr(ImageEnhance.Color(_pil(a)).enhance(factor), a.shape[2])


def noise(a, rng):
    return np.clip(a + rng.normal(0, 5, a.shape), 0, 255).astype(np.uint8)


def down_up(a, rng):
    s = a.shape[0]
    return _arr(_pil(a).resize((s // 2, s // 2), Image.BOX).resize((s, s), Image.BILINEAR), a.shape[2])


def flip(a, rng):
    return a[:, ::-1].copy()


TRANSFORMS = {
    "copy": lambda a, rng: a.copy(), "jpeg95": jpeg(95), "jpeg75": jpeg(75), "jpeg50": jpeg(50), "crop90": crop(0.9), "crop80": crop(0.8),
    "shift1": shift(1), "shift2": shift(2), "bright+10": brightness(1.1), "bright-10": brightness(0.9),
    "sat+10": saturation(1.1), "sat-10": saturation(0.9), "noise5": noise, "downup": down_up, "flip": flip,
}  # fmt: skip


def plant(images: np.ndarray, seed: int) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """The images with near-copies appended, and (source, copy, transform) for each copy."""
    rng = np.random.default_rng(seed)
    names = [t for t in TRANSFORMS if not (images.shape[3] == 1 and t.startswith("sat"))]
    sources = rng.choice(len(images), size=COPIES_PER_TRANSFORM * len(names), replace=False)
    copies, truth = [], []
    for k, src in enumerate(sources):
        name = names[k % len(names)]
        copies.append(TRANSFORMS[name](images[src], rng))
        truth.append((int(src), len(images) + k, name))
    return np.concatenate([images, np.stack(copies)]), truth


# ---------------------------------------------------------------- methods: image → set of pairs


def pairs_of(i: np.ndarray, j: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(i.tolist(), j.tolist()))


def exact_pixels(x: np.ndarray) -> set[tuple[int, int]]:
    _, inv = np.unique(x.reshape(len(x), -1), axis=0, return_inverse=True)
    out = set()
    for g in np.unique(inv):
        members = np.flatnonzero(inv == g)
        out |= {(int(a), int(b)) for k, a in enumerate(members) for b in members[k + 1 :]}
    return out


def _grey(x: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.stack([np.asarray(_pil(a).convert("L").resize((w, h), Image.BOX), np.float32) for a in x])


def phash(x: np.ndarray) -> np.ndarray:
    low = dctn(_grey(x, 32, 32), axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(x), 64)
    return np.packbits(low > np.median(low[:, 1:], axis=1, keepdims=True), axis=1)


def dhash(x: np.ndarray) -> np.ndarray:
    g = _grey(x, 9, 8)
    return np.packbits((g[:, :, 1:] > g[:, :, :-1]).reshape(len(x), 64), axis=1)


def d_cosine(d, x: np.ndarray, real: np.ndarray, thresholds: list[float]) -> dict[float, set]:
    reestimate_bn(d, real)
    f = torch.from_numpy(extract(d, x, grid=1))
    f = torch.nn.functional.normalize(f - f.mean(0), dim=1)
    found: dict[float, set] = {t: set() for t in thresholds}
    for s in range(0, len(f), 2048):
        sim = f[s : s + 2048] @ f.T
        for t in thresholds:
            a, b = torch.nonzero(sim >= t, as_tuple=True)
            a = a + s
            keep = a < b
            found[t] |= pairs_of(a[keep].numpy(), b[keep].numpy())
    return found


# ---------------------------------------------------------------- scoring


def score(found, truth, natural: np.ndarray) -> dict:
    flips = {(s, c) for s, c, t in truth if t == "flip"}
    flip_images = {c for _, c in flips}
    true = {(s, c) for s, c, t in truth if t != "flip"}
    counted = {p for p in found if p[0] not in flip_images and p[1] not in flip_images}
    nat = {p for p in counted if natural[p[0]] == natural[p[1]]} - true
    hits = counted & true
    judged = counted - nat
    per = {
        t: np.mean([(s, c) in found for s, c, tt in truth if tt == t])
        for t in TRANSFORMS
        if any(tt == t for _, _, tt in truth)
    }
    return {
        "precision": len(hits) / len(judged) if judged else float("nan"),
        "recall": len(hits) / len(true),
        "natural": len(nat),
        "false": len(judged - hits),
        "per": per,
    }


def natural_groups(ds, x: np.ndarray, truth) -> np.ndarray:
    """A group id per image: the dataset's own near-duplicate groups (attributes column 0 of emoji and
    sprites), merged with groups of pixel-identical images already in the data (real duplicates nobody
    planted); a planted copy is in its source's group."""
    from dcgan.data.dedup import groups_of

    n = len(ds)
    columns = [np.unique(x[:n].reshape(n, -1), axis=0, return_inverse=True)[1].reshape(-1)]
    if "attributes" in ds.arrays:
        columns.append(ds.array("attributes")[:, 0])
    links_i, links_j = [], []
    for col in columns:  # neighbours in sorted order with equal values are linked
        order = np.argsort(col, kind="stable")
        same = col[order[1:]] == col[order[:-1]]
        links_i.append(order[:-1][same])
        links_j.append(order[1:][same])
    i, j = np.concatenate(links_i), np.concatenate(links_j)
    g = np.arange(len(x))
    for k, members in enumerate(groups_of(n, np.minimum(i, j), np.maximum(i, j))):
        g[members] = len(x) + k
    for s, c, _ in truth:
        g[c] = g[s]
    return g


def evaluate(
    name: str, path: str, d_run: str | None, seed: int, hashes: list[HashConfig], baselines: bool
) -> list[tuple[str, str, dict]]:
    ds = api.dataset(path)
    images = np.asarray(ds.images)
    x, truth = plant(images, seed)
    natural = natural_groups(ds, x, truth)
    rows = []
    for cfg in hashes:
        t0 = time.perf_counter()
        dups = find_duplicates(x, cfg, radius=0, allow_collapsed=True, progress=False)
        label = (
            "semantic hash" if cfg == HashConfig(seed=seed) else f"hash noise {cfg.noise}, {cfg.bits} bits"
        )
        health = {
            k: dups.health[k] for k in ("active_bits", "bit_entropy", "distinct_codes", "largest_collision")
        }
        print(f"{name}: {len(x):,} images, {label}: {time.perf_counter() - t0:.1f} s, health {health}")
        for r in (0, 1, 2, 4, 8):
            if r < cfg.bits // 8:
                i, j, _ = near_pairs(dups.codes, cfg.bits, r)
                rows.append((name, f"{label} r={r}", score(pairs_of(i, j), truth, natural)))
    if not baselines:
        return rows
    rows.append((name, "exact pixels", score(exact_pixels(x), truth, natural)))
    for label, codes in (("pHash", phash(x)), ("dHash", dhash(x))):
        for r in (0, 2, 4, 8):
            try:
                i, j, _ = near_pairs(codes, 64, r)
                rows.append((name, f"{label} r={r}", score(pairs_of(i, j), truth, natural)))
            except DcganError as e:
                print(f"{name} {label} r={r}: {e}")
    if d_run:
        d = api.load_discriminator(d_run, "cpu")
        if d.cfg.channels == images.shape[3] and d.cfg.image_size == images.shape[1]:
            for t, found in d_cosine(d, x, images[:10_000], [0.99, 0.98, 0.95]).items():
                rows.append((name, f"D cosine ≥ {t}", score(found, truth, natural)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emoji")
    p.add_argument("--sprites")
    p.add_argument("--fmnist")
    p.add_argument("--d64", help="run folder whose D scores the 64² colour sets")
    p.add_argument("--d32", help="run folder whose D scores Fashion-MNIST")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", default="0.2", help="de-noising levels to try, comma-separated (default 0.2)")
    p.add_argument("--bits", default="128", help="code lengths to try, comma-separated (default 128)")
    p.add_argument("--hash-only", action="store_true", help="leave out the baselines")
    a = p.parse_args()
    torch.set_num_threads(2)
    hashes = [
        HashConfig(noise=float(n), bits=int(b), seed=a.seed)
        for n in a.noise.split(",")
        for b in a.bits.split(",")
    ]
    rows = []
    for name, path, d in (
        ("emoji", a.emoji, a.d64),
        ("sprites", a.sprites, a.d64),
        ("fmnist", a.fmnist, a.d32),
    ):
        if path:
            rows += evaluate(name, path, d, a.seed, hashes, not a.hash_only)
    transforms = list(TRANSFORMS)
    print("\n| data | method | precision | recall | false pairs | natural pairs | "
          + " | ".join(transforms) + " |")  # fmt: skip
    print("|---|---|---|---|---|---|" + "---|" * len(transforms))
    for name, method, s in rows:
        per = " | ".join(f"{100 * s['per'][t]:.0f}" if t in s["per"] else "—" for t in transforms)
        print(f"| {name} | {method} | {100 * s['precision']:.1f}% | {100 * s['recall']:.1f}% | {s['false']} | "
              f"{s['natural']} | {per} |")  # fmt: skip


if __name__ == "__main__":
    main()
