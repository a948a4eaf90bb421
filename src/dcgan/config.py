"""Typed, validated configuration and the paper's presets (PAPER.md §2).

A network is described layer by layer, the way the paper's figures and the original code describe it:
G projects z to a 4×4 map of `g_base` channels, then runs `g_layers` — (stride, out_channels) per transposed
convolution, the last one producing the image. D runs `d_layers` — (stride, out_channels) per convolution —
down to a 4×4 map, then one output unit. Everything else (padding, BN placement) follows from these.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dcgan.errors import DcganError

Layers = tuple[tuple[int, int], ...]

Z_DISTS = ("uniform", "normal")
G_INPUTS = ("linear", "convt")
D_OUTPUTS = ("linear", "conv")


def _as_layers(value: Any, name: str) -> Layers:
    try:
        layers = tuple((int(s), int(c)) for s, c in value)
    except (TypeError, ValueError):
        raise DcganError(f"{name} must be a list of (stride, channels) pairs, got {value!r}") from None
    if not layers:
        raise DcganError(f"{name} must hold at least one (stride, channels) layer, got none")
    for stride, channels in layers:
        if stride not in (1, 2) or channels < 1:
            raise DcganError(
                f"{name}: each layer needs stride 1 or 2 and at least 1 channel, got ({stride}, {channels})"
            )
    return layers


def _known_fields(cls: type, d: dict[str, Any], what: str) -> dict[str, Any]:
    """`d`, refusing keys that are not fields of the dataclass `cls` (a typo must not pass silently)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise DcganError(f"unknown {what} config keys {unknown}; allowed: {sorted(known)}")
    return d


def _is_int(value: Any) -> bool:
    """An int proper: True and 2.0 are not counts of anything."""
    return isinstance(value, int) and not isinstance(value, bool)


