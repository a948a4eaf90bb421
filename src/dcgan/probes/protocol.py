"""The two §5 protocols (PAPER.md): D's features + L2-SVM against a supervised control and a pixel floor.

- all labels: train on the training split less a validation split (10,000 images by default), choose C on
  the validation split, report test accuracy of that fit.
- few labels (the SVHN protocol): N labels per class drawn at random from the same pool; C chosen by the
  mean validation accuracy over the first 10 draws; test error = mean ± 1.96σ over M draws.

Every method sees the same splits and draws: a draw is a function of (seed, draw index) only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan.artifacts import load_discriminator, weights_file
from dcgan.data.dataset import read_rows
from dcgan.errors import DcganError
from dcgan.fileio import atomic_path, sha256_file, write_bytes, write_json
from dcgan.models import Discriminator, build
from dcgan.probes.features import extract, feature_dim, reestimate_bn
from dcgan.probes.supervised import hyper_of, predict, search, train_classifier
from dcgan.probes.svm import SVMProblem

SELECT_DRAWS = 10  # draws over which C (and the control's hyperparameters) are chosen, as in the paper


class Rows:
    """A lazy row subset x[idx] of an array or memmap: slicing reads only the rows asked for."""

    def __init__(self, x: np.ndarray, idx: np.ndarray) -> None:
        self.x, self.idx = x, np.asarray(idx)
        self.shape = (len(self.idx), *x.shape[1:])
        self.ndim = x.ndim

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, s: slice) -> np.ndarray:
        return read_rows(self.x, self.idx[s])


@dataclass(frozen=True)
class Splits:
    """Indices into the training set: the validation split and the pool labelled draws come from."""

    val: np.ndarray
    pool: np.ndarray


def split(labels: np.ndarray, val_size: int, seed: int) -> Splits:
    """A random validation split of `val_size` images; the rest is the pool."""
    n = len(labels)
    if not 0 < val_size < n:
        raise DcganError(
            f"the validation split needs 0 < size < {n} (the training set's size), got {val_size}; "
            "set --val smaller or use a larger training set"
        )
    order = np.random.default_rng([seed, 0]).permutation(n)
    return Splits(np.sort(order[:val_size]), np.sort(order[val_size:]))


def draw(labels: np.ndarray, pool: np.ndarray, per_class: int, seed: int, index: int) -> np.ndarray:
    """`per_class` random pool indices of each class, for draw number `index`."""
    rng = np.random.default_rng([seed, 1, index])
    picked = []
    for c in np.unique(labels):
        members = pool[labels[pool] == c]
        if len(members) < per_class:
            raise DcganError(
                f"class {c} has {len(members)} images outside the validation split, fewer than the "
                f"{per_class} labels per class asked for; lower --labels-per-class or --val"
            )
        picked.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picked))


def mean_ci(errors: Sequence[float]) -> dict:
    """Mean and ±1.96σ (sample std over draws) of test errors."""
    e = np.asarray(errors, dtype=np.float64)
    sigma = float(e.std(ddof=1)) if len(e) > 1 else 0.0
    return {"test_error": float(e.mean()), "ci95": 1.96 * sigma, "test_errors": [float(v) for v in e]}


def svm_fit_and_score(
    feats: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    evals: dict[str, tuple[np.ndarray, np.ndarray]],
    Cs: Sequence[float],
    device: str,
) -> dict[float, dict[str, float]]:
    """Fit the L2-SVM on feats[train_idx] at every C (warm-started) and score each on every named
    (features, labels) evaluation set: {C: {name: accuracy}}."""
    problem = SVMProblem(Rows(feats, train_idx), labels[train_idx], device)
    scores = {}
    for model in problem.fit_path(list(Cs)):
        scores[model.C] = {name: model.accuracy(x, y) for name, (x, y) in evals.items()}
    return scores


def svm_protocol(
    feats_train: np.ndarray,
    y_train: np.ndarray,
    feats_test: np.ndarray,
    y_test: np.ndarray,
    splits: Splits,
    per_class: int | None,
    Cs: Sequence[float],
    draws: int = 10,
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict:
    """The L2-SVM on one kind of features. per_class=None: all labels (the whole pool); else `draws` draws,
    C chosen by the mean validation accuracy over the first SELECT_DRAWS of them (as the paper did)."""
    val = (Rows(feats_train, splits.val), y_train[splits.val])
    evals = {"val": val, "test": (feats_test, y_test)}
    t0 = time.perf_counter()
    if per_class is None:
        scores = svm_fit_and_score(feats_train, y_train, splits.pool, evals, Cs, device)
        best = max(Cs, key=lambda C: scores[C]["val"])
        log(f"  all labels: C={best:g}, val {scores[best]['val']:.4f}, test {scores[best]['test']:.4f}")
        return {
            "labels": len(splits.pool),
            "C": best,
            "val_accuracy_by_C": {f"{C:g}": scores[C]["val"] for C in Cs},
            "test_error": 1 - scores[best]["test"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
    per_draw = []
    for i in range(draws):
        idx = draw(y_train, splits.pool, per_class, seed, i)
        per_draw.append(svm_fit_and_score(feats_train, y_train, idx, evals, Cs, device))
        log(
            f"  draw {i + 1}/{draws}: "
            + ", ".join(f"C={C:g} val {s['val']:.4f}" for C, s in per_draw[-1].items())
        )
    val_by_C = {C: float(np.mean([d[C]["val"] for d in per_draw[:SELECT_DRAWS]])) for C in Cs}
    best = max(Cs, key=lambda C: val_by_C[C])
    return {
        "labels": per_class * len(np.unique(y_train)),
        "draws": draws,
        "C": best,
        "val_accuracy_by_C": {f"{C:g}": v for C, v in val_by_C.items()},
        **mean_ci([1 - d[best]["test"] for d in per_draw]),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def control_protocol(
    cfg,
    train,
    test,
    y_train: np.ndarray,
    y_test: np.ndarray,
    splits: Splits,
    per_class: int | None,
    draws: int,
    trials: int,
    max_epochs: int,
    seed: int,
    device: str,
    log: Callable[[str], None] = print,
) -> dict:
    """The supervised CNN: random search on the first draw (or the whole pool) against the validation
    split, then the best hyperparameters trained on every draw and scored on the test set."""
    t0 = time.perf_counter()
    val = (Rows(train.images, splits.val), y_train[splits.val])
    n_draws = 1 if per_class is None else draws
    sets = [
        splits.pool if per_class is None else draw(y_train, splits.pool, per_class, seed, i)
        for i in range(n_draws)
    ]

    def labelled(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return train.images[idx], y_train[idx]

    trials_out = search(cfg, labelled(sets[0]), val, trials, seed, max_epochs, device, log)
    hyper = hyper_of(trials_out[0])
    errors = []
    for i, idx in enumerate(sets):
        net = train_classifier(cfg, *labelled(idx), hyper, seed=seed * 1000 + 999 - i, device=device)
        errors.append(float((predict(net, test.images, device=device) != y_test).mean()))
        log(f"  control draw {i + 1}/{len(sets)}: test error {errors[-1]:.4f}")
    out = {"labels": len(sets[0]), "trials": trials_out, "best": trials_out[0]}
    out.update({"test_error": errors[0]} if per_class is None else {"draws": draws, **mean_ci(errors)})
    return {**out, "seconds": round(time.perf_counter() - t0, 1)}


def cached_features(
    d: Callable, dataset, path, key: dict, device: str, log: Callable[[str], None] = print
) -> np.ndarray:
    """D's features of every image of `dataset`, as a float32 .npy memmap at `path`, reused when the
    key (D's weights, the images, the BN statistics) matches; written under a temp name and renamed.
    `d()` gives D ready to extract (called only when the features are not cached)."""
    path, meta = Path(path), Path(path).with_suffix(".json")
    if path.is_file() and meta.is_file() and json.loads(meta.read_text()) == key:
        log(f"  features: reusing {path}")
        return np.load(path, mmap_mode="r")
    net = d()
    t0 = time.perf_counter()
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(len(dataset), feature_dim(net))
        )
        extract(net, dataset.images, device=device, out=out)
        out.flush()
        del out
    write_json(meta, key)
    log(f"  features: {len(dataset):,} × {feature_dim(net):,} in {time.perf_counter() - t0:.1f} s → {path}")
    return np.load(path, mmap_mode="r")


def d_features(
    d: Discriminator, train, test, out, prefix: str, key: dict, device: str, log
) -> dict[str, np.ndarray]:
    """D's features of the training and test sets, cached in OUT/{prefix}features-{train,test}.npy; BN
    statistics are re-estimated on the training images first, once, and only when features are computed."""
    bn_done = []

    def ready() -> Discriminator:
        if not bn_done:
            log(f"  BN statistics re-estimated on {len(train):,} training images")
            reestimate_bn(d, train.images, device=device)
            bn_done.append(True)
        return d

    return {
        part: cached_features(
            ready,
            ds,
            out / f"{prefix}features-{part}.npy",
            {**key, "images": ds.manifest["images_sha256"]},
            device,
            log,
        )
        for part, ds in (("train", train), ("test", test))
    }


METHODS = {
    "dcgan_svm": "DCGAN D features + L2-SVM",
    "untrained_svm": "Untrained D (same init) features + L2-SVM",
    "control": "Supervised CNN, same architecture",
    "pixels_svm": "L2-SVM on raw pixels",
}


def check_labelled(train, test, cfg) -> tuple[np.ndarray, np.ndarray, int]:
    """Both sets labelled and shaped as D's images; returns their labels as 0…K−1 and K."""
    for name, ds in (("--dataset", train), ("--test", test)):
        if ds.labels is None:
            raise DcganError(f"{name} {str(ds.path)!r} has no labels; prepare it with --labels")
        if (ds.image_size, ds.channels) != (cfg.image_size, cfg.channels):
            raise DcganError(
                f"{name} {str(ds.path)!r} holds {ds.image_size}² × {ds.channels} images but D was trained on "
                f"{cfg.image_size}² × {cfg.channels}; prepare it at that size and channel count"
            )
    classes = np.unique(train.labels)
    if not np.isin(test.labels, classes).all():
        raise DcganError(
            f"--test has labels the training set lacks ({sorted(set(test.labels) - set(classes))})"
        )
    return np.searchsorted(classes, train.labels), np.searchsorted(classes, test.labels), len(classes)


def feature_sets(
    run: str,
    d: Discriminator,
    cfg,
    train,
    test,
    out: Path,
    untrained: bool,
    pixels: bool,
    seed: int,
    device: str,
    log,
) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """The (train, test) features each SVM row is fitted on, by method: D's (cached in OUT), the untrained
    D's, raw pixels. Returns D's weights file too."""
    d_file = weights_file(run, "D")
    log(f"D from {d_file}")
    key = {"D": sha256_file(d_file), "bn_images": train.manifest["images_sha256"], "grid": 4}
    sets = {"dcgan_svm": d_features(d, train, test, out, "", key, device, log)}
    if untrained:
        log(f"untrained D: the same architecture with the paper's initialization (seed {seed})")
        key = {**key, "D": f"untrained, paper init, seed {seed}", "model": cfg.to_dict()}
        d0 = build(cfg, seed)[1].to(device)
        sets["untrained_svm"] = d_features(d0, train, test, out, "untrained-", key, device, log)
    if pixels:
        sets["pixels_svm"] = {
            "train": train.images.reshape(len(train), -1),
            "test": test.images.reshape(len(test), -1),
        }
    return d_file, sets


def check_options(
    budgets: Sequence[int | None] = (100,),
    Cs: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2),
    draws: int = 10,
    control: Sequence[int | None] = (),
    trials: int = 16,
    max_epochs: int = 100,
) -> None:
    """probe()'s numbers, checked before any work (a zero would give NaNs or an empty table)."""
    if not budgets or any(b is not None and b < 1 for b in budgets):
        raise DcganError(
            f"label budgets are positive numbers of labels per class or None (all), got {list(budgets)}"
        )
    if not Cs or any(not c > 0 for c in Cs):
        raise DcganError(f"--C takes positive numbers (e.g. 1e-4,1e-3,1e-2); got {list(Cs)}")
    if not set(control) <= set(budgets):
        raise DcganError(f"every control budget {list(control)} must also be a label budget {list(budgets)}")
    for name, value in (("--draws", draws), ("--trials", trials), ("--max-epochs", max_epochs)):
        if value < 1:
            raise DcganError(f"{name} must be at least 1, got {value}")


