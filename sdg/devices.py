"""Torch-side helpers shared by the model services: the device from SDG_DEVICE-style names, and
torch.compile's recompilation budget."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present, else CPU; anything else is passed to torch as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"SDG_DEVICE={name!r} but CUDA is not available")
    return device


def allow_recompiles(at_least: int) -> None:
    """Raises dynamo's per-frame recompilation limit (8 by default) to `at_least`. Past the limit
    dynamo silently runs new shapes eager, and both services compile code that meets several
    shapes: a decode step per batch bucket and cache length, a UNet block per channel width."""
    from torch import _dynamo

    name = "recompile_limit" if hasattr(_dynamo.config, "recompile_limit") else "cache_size_limit"
    setattr(_dynamo.config, name, max(getattr(_dynamo.config, name), at_least))


def to_device(values: list, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A small host list as a tensor on `device`, without making the host wait for the device.

    A copy from pageable memory to a GPU first waits for all the work queued on the stream, so
    `torch.tensor(values, device="cuda")` in a decode loop would block the CPU until the forward
    pass in flight finishes. A pinned copy is queued like a kernel instead (torch's pinned-memory
    cache keeps the buffer until the copy has run)."""
    tensor = torch.tensor(values, dtype=dtype)
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)
