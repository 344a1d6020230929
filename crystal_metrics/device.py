"""The torch device a model runs on, checked before any work."""
from __future__ import annotations

from .errors import CrystalMetricsError


class DeviceError(CrystalMetricsError):
    """The requested torch device does not exist or is not usable with this torch."""


def resolve_device(device=None):
    """`device` (a name such as "cpu", "cuda", "cuda:1", or a `torch.device`; None: CUDA when
    available, else the CPU) as a usable `torch.device`; `DeviceError` in one sentence when it is
    not (unknown name, a torch built without CUDA, no CUDA device visible, no such index)."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"unknown torch device {device!r}: use cpu or cuda (cuda:N for the "
                          "N-th GPU)") from None
    if resolved.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise DeviceError(f"device {device!r}: this torch ({torch.__version__}) is built "
                              "without CUDA; use cpu, or install a CUDA build of torch")
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r}: no CUDA GPU is visible to torch "
                              f"({torch.__version__}); use cpu")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise DeviceError(f"device {device!r}: there are only {count} CUDA GPU(s), "
                              f"cuda:0 to cuda:{count - 1}")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {device!r}: Apple's MPS is not available here; use cpu")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {device!r}: only cpu, cuda and mps are supported")
    return resolved
