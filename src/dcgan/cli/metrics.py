"""`dcgan evaluate` and `dcgan extractor train`: sample-quality metrics in a named feature space."""

from __future__ import annotations

import argparse
from typing import Any

from dcgan.cli.common import device_arguments, generator_from_args, log, parser_for, run_argument
from dcgan.errors import DcganError


def cmd_evaluate(a: argparse.Namespace) -> int:
    from dcgan import api
    from dcgan.device import resolve
    from dcgan.fileio import write_json
    from dcgan.metrics.evaluate import parse_metrics
    from dcgan.training import distributed

    metrics = parse_metrics(a.metrics)
    # under torchrun every process generates a share of the samples and rank 0 scores them
    with distributed.joined(resolve(a.device, "fp32").device.type) as world:
        try:
            g = generator_from_args(a)
            inception = {"inception_weights": a.inception_weights, "inception_sha256": a.inception_sha256}
            ex = api.extractor(a.extractor, next(g.parameters()).device, **inception)
            result = api.evaluate(
                g, a.dataset, ex, num=a.num, metrics=metrics, seed=a.seed, bn=a.bn, cache=not a.no_cache,
                log=log if world.main else None,
            )  # fmt: skip
        except DcganError as e:  # every process was given the same arguments: rank 0 says it
            e.speak = world.main
            raise
    if result is None:
        return 0
    result["run"] = a.run  # G was loaded here (for --device and --from-examples): name what it came from
    width = max(len(k) for k in result["metrics"])
    for k, v in result["metrics"].items():
        print(f"{k:<{width}}  {v:.6g}" if abs(v) < 1e4 else f"{k:<{width}}  {v:.1f}")
    ref = result["reference"]
    print(
        f"{result['samples']:,} samples (seeds {result['seeds'][0]}…{result['seeds'][1]}, BN {a.bn}) against "
        f"{ref['images']:,} images of {ref['dataset']}{' (cached)' if ref['cached'] else ''}; extractor {ex.name}"
    )
    if a.out:
        write_json(a.out, result)
        print(f"result    {a.out}")
    return 0


def add_evaluate(sub: Any) -> None:
    p = parser_for(
        sub,
        "evaluate",
        "FID, KID, precision/recall and a classifier score of a generator, in a named feature space",
        "dcgan evaluate runs/fmnist32 --dataset data/fashion-mnist/train --extractor fmnist --out runs/fmnist32/eval.json",
    )
    run_argument(p)
    p.add_argument("--dataset", required=True, help="the real images (a prepared dataset folder)")
    p.add_argument(
        "--extractor",
        default="fmnist",
        help="a shipped extractor's name (fmnist), a .safetensors from `dcgan extractor train`, or inception",
    )
    p.add_argument(
        "--inception-weights", metavar="PTH", help="with --extractor inception: the local FID weights file"
    )
    p.add_argument(
        "--inception-sha256",
        help="accept an Inception weights file with this sha256 instead of the standard one",
    )
    p.add_argument(
        "--num", type=int, default=10_000, help="generated samples, and real images (default 10000)"
    )
    p.add_argument("--metrics", default="fid,kid,pr,score", help="comma-separated subset of fid,kid,pr,score")
    p.add_argument("--seed", type=int, default=0, help="first seed of the generated samples (default 0)")
    p.add_argument("--bn", default="running", choices=("running", "batch"), help="G's BatchNorm statistics")
    p.add_argument("--no-cache", action="store_true", help="recompute the real images' features")
    p.add_argument("--out", metavar="JSON", help="write the result here")
    p.set_defaults(fn=cmd_evaluate)


def cmd_extractor_train(a: argparse.Namespace) -> int:
    from dcgan import api

    recipe = {"epochs": a.epochs, "batch": a.batch, "lr": a.lr, "flip": a.flip, "seed": a.seed}
    ex = api.train_extractor(a.dataset, a.test, a.name, a.out, device=a.device, log=log, **recipe)
    print(f"extractor {ex.name}: test accuracy {ex.trained_on['test_accuracy']:.4f} → {a.out}")
    return 0


def add_extractor(sub: Any) -> None:
    p = parser_for(
        sub,
        "extractor",
        "domain feature extractors for the metrics",
        "dcgan extractor train data/fashion-mnist/train --test data/fashion-mnist/test --name fmnist --out fmnist.safetensors",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    t = parser_for(
        verbs,
        "train",
        "train a small classifier on a labelled dataset; its features and logits feed `dcgan evaluate`",
        "dcgan extractor train data/fashion-mnist/train --test data/fashion-mnist/test --name fmnist --out fmnist.safetensors",
    )
    t.add_argument("dataset", help="labelled training set (prepared)")
    t.add_argument("--test", required=True, help="labelled test set: the accuracy recorded in the extractor")
    t.add_argument("--name", required=True, help="short name; metrics are labelled NAME-HASH")
    t.add_argument("--out", required=True, metavar="SAFETENSORS")
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--flip", action="store_true", help="random horizontal flips (not for digits or text)")
    t.add_argument("--seed", type=int, default=0)
    device_arguments(t)
    t.set_defaults(fn=cmd_extractor_train)