def probe(
    run: str,
    train,
    test,
    out_dir: str,
    budgets: Sequence[int | None] = (100,),
    Cs: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2),
    draws: int = 10,
    val_size: int = 10_000,
    seed: int = 0,
    control: Sequence[int | None] = (),
    trials: int = 16,
    max_epochs: int = 100,
    pixels: bool = True,
    untrained: bool = False,  # also probe D before training
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict:
    """Both protocols for every label budget (labels per class, None = all labels) on D of `run`, the
    control for the budgets in `control`, and with `untrained` the same probe on D before training;
    writes OUT/probe.json and OUT/table.md and returns the result."""
    check_options(budgets, Cs, draws, control, trials, max_epochs)
    d = load_discriminator(run, device)
    cfg = d.cfg
    y_train, y_test, n_classes = check_labelled(train, test, cfg)
    splits = split(y_train, val_size, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    d_file, svm_inputs = feature_sets(run, d, cfg, train, test, out, untrained, pixels, seed, device, log)
    result = {
        "run": str(run),
        "D": str(d_file),
        "dataset": str(train.path),
        "test": str(test.path),
        "classes": n_classes,
        "features": int(svm_inputs["dcgan_svm"]["train"].shape[1]),
        "val_size": val_size,
        "C_grid": list(Cs),
        "seed": seed,
        "budgets": {},
    }
    for per_class in budgets:
        log(f"label budget: {'all labels' if per_class is None else f'{per_class} per class'}")
        common = dict(splits=splits, per_class=per_class, draws=draws, seed=seed, device=device, log=log)
        row = {}
        for method, f in svm_inputs.items():
            if method != "dcgan_svm":
                log(f"  {METHODS[method]}:")
            row[method] = svm_protocol(f["train"], y_train, f["test"], y_test, Cs=Cs, **common)
        if per_class in control:
            log(f"  {METHODS['control']}:")
            row["control"] = control_protocol(
                cfg, train, test, y_train, y_test, trials=trials, max_epochs=max_epochs, **common
            )
        result["budgets"]["all" if per_class is None else str(per_class)] = row
        write_json(out / "probe.json", result)  # after every budget: an interrupted probe keeps what it has
    write_bytes(out / "table.md", table(result).encode())
    return result


def table(result: dict) -> str:
    """A Markdown table shaped like the paper's Table 2: test error per method and label budget."""
    budgets = result["budgets"]
    head = [
        f"{b['dcgan_svm']['labels']:,} labels" + ("" if k == "all" else f" ({k} per class)")
        for k, b in budgets.items()
    ]
    lines = ["| Model | " + " | ".join(f"error, {h}" for h in head) + " |", "|---" * (len(head) + 1) + "|"]
    for method, title in METHODS.items():
        if not any(method in b for b in budgets.values()):
            continue
        cells = []
        for b in budgets.values():
            r = b.get(method)
            cells.append(
                "—"
                if r is None
                else f"{100 * r['test_error']:.2f}%" + (f" (±{100 * r['ci95']:.2f}%)" if "ci95" in r else "")
            )
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    notes = (
        f"\n{result['features']:,}-d features of D ({result['D']}); C from {result['C_grid']} chosen on a "
        f"{result['val_size']:,}-image validation split; few-label errors are mean ± 1.96σ over draws.\n"
    )
    return "\n".join(lines) + "\n" + notes