def _stride2_count(image_size: int) -> int:
    """Stride-2 layers between a 4×4 map and an image_size² image."""
    return (image_size // 4).bit_length() - 1


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of G and D. Validated at construction; saved as JSON beside every checkpoint."""

    image_size: int = 64
    channels: int = 3
    z_dim: int = 100
    z_dist: str = "uniform"  # "uniform": U(-1, 1) as the paper; "normal": N(0, 1) as pytorch/examples
    g_base: int = 1024  # channels of G's first 4×4 map
    g_layers: Layers = ((2, 512), (2, 256), (2, 128), (2, 3))
    d_layers: Layers = ((2, 128), (2, 256), (2, 512), (2, 1024))
    kernel_size: int = 5
    g_input: str = "linear"  # "linear": z @ W then reshape (paper); "convt": 4×4 transposed conv of a 1×1 z
    # "linear": flatten → 1 unit (paper); "conv": a 4×4 conv to 1×1 (pytorch/examples)
    d_output: str = "linear"

    def __post_init__(self) -> None:
        size = self.image_size
        if not isinstance(size, int) or size < 16 or size > 256 or size & (size - 1):
            raise DcganError(f"image_size must be a power of two from 16 to 256, got {size!r}")
        if not _is_int(self.channels) or self.channels not in (1, 3):
            raise DcganError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        if not isinstance(self.z_dim, int) or self.z_dim < 1:
            raise DcganError(f"z_dim must be a positive integer, got {self.z_dim!r}")
        if self.z_dist not in Z_DISTS:
            raise DcganError(f"z_dist must be one of {', '.join(Z_DISTS)}, got {self.z_dist!r}")
        if self.g_input not in G_INPUTS:
            raise DcganError(f"g_input must be one of {', '.join(G_INPUTS)}, got {self.g_input!r}")
        if self.d_output not in D_OUTPUTS:
            raise DcganError(f"d_output must be one of {', '.join(D_OUTPUTS)}, got {self.d_output!r}")
        if not isinstance(self.g_base, int) or self.g_base < 1:
            raise DcganError(f"g_base must be a positive integer, got {self.g_base!r}")
        if not isinstance(self.kernel_size, int) or not 2 <= self.kernel_size <= 7:
            raise DcganError(f"kernel_size must be an integer from 2 to 7, got {self.kernel_size!r}")
        # Lists from JSON become tuples so the config stays hashable and compares equal after a round trip.
        object.__setattr__(self, "g_layers", _as_layers(self.g_layers, "g_layers"))
        object.__setattr__(self, "d_layers", _as_layers(self.d_layers, "d_layers"))
        self._check_geometry()

    def _check_geometry(self) -> None:
        need = _stride2_count(self.image_size)
        if sum(s == 2 for s, _ in self.g_layers) != need:
            raise DcganError(
                f"g_layers must upsample 4×4 to the {self.image_size}×{self.image_size} image: "
                f"expected {need} stride-2 layers, got {sum(s == 2 for s, _ in self.g_layers)}"
            )
        if sum(s == 2 for s, _ in self.d_layers) != need:
            raise DcganError(
                f"d_layers must reduce the {self.image_size}×{self.image_size} image to 4×4: "
                f"expected {need} stride-2 layers, got {sum(s == 2 for s, _ in self.d_layers)}"
            )
        if self.g_layers[-1][1] != self.channels:
            raise DcganError(
                f"G's last layer must output the image's {self.channels} channel(s), got {self.g_layers[-1][1]}"
            )
        has_stride1 = any(s == 1 for s, _ in self.g_layers + self.d_layers)
        if has_stride1 and self.kernel_size % 2 == 0:
            raise DcganError(
                f"stride-1 layers keep the size only with an odd kernel, got kernel_size {self.kernel_size}"
            )

    @property
    def d_feature_channels(self) -> int:
        """Sum of D's conv-layer widths: the feature count per spatial cell of D.features()."""
        return sum(c for _, c in self.d_layers)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["g_layers"] = [list(x) for x in self.g_layers]
        d["d_layers"] = [list(x) for x in self.d_layers]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(**_known_fields(cls, d, "model"))

    @classmethod
    def pyramid(
        cls, image_size: int, channels: int = 3, width: int = 64, max_width: int = 1024, **kw: Any
    ) -> ModelConfig:
        """The paper's doubling schedule at any size: D widths width, 2·width, …; G the mirror image."""
        if image_size < 16 or image_size & (image_size - 1):
            raise DcganError(f"image_size must be a power of two from 16 to 256, got {image_size!r}")
        n = _stride2_count(image_size)
        d_widths = [min(width * 2**i, max_width) for i in range(n)]
        g_widths = d_widths[::-1]  # G's 4×4 map is as wide as D's last layer
        g_layers = (*((2, c) for c in g_widths[1:]), (2, channels))
        return cls(
            image_size=image_size,
            channels=channels,
            g_base=g_widths[0],
            g_layers=g_layers,
            d_layers=tuple((2, c) for c in d_widths),
            **kw,
        )


# The presets. Each is checked against PAPER.md layer by layer in tests/test_config.py.
PRESETS: dict[str, ModelConfig] = {
    # Figure 1 / the original faces code: 5×5 kernels, 1024-512-256-128, z 100-d uniform.
    "paper64": ModelConfig(),
    # The released ImageNet-1k 32² model: 3×3 kernels, stride-1 layers between the stride-2 ones, z 256-d.
    "imagenet32": ModelConfig(
        image_size=32,
        z_dim=256,
        g_base=512,
        g_layers=((2, 512), (1, 256), (2, 256), (1, 128), (2, 128), (1, 3)),
        d_layers=((1, 128), (2, 128), (1, 256), (2, 256), (1, 512), (2, 512)),
        kernel_size=3,
    ),
    # The released SVHN model: z 100-d Gaussian, 5×5, G 256→128→64→3, D 64→128→256 → 4096 → 1.
    "svhn32": ModelConfig(
        image_size=32,
        z_dist="normal",
        g_base=256,
        g_layers=((2, 128), (2, 64), (2, 3)),
        d_layers=((2, 64), (2, 128), (2, 256)),
    ),
    # pytorch/examples dcgan (ngf = ndf = 64): 4×4 kernels, z ~ N(0, 1) through a 1×1→4×4 transposed conv,
    # D ending in a 4×4 conv. Module order matches theirs, so their netG/netD state dicts load unchanged.
    "examples64": ModelConfig(
        z_dist="normal",
        g_base=512,
        g_layers=((2, 256), (2, 128), (2, 64), (2, 3)),
        d_layers=((2, 64), (2, 128), (2, 256), (2, 512)),
        kernel_size=4,
        g_input="convt",
        d_output="conv",
    ),
    # Small and fast for the demo on 2 CPU cores: Fashion-MNIST padded to 32², grey.
    "fmnist32": ModelConfig(
        image_size=32,
        channels=1,
        z_dist="normal",
        g_base=256,
        g_layers=((2, 128), (2, 64), (2, 1)),
        d_layers=((2, 64), (2, 128), (2, 256)),
        kernel_size=4,
    ),
}


def get_preset(name: str) -> ModelConfig:
    """The preset called `name`, or a DcganError listing the ones that exist.

    >>> dcgan.get_preset("paper64").image_size
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise DcganError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


SCHEDULES = ("both", "alternate")
DEFAULT_EPOCHS = 5  # a run's length when neither epochs nor kimg is given
# TrainConfig fields that count something: integers only
COUNTS = (
    "batch",
    "seed",
    "sample_every",
    "ckpt_every",
    "log_every",
    "keep",
    "eval_every",
    "eval_num",
    "eval_patience",
    "threads",
)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
ON_NAN = ("stop", "rollback")
BN_MODES = ("global", "rank")


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (PAPER.md §3) and the run's bookkeeping. Saved in config.json and every checkpoint."""

    preset: str = "paper64"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    batch: int = 128
    lr: float = 2e-4  # the paper: 0.001 was too high
    beta1: float = 0.5  # the paper: 0.9 oscillated
    beta2: float = 0.999
    # "both": D then G on every minibatch (pytorch/examples); "alternate": each minibatch updates D or G
    # (the original Theano code).
    schedule: str = "both"
    # real and fake through D in one call (faster on some devices; changes BN statistics)
    fuse_d: bool = False
    # on CUDA, torch.compile G's and D's training passes (fused BatchNorm + activations); off: plain kernels
    compile: bool = True
    epochs: float | None = None  # length: epochs or kimg (thousands of images shown); default DEFAULT_EPOCHS
    kimg: float | None = None
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    threads: int = 0  # CPU intra-op threads: 0 picks the fastest count as it goes (dcgan/threads.py)
    # with several processes (torchrun): BatchNorm statistics over the global batch (the paper's algorithm at
    # any world size) or over each process's share of it (cheaper; see training/distributed.py)
    bn: str = "global"
    sample_every: int = 500  # steps between sample grids from the fixed z
    ckpt_every: int = 1000  # steps between checkpoints
    log_every: int = 50  # steps between lines of stats.jsonl
    keep: int = 3  # checkpoints kept
    on_nan: str = "stop"
    eval_every: int = 0  # steps between FID evaluations (0: none)
    eval_num: int = 5000  # generated (and real) images per evaluation
    extractor: str | None = None  # feature space of the evaluation: a shipped name or a .safetensors path
    eval_patience: int = 3  # warn when FID rose this many evaluations in a row

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        for name in COUNTS:
            if not _is_int(getattr(self, name)):
                raise DcganError(f"{name} must be an integer, got {getattr(self, name)!r}")
        checks = [
            (self.batch >= 2, f"batch must be at least 2 (BatchNorm needs a batch), got {self.batch}"),
            (self.lr > 0, f"lr must be positive, got {self.lr}"),
            (
                0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
                f"beta1 and beta2 must be in [0, 1), got {self.beta1}, {self.beta2}",
            ),
            (
                self.schedule in SCHEDULES,
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}",
            ),
            (
                self.precision in PRECISIONS,
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
            ),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {self.device!r}"),
            (self.threads >= 0, f"threads must be 0 (auto) or a number of threads, got {self.threads}"),
            (self.bn in BN_MODES, f"bn must be one of {', '.join(BN_MODES)}, got {self.bn!r}"),
            (self.on_nan in ON_NAN, f"on_nan must be one of {', '.join(ON_NAN)}, got {self.on_nan!r}"),
            (self.epochs is None or self.kimg is None, "give --epochs or --kimg, not both"),
            (self.epochs is None or self.epochs > 0, f"epochs must be positive, got {self.epochs}"),
            (self.kimg is None or self.kimg > 0, f"kimg must be positive, got {self.kimg}"),
            (
                min(self.sample_every, self.ckpt_every, self.log_every, self.keep) >= 1,
                "sample_every, ckpt_every, log_every and keep must be at least 1",
            ),
            (self.eval_every >= 0, f"eval_every must be 0 (off) or a number of steps, got {self.eval_every}"),
            (self.eval_num >= 10, f"eval_num must be at least 10 samples, got {self.eval_num}"),
            (self.eval_patience >= 1, f"eval_patience must be at least 1, got {self.eval_patience}"),
        ]
        for ok, message in checks:
            if not ok:
                raise DcganError(message)

    def total_images(self, dataset_size: int) -> int:
        """Images to show in the whole run."""
        if self.kimg is not None:
            return round(self.kimg * 1000)
        return round((self.epochs if self.epochs is not None else DEFAULT_EPOCHS) * dataset_size)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return cls(**_known_fields(cls, d, "training"))


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Lines 'key: a → b' for every leaf that differs between two config dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} → {vb!r}")
    return out


# Recipe differences of the released models (PAPER.md §2): SVHN trained with lr 5e-4 at batch 64.
PRESET_RECIPES: dict[str, dict[str, Any]] = {"svhn32": {"lr": 5e-4, "batch": 64}}


def train_config(preset: str, **overrides: Any) -> TrainConfig:
    """The preset's network and recipe, with `overrides` (None values are ignored) applied on top.

    >>> cfg = dcgan.train_config("fmnist32", epochs=5, batch=64); cfg.model.ngf
    """
    fields = {"preset": preset, "model": get_preset(preset), **PRESET_RECIPES.get(preset, {})}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**fields)
