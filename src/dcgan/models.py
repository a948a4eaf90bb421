"""The DCGAN networks (PAPER.md §1–2): plain nn.Modules, sizes in, tensors out.

Guidelines from Section 3 of the paper, as built here:
- no pooling: strided convolutions in D, transposed (fractionally-strided) convolutions in G;
- no fully connected hidden layers: G's first layer is a matrix multiply of z reshaped to 4×4, D's last conv
  map is flattened into a single output unit;
- BatchNorm everywhere except G's output layer and D's input layer;
- G uses ReLU with Tanh on the output, D uses LeakyReLU(0.2); D returns logits (BCE-with-logits is safe
  under autocast, Sigmoid + BCELoss is not).
Following the original code, no layer carries a bias: BN's shift plays that role.

Both nets keep their layers in one flat `main` nn.Sequential, in the same order as pytorch/examples, so a
state dict saved by that script loads into the `examples64` preset unchanged.

The z prior lives here too: G is defined by the distribution it was trained on, and training, sampling and
every probe draw z from these functions. Image k of seed s is the same at any batch size: every seed has its
own generator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from dcgan.config import ModelConfig
from dcgan.device import Placement
from dcgan.errors import DcganError
from dcgan.frozen import frozen
from dcgan.threads import tuned

LEAK = 0.2
BN_MODES = ("running", "batch")


def _padding(kernel_size: int, stride: int) -> tuple[int, int]:
    """(padding, output_padding) that make a conv divide, and a transposed conv multiply, size by stride."""
    pad = (kernel_size - 1) // 2
    return pad, 2 * pad + stride - kernel_size


class Generator(nn.Module):
    """z (B, z_dim) → images (B, C, S, S) in [-1, 1].

    `precision` is how run_generator runs it, fp32 or bf16 (autocast): a loaded G is given the precision
    its command or API call asked for (artifacts.load_generator); a G in training samples in fp32."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.precision = "fp32"
        layers: list[nn.Module] = []
        if cfg.g_input == "linear":
            # z @ W → BN → ReLU → reshape; BN over all C·4·4 units, as the original code normalizes the product.
            layers += [
                nn.Linear(cfg.z_dim, cfg.g_base * 16, bias=False),
                nn.BatchNorm1d(cfg.g_base * 16),
                nn.ReLU(True),
                nn.Unflatten(1, (cfg.g_base, 4, 4)),
            ]
        else:
            # pytorch/examples: z viewed as (B, z_dim, 1, 1), a 4×4 transposed conv makes the 4×4 map.
            layers += [
                nn.ConvTranspose2d(cfg.z_dim, cfg.g_base, 4, 1, 0, bias=False),
                nn.BatchNorm2d(cfg.g_base),
            ]
            layers += [nn.ReLU(True)]
        c_in = cfg.g_base
        for i, (stride, c_out) in enumerate(cfg.g_layers):
            pad, out_pad = _padding(cfg.kernel_size, stride)
            layers.append(nn.ConvTranspose2d(c_in, c_out, cfg.kernel_size, stride, pad, out_pad, bias=False))
            if i < len(cfg.g_layers) - 1:
                layers += [nn.BatchNorm2d(c_out), nn.ReLU(True)]
            else:
                layers.append(nn.Tanh())  # the output layer: no BN (paper §3)
            c_in = c_out
        self.main = nn.Sequential(*layers)

    def hidden_layers(self) -> list[tuple[int, int, int]]:
        """G's hidden layers numbered from the output down, as the paper counts them ("second highest"): entry
        0 is layer 1, the last before the output. Each is (index in `main` of the module whose output is the layer's maps — its
        ReLU, or the reshape after it for a linear first layer —, channels, side of its maps at 1×1 z)."""
        out, side = [], 4
        channels = self.cfg.g_base
        relus = [i for i, m in enumerate(self.main) if isinstance(m, nn.ReLU)]
        for k, i in enumerate(relus):
            if k > 0:
                stride, channels = self.cfg.g_layers[k - 1]
                side *= stride
            elif isinstance(self.main[i + 1], nn.Unflatten):  # z @ W: its maps exist once reshaped
                i += 1
            out.append((i, channels, side))
        return out[::-1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim == 4 and z.shape[2:] != (1, 1):
            # a spatial z (B, z_dim, k, k): the convolutional G paints a (k+3)/4 times larger image
            if self.cfg.g_input != "convt":
                raise DcganError(
                    "a spatial z needs a generator whose first layer is a transposed convolution (g_input "
                    "convt, as examples64); this one projects z with a matrix multiply, which has no spatial extent"
                )
            return self.main(z)  # (B, C, S·(k+3)/4, S·(k+3)/4)
        z = z.flatten(1)  # (B, z_dim); pytorch/examples callers pass (B, z_dim, 1, 1)
        if self.cfg.g_input == "convt":
            z = z[:, :, None, None]  # (B, z_dim, 1, 1)
        return self.main(z)  # (B, C, S, S)


class Discriminator(nn.Module):
    """images (B, C, S, S) in [-1, 1] → logits (B,). `features()` exposes every conv layer."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in = cfg.channels
        for i, (stride, c_out) in enumerate(cfg.d_layers):
            pad, _ = _padding(cfg.kernel_size, stride)
            layers.append(nn.Conv2d(c_in, c_out, cfg.kernel_size, stride, pad, bias=False))
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))  # not on the input layer (paper §3)
            layers.append(nn.LeakyReLU(LEAK, inplace=True))
            c_in = c_out
        self.n_body = len(layers)  # main[:n_body] are the conv layers; the rest is the output unit
        if cfg.d_output == "linear":
            layers += [nn.Flatten(), nn.Linear(c_in * 16, 1, bias=False)]  # (B, C·4·4) → (B, 1)
        else:
            layers.append(nn.Conv2d(c_in, 1, 4, 1, 0, bias=False))  # (B, C, 4, 4) → (B, 1, 1, 1)
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()  # (B,) logits

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Post-activation output of every conv layer, input to output: [(B, C_i, H_i, W_i), …]."""
        out = []
        for module in self.main[: self.n_body]:
            x = module(x)
            if isinstance(module, nn.LeakyReLU):
                out.append(x)
        return out


def init_weights(module: nn.Module) -> None:
    """The paper's init: every weight N(0, 0.02); BN gain N(1, 0.02), BN shift 0. Use with `net.apply`."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(cfg: ModelConfig, seed: int | None = None) -> tuple[Generator, Discriminator]:
    """G and D for `cfg`, initialized as the paper says; `seed` makes the init reproducible."""
    with torch.random.fork_rng(enabled=seed is not None, devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        g, d = Generator(cfg), Discriminator(cfg)
        g.apply(init_weights)
        d.apply(init_weights)
    return g, d


# ---------------------------------------------------------------- the z prior, and G run on it


def sample_z(
    cfg: ModelConfig, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """n latent vectors (n, z_dim) from the config's prior: U(-1, 1) or N(0, 1)."""
    if cfg.z_dist == "uniform":
        return torch.rand(n, cfg.z_dim, generator=generator, device=device).mul_(2).sub_(1)
    return torch.randn(n, cfg.z_dim, generator=generator, device=device)


def z_for_seeds(cfg: ModelConfig, seeds: Iterable[int]) -> torch.Tensor:
    """(len(seeds), z_dim) on CPU; row k depends on seeds[k] alone."""
    return torch.cat([sample_z(cfg, 1, torch.Generator().manual_seed(int(s))) for s in seeds])


def z_for_seeds_spatial(cfg: ModelConfig, seeds: Iterable[int], k: int) -> torch.Tensor:
    """(len(seeds), z_dim, k, k): a k×k field of independent z per seed, for convolutional large images."""
    if k < 1:
        raise DcganError(f"--spatial must be at least 1, got {k}")
    fields = [sample_z(cfg, k * k, torch.Generator().manual_seed(int(s))) for s in seeds]  # (k·k, z_dim) each
    return torch.stack([f.T.reshape(cfg.z_dim, k, k) for f in fields])


@contextlib.contextmanager
def dropping(g: Generator, layer: int, channels: Iterable[int]) -> Iterator[None]:
    """Run G with the feature maps `channels` of hidden layer `layer` (1 = the one nearest the output; see
    hidden_layers) set to zero at every position — the paper's §6.3.1 removal of the filters that draw windows."""
    layers = g.hidden_layers()
    if not 1 <= layer <= len(layers):
        raise DcganError(
            f"G has hidden layers 1…{len(layers)} (1 is the one nearest the output), not {layer}"
        )
    index, width, _ = layers[layer - 1]
    drop = sorted({int(c) for c in channels})
    if drop and not (drop[0] >= 0 and drop[-1] < width):
        raise DcganError(f"layer {layer} of G has channels 0…{width - 1}; got {drop[0]}…{drop[-1]}")
    keep = torch.ones(width)
    keep[drop] = 0

    def zero(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
        return out * keep.to(out.device, out.dtype).view(1, -1, 1, 1)

    handle = g.main[index].register_forward_hook(zero)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def batch_stats(net: nn.Module) -> Iterator[None]:
    """Run BN layers on the batch's own statistics without touching their running averages."""
    saved = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}
    was_training = net.training
    net.train()
    try:
        yield
    finally:
        net.load_state_dict(saved, strict=False)
        net.train(was_training)


def _flat(z: torch.Tensor) -> bool:
    """Whether z is one vector per image ((B, z_dim) or (B, z_dim, 1, 1)), not a spatial z."""
    return z.ndim == 2 or (z.ndim == 4 and z.shape[2:] == (1, 1))


def check_batch_passes(g: Generator, n: int, batch: int) -> None:
    """BN on batch statistics normalizes each forward pass by its own. A G whose first layer is a matrix
    product (BatchNorm1d over its C·4·4 units) has one value per unit in a pass of one image, which has no
    statistics: n images in passes of `batch` must then leave no pass of one. (BatchNorm2d layers average
    over positions too, so one image is enough for them.)"""
    if not any(isinstance(m, nn.BatchNorm1d) for m in g.modules()):
        return
    if batch == 1 or n % batch == 1:  # (n < batch: one pass of n)
        raise DcganError(
            f"--bn batch normalizes each forward pass by its own statistics, which takes at least 2 images, "
            f"but {n} images in passes of {batch} leave one alone; change --batch or the seeds, "
            f"or use --bn running"
        )


@torch.no_grad()
def run_generator(g: Generator, z: torch.Tensor, bn: str = "running", batch: int = 256) -> torch.Tensor:
    """z (N, z_dim) → images (N, C, H, W) float32 in [-1, 1] on CPU, `batch` at a time.

    bn="running": eval-mode BatchNorm, so an image depends on its own z alone; bn="batch": each call's own
    statistics, as the original code and pytorch/examples generate (the running averages stay untouched).
    G runs in its `precision` (bf16: ~2× faster on CPUs that run it natively, 99% of pixels within one
    level of fp32's, docs/PERFORMANCE.md); in bf16 on CPU with running statistics it runs frozen (BN folded
    into the weights, frozen.py). On CPU the batches feed a thread Tuner."""
    if bn not in BN_MODES:
        raise DcganError(f"--bn must be one of {', '.join(BN_MODES)}, got {bn!r}")
    if bn == "batch":
        check_batch_passes(g, len(z), batch)
    device = next(g.parameters()).device
    place = Placement(device, g.precision)
    out = []
    ctx = batch_stats(g) if bn == "batch" else contextlib.nullcontext()
    was_training = g.training
    with ctx, tuned(device=device) as threads, place.autocast():
        if bn == "running":
            g.eval()
        run = g
        if (
            bn == "running"
            and device.type == "cpu"
            and place.autocast_dtype == torch.bfloat16
            and _flat(z)
            and type(g).forward is Generator.forward  # a subclass's own forward runs as it is
        ):
            run = frozen(g) or g  # BN folded in, the output layer as a sub-pixel convolution (frozen.py)
        for i in range(0, len(z), batch):
            zb = z[i : i + batch]
            with threads.item(len(zb)):
                out.append(run(zb.to(device)).float().cpu())
    g.train(was_training)
    return torch.cat(out)
