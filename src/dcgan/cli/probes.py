"""`dcgan memorization` and `dcgan probe`: probes of what G and D learned."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from dcgan.cli.common import device_arguments, generator_from_args, log, parser_for, run_argument
from dcgan.errors import DcganError


def cmd_memorization(a: argparse.Namespace) -> int:
    from dcgan import api

    g = generator_from_args(a)
    if a.space == "d" and not a.run:
        raise DcganError("--space d needs a run or checkpoint folder as RUN: D comes from there")
    d = a.run if a.space == "d" else None
    summary, _ = api.memorization(
        g, a.dataset, a.heldout, num=a.num, k=a.k, panels=a.panels, discriminator=d, out=a.out
    )
    shown = {k: v for k, v in summary.items() if k != "closest_pairs"}
    print(json.dumps(shown, indent=2))
    print(f"panels    {a.out}/nearest.png (each row: a sample, then its {a.k} nearest training images)")
    return 0


def add_memorization(sub: Any) -> None:
    p = parser_for(
        sub,
        "memorization",
        "nearest training images of samples, and the original code's nnd",
        "dcgan memorization runs/fmnist32 --dataset data/fashion-mnist/train "
        "--heldout data/fashion-mnist/test --out runs/fmnist32/memorization",
    )
    run_argument(p)
    p.add_argument("--dataset", required=True, help="the training set (a prepared dataset folder)")
    p.add_argument(
        "--heldout", help="held-out real images: adds nnd (samples → held-out) and its real baseline"
    )
    p.add_argument("--num", type=int, default=10000, help="samples, seeds 0…num−1 (default 10000)")
    p.add_argument("--k", type=int, default=5, help="neighbours per sample (default 5)")
    p.add_argument("--panels", type=int, default=8, help="samples shown in nearest.png (default 8)")
    p.add_argument(
        "--space",
        choices=("pixels", "d"),
        default="pixels",
        help="compare pixels (default), or the run's D features (unit length, every conv layer max-pooled)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="nearest.png and memorization.json go here")
    p.set_defaults(fn=cmd_memorization)


def cmd_arithmetic_score(a: argparse.Namespace) -> int:
    from dcgan import api
    from dcgan.fileio import write_json
    from dcgan.images import labelled_grid, save_png

    g = generator_from_args(a)
    recipes = a.recipe or ["smile", "glasses"]
    results, figures = api.arithmetic_score(
        g, a.dataset, recipes, trials=a.trials, pool=a.pool, epochs=a.epochs, seed=a.seed
    )
    os.makedirs(a.out, exist_ok=True)
    write_json(os.path.join(a.out, "arithmetic-score.json"), results)
    acc = ", ".join(f"{n} {v:.1%}" for n, v in results[0]["classifier_accuracy"].items())
    print(f"classifier held-out accuracy: {acc}")
    print(
        f"{'recipe':<10} {'target':<32} {'latent, 3 each':>15} {'latent, 1 each':>15} {'pixels, 3 each':>15} {'prior':>7}"
    )
    for name, r in zip(recipes, results):
        target = ",".join(f"{k}={v}" for k, v in r["target"].items())
        print(
            f"{name[:10]:<10} {target:<32} {r['latent3']:>15.1%} {r['latent1']:>15.1%} {r['pixels3']:>15.1%} "
            f"{r['prior']:>7.1%}"
        )
        fig = figures[name]
        if len(fig):
            stem = name if name.isidentifier() else f"recipe-{recipes.index(name)}"
            captions = ["A", "A", "A", "B", "B", "B", "C", "C", "C", "= G(Y)", "pixels"] * (len(fig) // 11)
            save_png(labelled_grid(fig, captions, ncols=11), os.path.join(a.out, f"arithmetic-{stem}.png"))
    print(
        f"results   {a.out}/arithmetic-score.json and a figure per recipe (rows: A₁₋₃ B₁₋₃ C₁₋₃, G(Y), pixels)"
    )
    return 0


def add_arithmetic_score(sub: Any) -> None:
    p = parser_for(
        sub,
        "arithmetic-score",
        "score the paper's face arithmetic (§6.3.2) with a classifier of the dataset's yes/no attributes",
        "dcgan arithmetic-score runs/faces64 --dataset data/faces --out runs/faces64/figures",
    )
    run_argument(p)
    p.add_argument("--dataset", required=True, help="the training set, with yes/no columns in attributes.npy")
    p.add_argument(
        "--recipe",
        action="append",
        help="smile, glasses (default: both), or 'smiling=yes,long_hair=yes - smiling=no,long_hair=yes + "
        "smiling=no,long_hair=no'; repeat for more",
    )
    p.add_argument("--trials", type=int, default=200, help="arithmetic trials per recipe (default 200)")
    p.add_argument("--pool", type=int, default=4000, help="samples exemplars are chosen from (default 4000)")
    p.add_argument("--epochs", type=int, default=3, help="attribute classifier epochs (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="DIR", help="arithmetic-score.json and figures go here")
    p.set_defaults(fn=cmd_arithmetic_score)


def cmd_saliency(a: argparse.Namespace) -> int:
    from dcgan import api
    from dcgan.fileio import write_json
    from dcgan.images import save_png

    if not a.out.lower().endswith(".png"):
        raise DcganError(f"--out is the figure, a .png (its numbers go beside it as .json); got {a.out!r}")
    summary, fig = api.saliency(
        a.run, a.dataset, layer=a.layer, num=a.num, top=a.top, features=a.features, rule=a.rule, seed=a.seed,
        device=a.device, log=log,
    )  # fmt: skip
    save_png(fig, a.out)
    numbers = os.path.splitext(a.out)[0] + ".json"
    write_json(numbers, summary)
    print(
        f"layer     {summary['layer']} of {summary['layers']}, rule {summary['rule']}, top {summary['top']} of "
        f"{summary['images']:,} images per channel"
    )
    if "trained" in summary:
        t, r = summary["trained"], summary["random"]
        print(f"{'class':<10} {'pixels':>8} {'trained D':>10} {'random D':>10}   (share of saliency energy)")
        for name, area in t["area_share"].items():
            print(
                f"{name:<10} {area:>8.1%} {t['energy_share'][name]:>10.1%} {r['energy_share'][name]:>10.1%}"
            )
        print(
            f"{'lift':<10} {'':>8} {t['lift_median']:>10.2f} {r['lift_median']:>10.2f}   (median over channels)"
        )
        print(
            f"{'purity':<10} {t['purity_chance']:>8.1%} {t['purity_mean']:>10.1%} {r['purity_mean']:>10.1%}   "
            "(top-k sets sharing an object; pixels column: random sets)"
        )
    print(f"figure    {a.out} (left trained D, right random D; rows: channels, first cell their top image)")
    print(f"numbers   {numbers}")
    return 0


# probes.saliency.RULES, written out: that module imports torch, which building the parser must not
# (tests/cli/test_cli.py keeps the two equal)
SALIENCY_RULES = ("relu", "leaky")


def add_saliency(sub: Any) -> None:
    p = parser_for(
        sub,
        "saliency",
        "guided backprop from D's units to the pixels that excite them (paper §6.2, Fig. 5), vs a random D",
        "dcgan saliency runs/rooms64 --dataset data/rooms --out runs/rooms64/figures/saliency.png",
    )
    p.add_argument("run", help="run folder (D of its latest checkpoint), checkpoint folder or D.safetensors")
    p.add_argument(
        "--dataset",
        required=True,
        help="real images to find each unit's top images in (with masks.npy: where the saliency falls)",
    )
    p.add_argument("--layer", type=int, help="D's conv layer, 1…L (default the last, as the paper)")
    p.add_argument("--num", type=int, default=10_000, help="images streamed, the first N (default 10000)")
    p.add_argument("--top", type=int, default=8, help="top images per channel (default 8)")
    p.add_argument(
        "--features",
        type=int,
        default=6,
        help="channels shown as rows, the first N (default 6, as the paper)",
    )
    p.add_argument(
        "--rule",
        choices=SALIENCY_RULES,
        default="relu",
        help="relu: the classic guided rule (default); leaky: negative inputs pass at the leak's slope",
    )
    p.add_argument("--seed", type=int, default=0, help="the random D's init")
    device_arguments(p)
    p.add_argument(
        "--out", required=True, metavar="PNG", help="the figure; its numbers go beside it as .json"
    )
    p.set_defaults(fn=cmd_saliency)


def cmd_forget(a: argparse.Namespace) -> int:
    from dcgan import api

    layers = a.layer or [2]
    r = api.forget(
        a.run, a.dataset, a.out, obj=a.object, layers=layers, fit_seeds=a.fit_seeds, eval_seeds=a.eval_seeds,
        boxes=a.boxes, segmenter=a.segmenter, segmenter_images=a.segmenter_images, draws=a.draws, seed=a.seed,
        log=log,
    )  # fmt: skip
    obj = r["object"]

    def pct(x: float | None, sign: str = "") -> str:
        return "—" if x is None else f"{x:{sign}.1%}"

    def line(label: str, removal: str, share: str, kid: float, fid: float, change: list[str]) -> None:
        cells = f"{removal:>12} {share:>12} {kid * 1e3:>8.1f} {fid:>6.1f}"
        print(f"  {label:<24}{cells}  " + "".join(f"{c:>8}" for c in change))

    for lay in r["layers"]:
        reg = lay["regression"]
        print(
            f"layer {lay['layer']} ({lay['width']} maps of {lay['side']}×{lay['side']}): "
            f"{reg['positive_filters']} with positive weight (regression on {reg['positives']:,} {obj} "
            f"positions + as many others, train accuracy {reg['train_accuracy']:.1%})"
        )
        others = [c for c in lay["none"]["area"] if c != obj]
        print(
            f"  {'dropped':<24}{'removal':>12} {'with ' + obj:>12} {'KID×1e3':>8} {'FID':>6}  "
            + "".join(f"{c[:7]:>8}" for c in others)
            + "  (change of area)"
        )
        none = lay["none"]
        line("nothing", "", pct(none["share_with_object"]), none["kid"], none["fid"], [])
        for label, row in ((f"{obj} filters", lay["positive"]), ("most negative", lay["negative"])):
            change = [pct(row["area_change"][c], "+") for c in others]
            label = f"{label} ({row['dropped']})"
            line(label, pct(row["removal"]), pct(row["share_with_object"]), row["kid"], row["fid"], change)
        rnd = lay["random"]
        change = [pct(rnd["area_change_mean"][c], "+") for c in others]
        spread = "" if rnd["removal_sd"] is None else f" ± {rnd['removal_sd']:.0%}"
        label = f"random ({len(lay['positive_channels'])}), {rnd['draws']} draws"
        line(
            label, pct(rnd["removal_mean"]) + spread, pct(rnd["share_with_object_mean"]), rnd["kid_mean"],
            rnd["fid_mean"], change,
        )  # fmt: skip
        curve = ", ".join(f"{p['dropped']}: {pct(p['removal'])}" for p in lay["curve"])
        print(f"  removal by filters dropped (most positive first): {curve}")
    for lay in r["layers"]:
        n = lay["layer"]
        print(
            f"layer {n}    {a.out}/forget-layer{n}.png (rows: as drawn, {obj} filters dropped, as many random "
            f"dropped); dcgan sample RUN --drop {a.out}/drops-layer{n}.json"
        )
    print(f"numbers   {a.out}/forget.json")
    return 0


def add_forget(sub: Any) -> None:
    p = parser_for(
        sub,
        "forget",
        "find G's filters that draw an object, drop them and measure what is gone (paper §6.3.1, Fig. 6)",
        "dcgan forget runs/rooms64 --dataset data/rooms --object window --out runs/rooms64/forget",
    )
    p.add_argument("run", help="run folder, checkpoint folder or generator .safetensors")
    p.add_argument(
        "--dataset",
        required=True,
        help="the training set with class maps (dcgan data rooms): trains the segmenter, KID's reference",
    )
    p.add_argument("--object", default="window", help="the class whose filters are dropped (default window)")
    p.add_argument(
        "--layer",
        type=int,
        action="append",
        help="G's hidden layer, 1 = the one nearest the output (default 2, the paper's \"second highest\"); "
        "repeat to measure several",
    )
    p.add_argument("--fit-seeds", default="0-149", help="samples the regression is fit on (default 0-149)")
    p.add_argument(
        "--eval-seeds", default="10000-10999", help="samples the drop is measured on (default 10000-10999)"
    )
    p.add_argument(
        "--boxes",
        metavar="JSON",
        help='the object\'s boxes drawn on the fit samples (dcgan annotate), {"boxes": {"SEED": [[x0, y0, x1, '
        "y1], ...]}}; a fit seed without boxes has none of the object (default: the segmenter finds it)",
    )
    p.add_argument(
        "--segmenter",
        metavar="PATH",
        help="a segmenter.safetensors from an earlier run (default: OUT's, or train one)",
    )
    p.add_argument(
        "--segmenter-images",
        type=int,
        default=20_000,
        help="images the segmenter trains on (default 20000); a tenth of the dataset, at most 1000, is held out",
    )
    p.add_argument("--draws", type=int, default=10, help="random-filter control draws (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="forget.json, forget-layerL.png, drops-layerL.json go here",
    )
    p.set_defaults(fn=cmd_forget)


def cmd_annotate(a: argparse.Namespace) -> int:
    from dcgan import api

    g = generator_from_args(a)
    page = api.annotate(g, a.seeds, a.out, a.page, title=a.run, obj=a.object)
    print(f"page      {page} — open it in a browser, drag a box around each {a.object}, press download")
    print(f"then      save the download as {a.out} and run: dcgan forget {a.run} --boxes {a.out} ...")
    return 0


def add_annotate(sub: Any) -> None:
    p = parser_for(
        sub,
        "annotate",
        "a page to draw an object's boxes on samples by hand, for `dcgan forget --boxes` (paper §6.3.1)",
        "dcgan annotate runs/rooms64 --seeds 0-149 --out runs/rooms64/boxes.json",
    )
    run_argument(p)
    p.add_argument("--seeds", default="0-149", help="the samples to draw on (default 0-149, the paper's 150)")
    p.add_argument("--out", required=True, metavar="JSON", help="the boxes file (shown again if it exists)")
    p.add_argument("--page", metavar="HTML", help="where the page goes (default: --out with .html)")
    p.add_argument(
        "--object", default="window", help="what the boxes are for, named on the page (default window)"
    )
    p.set_defaults(fn=cmd_annotate)


def _budgets(text: str) -> list[int | None]:
    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            out.append(None)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise DcganError(
                f"--labels-per-class takes positive numbers and 'all', comma-separated; got {part!r}"
            )
    return out


def _floats(text: str) -> list[float]:
    try:
        values = [float(c) for c in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(v > 0 for v in values):
        raise DcganError(f"--C takes positive numbers, comma-separated (e.g. 1e-4,1e-3,1e-2); got {text!r}")
    return values


def cmd_probe(a: argparse.Namespace) -> int:
    from dcgan import api
    from dcgan.probes.protocol import table

    budgets, Cs = _budgets(a.labels_per_class), _floats(a.C)
    control = [] if a.control is None else budgets if a.control == "same" else _budgets(a.control)
    if not set(control) <= set(budgets):
        raise DcganError(
            f"--control {a.control}: each budget must also be in --labels-per-class {a.labels_per_class}"
        )
    result = api.probe(
        a.run,
        a.dataset,
        a.test,
        a.out,
        budgets=budgets,
        Cs=Cs,
        draws=a.draws,
        val_size=a.val,
        seed=a.seed,
        control=control,
        trials=a.trials,
        max_epochs=a.max_epochs,
        pixels=not a.no_pixels,
        untrained=a.untrained,
        device=a.device,
        log=log,
    )
    print(table(result), end="")
    print(f"results   {a.out}/probe.json, {a.out}/table.md")
    return 0


def add_probe(sub: Any) -> None:
    p = parser_for(
        sub,
        "probe",
        "D as a feature extractor (paper §5): L2-SVM on D's features vs a supervised CNN and raw pixels",
        "dcgan probe runs/fmnist32 --dataset data/fashion-mnist/train --test data/fashion-mnist/test "
        "--labels-per-class 100,all --control --out runs/fmnist32/probe",
    )
    p.add_argument("run", help="run folder (D of its latest checkpoint), checkpoint folder or D.safetensors")
    p.add_argument(
        "--dataset",
        required=True,
        help="labelled training set (prepared); the validation split comes from it",
    )
    p.add_argument("--test", required=True, help="labelled test set (prepared)")
    p.add_argument(
        "--labels-per-class",
        default="100",
        help="label budgets, comma-separated: N per class (random draws) and/or 'all' (default 100)",
    )
    p.add_argument(
        "--draws", type=int, default=10, help="random draws per few-label budget (default 10; paper 100)"
    )
    p.add_argument("--C", default="1e-5,1e-4,1e-3,1e-2", help="SVM C grid (default 1e-5,1e-4,1e-3,1e-2)")
    p.add_argument("--val", type=int, default=10_000, help="validation split size (default 10000)")
    p.add_argument(
        "--control",
        nargs="?",
        const="same",
        metavar="BUDGETS",
        help="also train the supervised CNN with D's architecture (for every budget, or those listed)",
    )
    p.add_argument(
        "--trials", type=int, default=16, help="control: random hyperparameter trials (default 16; paper 64)"
    )
    p.add_argument(
        "--max-epochs", type=int, default=100, help="control: most epochs a trial may draw (default 100)"
    )
    p.add_argument("--no-pixels", action="store_true", help="skip the L2-SVM on raw pixels")
    p.add_argument(
        "--untrained",
        action="store_true",
        help="also probe D before training (same architecture and init): the floor for learned features",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the validation split, draws and control")
    device_arguments(p)
    p.add_argument(
        "--out", required=True, metavar="DIR", help="probe.json, table.md and the cached features go here"
    )
    p.set_defaults(fn=cmd_probe)
