"""The paper's face arithmetic (§6.3.2, Fig. 7) scored with ground truth instead of shown.

The paper averaged z over 3 exemplars per concept ("smiling woman", "neutral woman", "neutral man"), took
Y = mean(A) − mean(B) + mean(C), and showed that G(Y) was a smiling man. On a dataset whose attributes are
known (`dcgan data faces`), we can count how often that happens:

1. A classifier learns the recipe's yes/no attributes from the dataset's attributes.npy (one softmax over
   their 2^k combinations; D's conv body with a linear head, as the §5 control) and is checked on held-out
   images.
2. G draws a pool of samples; the classifier names each one's attributes, and samples it is confident about
   become the exemplars of each concept.
3. Each trial picks `k` exemplars per concept at random and classifies G(Y) for the latent arithmetic,
   with k = 3 (the paper), with k = 1 (no averaging), and the same arithmetic on the pixels. A trial
   succeeds when the result has every attribute the recipe implies (A − B + C, attribute by attribute).
   The prior — how often a random sample already has the target attributes — says what chance would give.

A recipe is written `smiling=yes,long_hair=yes - smiling=no,long_hair=yes + smiling=no,long_hair=no`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dcgan.config import ModelConfig
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError
from dcgan.images import to_uint8
from dcgan.models import Generator, run_generator, z_for_seeds
from dcgan.probes.supervised import Hyper, predict, train_classifier

# The paper's two figures, in the faces dataset's attributes ("woman"/"man" have no column: long hair stands
# in for the former, short hair for the latter)
RECIPES = {
    "smile": "smiling=yes,long_hair=yes - smiling=no,long_hair=yes + smiling=no,long_hair=no",
    "glasses": "glasses=yes,long_hair=no - glasses=no,long_hair=no + glasses=no,long_hair=yes",
}
CONFIDENT = 0.9  # a sample is an exemplar of a concept when the classifier gives it at least this


@dataclass(frozen=True)
class Recipe:
    """A − B + C over yes/no attributes; `target` is what the result should have."""

    text: str
    names: tuple[str, ...]
    a: dict[str, int]
    b: dict[str, int]
    c: dict[str, int]
    target: dict[str, int]


def parse_recipe(text: str) -> Recipe:
    text = RECIPES.get(text, text)
    m = re.fullmatch(r"\s*([^-+]+?)\s*-\s*([^-+]+?)\s*\+\s*([^-+]+?)\s*", text)
    if not m:
        raise DcganError(
            f"a recipe is 'A - B + C', each a list like smiling=yes,long_hair=no (or one of "
            f"{', '.join(RECIPES)}); got {text!r}"
        )
    concepts = []
    for part in m.groups():
        concept = {}
        for item in part.split(","):
            name, _, value = item.strip().partition("=")
            if value not in ("yes", "no") or not name:
                raise DcganError(f"{item.strip()!r} in the recipe: expected NAME=yes or NAME=no")
            concept[name] = 1 if value == "yes" else 0
        concepts.append(concept)
    a, b, c = concepts
    names = tuple(sorted(set(a) | set(b) | set(c)))
    missing = [n for n in names if not (n in a and n in b and n in c)]
    if missing:
        raise DcganError(f"each concept must give every attribute; {', '.join(missing)} is missing in one")
    target = {n: a[n] - b[n] + c[n] for n in names}
    odd = [n for n, v in target.items() if v not in (0, 1)]
    if odd:
        raise DcganError(f"A − B + C leaves {', '.join(odd)} outside yes/no; change the recipe")
    return Recipe(text, names, a, b, c, target)


def binary_columns(ds: PreparedDataset, names: tuple[str, ...]) -> np.ndarray:
    """(N, len(names)) 0/1 of the dataset's yes/no attribute columns `names`."""
    about = ds.manifest.get("attributes")
    columns = [a.get("name") for a in about] if isinstance(about, list) else []
    attrs = ds.array("attributes")
    out = []
    for n in names:
        if n not in columns:
            raise DcganError(
                f"{str(ds.path)!r} has no attribute {n!r}; it has {', '.join(map(str, columns))}"
            )
        values = about[columns.index(n)].get("values")
        if values != ["no", "yes"]:
            raise DcganError(f"attribute {n!r} is not yes/no (its values: {values}); choose a yes/no one")
        out.append(attrs[:, columns.index(n)])
    return np.stack(out, 1).astype(np.int64)


def joint(bits: np.ndarray) -> np.ndarray:
    """Rows of 0/1 → one class per combination: Σ bit_k · 2^k."""
    return (bits << np.arange(bits.shape[1])).sum(1)


