"""Evaluation during training (`--eval-every N`): FID and sample diversity of a fixed set of seeds every N
steps, a record in stats.jsonl, RUN/best.safetensors (the generator with the lowest FID so far, described in
RUN/best.json), and warnings when training looks like it is collapsing — the paper itself saw collapse when
models were trained longer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dcgan.artifacts import read_best, save_best
from dcgan.config import TrainConfig
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError
from dcgan.metrics.evaluate import real_features, shared_generated_features
from dcgan.metrics.extractors import SHIPPED, load_extractor
from dcgan.metrics.fid import diversity, fid_from_stats, mean_cov
from dcgan.metrics.interface import FeatureExtractor
from dcgan.training import distributed
from dcgan.training.stats import STATS_FILE, is_number, read_stats
from dcgan.training.trainer import Trainer

DIVERSITY_FLOOR = 0.5  # warn when samples are less than half as spread out as real images


def collapse_warnings(
    fids: list[float], spreads: list[float], real_spread: float, patience: int
) -> list[str]:
    """Warnings for the histories of FID and of sample diversity (oldest first, the newest last).

    Diversity is flagged only while it is *falling* under DIVERSITY_FLOOR × the real images': early in
    training samples are alike and grow apart, which is not collapse."""
    out = []
    recent = fids[-(patience + 1) :]
    if len(recent) == patience + 1 and all(a < b for a, b in itertools.pairwise(recent)):
        out.append(
            f"FID rose {patience} evaluation{'s' if patience > 1 else ''} in a row "
            f"({' → '.join(f'{v:.2f}' for v in recent)}): training may be collapsing; "
            "RUN/best.safetensors keeps the best generator so far"
        )
    if len(spreads) >= 2 and spreads[-1] < spreads[-2] and spreads[-1] < DIVERSITY_FLOOR * real_spread:
        out.append(
            f"sample diversity fell to {spreads[-1]:.3f} (from {spreads[-2]:.3f}), under {DIVERSITY_FLOOR:.0%} of "
            f"the real images' {real_spread:.3f}: G may be collapsing onto a few modes"
        )
    return out


def default_extractor(image_size: int, channels: int, device: str | torch.device = "cpu") -> FeatureExtractor:
    """The shipped extractor (loaded) that fits these images, or a clear error naming what to do."""
    for name in SHIPPED:
        ex = load_extractor(name, device)
        if (ex.cfg.image_size, ex.cfg.channels) == (image_size, channels):
            return ex
    raise DcganError(
        f"--eval-every needs a feature extractor for {image_size}² × {channels} images and none is shipped; "
        "train one with `dcgan extractor train DATASET --test TEST --name NAME --out ex.safetensors` "
        "and pass --extractor ex.safetensors"
    )


class PeriodicEval:
    """Evaluates G every cfg.eval_every steps against the training images (training.loop.Evaluator).
    `functools.partial(PeriodicEval, cfg)` is the loop's `make_evaluator`."""

    def __init__(
        self,
        cfg: TrainConfig,
        dataset: PreparedDataset,
        run: Path,
        device: str | torch.device,
        log: Callable[[str], None],
    ) -> None:
        self.cfg, self.run, self.log = cfg, run, log
        m = cfg.model
        if cfg.extractor:
            self.ex = load_extractor(cfg.extractor, device)
        else:  # loading each shipped one to read its input size: the match is the one to use
            self.ex = default_extractor(m.image_size, m.channels, device)
        self.ex.check_images(m.image_size, m.channels, "the model")
        self.key = f"fid[{self.ex.name}]"
        if not distributed.is_main():  # the other ranks only generate their share of the seeds
            return
        real, _, _ = real_features(dataset, self.ex, cfg.eval_num, log=log)
        self.real_stats = mean_cov(real)
        self.real_diversity = diversity(real)
        self.best = read_best(run)
        if self.best is not None and not (
            is_number(self.best.get(self.key)) and is_number(self.best.get("step"))
        ):
            self.best = None  # measured with another extractor (not comparable), or damaged
        # earlier evaluations of this run (stats.jsonl was truncated to the resumed checkpoint), then each new one
        spread_key = f"diversity[{self.ex.name}]"
        self.history = [
            r
            for r in read_stats(run / STATS_FILE)
            if is_number(r.get(self.key)) and is_number(r.get(spread_key))
        ]

    def __call__(self, trainer: Trainer) -> dict[str, Any] | None:
        """Evaluate now; returns the stats.jsonl record (with any warnings). With several processes every
        rank generates its share of the seeds and rank 0 scores them all (the others return None)."""
        distributed.broadcast_buffers(trainer.g)  # --bn rank: rank 0's running averages, the saved ones
        generated = shared_generated_features(trainer.g, self.ex, self.cfg.eval_num, seed=0)
        if generated is None:  # not rank 0: its share is with rank 0
            return None
        fake = generated[0]
        value = fid_from_stats(*self.real_stats, *mean_cov(fake))
        spread = diversity(fake)
        rec: dict[str, Any] = {
            "step": trainer.step,
            "kimg": trainer.images_seen / 1000,
            "images_seen": trainer.images_seen,
            self.key: value,
            f"diversity[{self.ex.name}]": spread,
            f"diversity_real[{self.ex.name}]": self.real_diversity,
            "eval_samples": self.cfg.eval_num,
        }
        if self.best is None or value < self.best[self.key] or self.best.get("step", 0) > trainer.step:
            self.best = {"step": trainer.step, "kimg": rec["kimg"], self.key: value}
            save_best(trainer.g, self.run, self.cfg.model, self.best)
            rec["best"] = True
        past = [r for r in self.history if r["step"] < trainer.step]  # a rollback abandons later ones
        fids = [r[self.key] for r in past] + [value]
        spreads = [r[f"diversity[{self.ex.name}]"] for r in past] + [spread]
        warnings = collapse_warnings(fids, spreads, self.real_diversity, self.cfg.eval_patience)
        if warnings:
            rec["warnings"] = warnings
        self.history = [*past, rec]
        return rec
