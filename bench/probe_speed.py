"""Time and peak memory of the §5 probe at the paper's size: imagenet32's D (28,672 features per image) on
60,000 training images, then the L2-SVM on 50,000 × 28,672 (the all-labels protocol's training part).

The weights do not change the cost, so D is freshly initialized unless --run gives a trained one (the
solver's iteration count does depend on the features: a trained D's are reported in docs/EXPERIMENTS.md).
Run: .venv/bin/python bench/probe_speed.py DATASET [--n 60000] [--C 1e-4] [--device cpu]
DATASET: a prepared 32×32×3 labelled set, e.g. `dcgan prepare /usr/share/datasets/fashion-mnist/
train-images-idx3-ubyte.gz data/fm3/train --size 32 --fit pad --channels 3`.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from dcgan.artifacts import load_discriminator
from dcgan.config import get_preset
from dcgan.data.dataset import PreparedDataset
from dcgan.models import build
from dcgan.probes.features import extract, feature_dim, reestimate_bn
from dcgan.probes.protocol import Rows, split
from dcgan.probes.svm import SVMProblem


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset")
    ap.add_argument("--run", help="a run whose D to use (default: imagenet32's D, freshly initialized)")
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--val", type=int, default=10_000)
    ap.add_argument("--C", type=float, default=1e-4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", help="where the feature memmap goes (default: a temp folder)")
    args = ap.parse_args()
    ds = PreparedDataset(args.dataset)
    d = load_discriminator(args.run, args.device) if args.run else build(get_preset("imagenet32"), 0)[1]
    d = d.to(args.device)
    images, labels = ds.images[: args.n], ds.labels[: args.n]
    out: dict = {"images": len(images), "features": feature_dim(d), "device": args.device}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        t = time.perf_counter()
        reestimate_bn(d, images[:10_000], device=args.device)
        feats = np.lib.format.open_memmap(
            Path(tmp) / "f.npy", mode="w+", dtype=np.float32, shape=(len(images), feature_dim(d))
        )
        extract(d, images, device=args.device, out=feats)
        feats.flush()
        out["extract_s"] = round(time.perf_counter() - t, 1)
        out["extract_img_per_s"] = round(len(images) / out["extract_s"])
        out["features_gib"] = round(feats.nbytes / 2**30, 2)
        out["peak_rss_gib_after_extract"] = round(peak_rss_gib(), 2)
        del feats
        feats = np.load(Path(tmp) / "f.npy", mmap_mode="r")
        s = split(labels, args.val, 0)
        t = time.perf_counter()
        problem = SVMProblem(Rows(feats, s.pool), labels[s.pool], args.device)
        out["svm_rows"] = len(s.pool)
        out["standardize_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        problem.spectrum()
        out["spectrum_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        model = problem.fit(args.C)
        out["fit_s"] = round(time.perf_counter() - t, 1)
        out["fit_evaluations"] = model.iterations
        out["val_accuracy"] = round(model.accuracy(Rows(feats, s.val), labels[s.val]), 4)
        out["peak_rss_gib"] = round(peak_rss_gib(), 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
