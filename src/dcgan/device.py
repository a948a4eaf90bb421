"""Device and precision, resolved once from the user's `auto|cpu|cuda|mps` and `auto|fp32|bf16|fp16`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from dcgan.errors import DcganError

# each precision's autocast dtype (fp32: none, autocast off)
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Placement:
    device: torch.device
    precision: str  # fp32 | bf16 | fp16

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return AUTOCAST[self.precision]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision around forward passes; a no-op in fp32."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else self.device.type
        return f"{name}, {self.precision}"


def cpu_has_fast_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve(device: str = "auto", precision: str = "auto") -> Placement:
    """auto device: CUDA, else MPS, else CPU. auto precision: bf16 where the hardware runs it natively."""
    if device == "auto":
        device = (
            "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
        )
    if device == "cuda" and not torch.cuda.is_available():
        raise DcganError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if device == "mps" and not torch.backends.mps.is_available():
        raise DcganError("--device mps was asked for but MPS is not available; use --device cpu or auto")
    if precision != "auto" and precision not in AUTOCAST:
        raise DcganError(f"--precision must be auto, {', '.join(AUTOCAST)}, got {precision!r}")
    dev = torch.device(device)
    if precision == "auto":
        if dev.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif dev.type == "cpu":
            precision = "bf16" if cpu_has_fast_bf16() else "fp32"
        else:
            precision = "fp32"
    if precision == "fp16" and dev.type == "cpu":
        raise DcganError("--precision fp16 needs a GPU; on CPU use bf16 or fp32")
    return Placement(dev, precision)