@dataclass
class AttributeClassifier:
    net: torch.nn.Module
    names: tuple[str, ...]
    accuracy: dict[str, float]

    @torch.no_grad()
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 2^k) probabilities of each combination of the k attributes, for uint8 (N, H, W, C)."""
        from dcgan.data.dataset import unit_batches

        self.net.eval()
        out = [torch.softmax(self.net(x), 1).numpy() for x in unit_batches(images, 512)]
        return np.concatenate(out)


def train_attribute_classifier(
    ds: PreparedDataset,
    names: tuple[str, ...],
    cfg: ModelConfig,
    images: int = 20_000,
    heldout: int = 2_000,
    epochs: int = 3,
    seed: int = 0,
) -> AttributeClassifier:
    """Learn the 2^k combinations of the yes/no attributes `names` on a random subset of `ds`; the accuracy
    of each attribute on `heldout` other images is kept."""
    if seed < 0:
        raise DcganError(f"--seed must be 0 or more, got {seed}")
    bits = binary_columns(ds, names)
    if len(ds) < 4:
        raise DcganError(f"the attribute classifier needs at least 4 images, got {len(ds)}")
    order = np.random.default_rng(seed).permutation(len(ds))
    held = np.sort(order[: min(heldout, len(ds) // 4)])
    train = np.sort(order[len(held) : len(held) + images])
    hyper = Hyper(lr=1e-3, weight_decay=1e-4, dropout=0.2, epochs=epochs, batch=64, beta1=0.9)
    # D's layout at half its width: the attributes are plain to see, and a quarter of the work
    body = dataclasses.replace(cfg, d_layers=tuple((s, max(8, c // 2)) for s, c in cfg.d_layers))
    labels = joint(bits[train])
    if (np.bincount(labels, minlength=2 ** len(names)) == 0).any():
        raise DcganError(
            f"some combination of {', '.join(names)} never occurs in the {len(train):,} training images; "
            "use a larger dataset or other attributes"
        )
    net = train_classifier(body, np.asarray(ds.images[train]), labels, hyper, seed)
    guess = predict(net, np.asarray(ds.images[held]))
    guess_bits = (guess[:, None] >> np.arange(len(names))) & 1
    accuracy = {n: float((guess_bits[:, k] == bits[held, k]).mean()) for k, n in enumerate(names)}
    return AttributeClassifier(net, names, accuracy)


def _matches(probs: np.ndarray, names: tuple[str, ...], want: dict[str, int]) -> np.ndarray:
    """P(the attributes in `want` have those values) per row, summed over the other attributes."""
    combos = np.arange(probs.shape[1])
    ok = np.ones(len(combos), bool)
    for k, n in enumerate(names):
        if n in want:
            ok &= ((combos >> k) & 1) == want[n]
    return probs[:, ok].sum(1)


def score_arithmetic(
    g: Generator,
    clf: AttributeClassifier,
    recipe: Recipe,
    pool: int = 4_000,
    trials: int = 200,
    seed: int = 0,
    confident: float = CONFIDENT,
) -> tuple[dict[str, Any], np.ndarray]:
    """Success rates of the recipe (latent k=3, latent k=1, pixels k=3, prior) and a figure of the first
    trials: each row A₁…A₃ | B₁…B₃ | C₁…C₃ | latent result | pixel result. A sample is an exemplar of a
    concept when the classifier gives the concept at least `confident`."""
    if trials < 1 or pool < 3:
        raise DcganError(f"--trials must be at least 1 and --pool at least 3, got {trials} and {pool}")
    z = z_for_seeds(g.cfg, range(pool))
    x = run_generator(g, z)
    probs = clf.probabilities(to_uint8(x))
    exemplars = {}
    for key, concept in (("A", recipe.a), ("B", recipe.b), ("C", recipe.c)):
        exemplars[key] = np.flatnonzero(_matches(probs, clf.names, concept) >= confident)
        if len(exemplars[key]) < 3:
            raise DcganError(
                f"only {len(exemplars[key])} of {pool:,} samples are confidently {concept}: too few exemplars; "
                "train G longer or use a larger --pool"
            )
    rng = np.random.default_rng(seed)
    results: dict[str, list[np.ndarray]] = {"latent3": [], "latent1": [], "pixels3": []}
    rows = []
    for t in range(trials):
        pick = {key: rng.choice(idx, size=3, replace=False) for key, idx in exemplars.items()}
        y3 = z[pick["A"]].mean(0) - z[pick["B"]].mean(0) + z[pick["C"]].mean(0)
        y1 = z[pick["A"][0]] - z[pick["B"][0]] + z[pick["C"][0]]
        pixels = (x[pick["A"]].mean(0) - x[pick["B"]].mean(0) + x[pick["C"]].mean(0)).clamp(-1, 1)
        out = run_generator(g, torch.stack([y3, y1]))
        results["latent3"].append(out[0])
        results["latent1"].append(out[1])
        results["pixels3"].append(pixels)
        if t < 8:
            rows.append(torch.cat([x[pick["A"]], x[pick["B"]], x[pick["C"]], out[:1], pixels[None]]))
    summary: dict[str, Any] = {
        "recipe": recipe.text,
        "target": {n: "yes" if v else "no" for n, v in recipe.target.items()},
        "pool": pool,
        "trials": trials,
        "confident": confident,
        "exemplars": {key: len(idx) for key, idx in exemplars.items()},
        "classifier_accuracy": clf.accuracy,
        "prior": float((_matches(probs, clf.names, recipe.target) >= 0.5).mean()),
    }
    for key, images in results.items():
        p = clf.probabilities(to_uint8(torch.stack(images)))
        summary[key] = float((_matches(p, clf.names, recipe.target) >= 0.5).mean())
    figure = to_uint8(torch.cat(rows)) if rows else np.zeros((0, 1, 1, 3), np.uint8)
    return summary, figure
