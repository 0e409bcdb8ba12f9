"""Picks the torch device and dtype from SDG_DEVICE-style names."""

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
