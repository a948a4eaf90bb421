"""A first look at the §5 probe on Fashion-MNIST: D's features of a trained run + the L2-SVM, against pixels.

Not the paper's protocol yet (no validation split, one label budget): N training labels, test on all 10,000.
Run: .venv/bin/python bench/probe_demo.py runs/fmnist32 data/fashion-mnist [--n 10000] [--C 1e-3,1e-2]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from safetensors.torch import load_file

from dcgan.config import ModelConfig
from dcgan.data.dataset import PreparedDataset
from dcgan.models import Discriminator
from dcgan.probes.features import extract, reestimate_bn
from dcgan.probes.svm import fit_svm
from dcgan.training.checkpoint import latest_checkpoint


def accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, C: float
) -> tuple[float, float]:
    t = time.perf_counter()
    svm = fit_svm(torch.from_numpy(train_x), torch.from_numpy(train_y), C)
    return float((svm.predict(torch.from_numpy(test_x)).numpy() == test_y).mean()), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("data", help="folder with train/ and test/ from `dcgan data fashion-mnist`")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--C", default="1e-3,1e-2")
    args = ap.parse_args()
    ckpt = latest_checkpoint(args.run)
    state = torch.load(ckpt / "state.pt", weights_only=True)
    d = Discriminator(ModelConfig.from_dict(state["config"]["model"]))
    d.load_state_dict(load_file(str(ckpt / "D.safetensors")))
    tr, te = PreparedDataset(f"{args.data}/train"), PreparedDataset(f"{args.data}/test")
    n = args.n
    t = time.perf_counter()
    reestimate_bn(d, tr.images[:n])
    f_tr, f_te = extract(d, tr.images[:n]), extract(d, te.images)
    results = {
        "checkpoint": str(ckpt),
        "train_labels": n,
        "features": f_tr.shape[1],
        "feature_seconds": round(time.perf_counter() - t, 1),
    }
    px_tr, px_te = (
        tr.images[:n].reshape(n, -1).astype(np.float32),
        te.images.reshape(len(te), -1).astype(np.float32),
    )
    for C in (float(c) for c in args.C.split(",")):
        acc, s = accuracy(f_tr, tr.labels[:n], f_te, te.labels, C)
        results[f"D_features_C{C:g}"] = {"test_accuracy": round(acc, 4), "svm_seconds": round(s, 1)}
        acc, s = accuracy(px_tr, tr.labels[:n], px_te, te.labels, C)
        results[f"pixels_C{C:g}"] = {"test_accuracy": round(acc, 4), "svm_seconds": round(s, 1)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
