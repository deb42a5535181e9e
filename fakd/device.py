"""Device choice: CUDA when available, else CPU; an explicit name overrides."""

import torch

from fakd.errors import FakdError


def resolve_device(name: str | None = None) -> torch.device:
    """Return the torch device for ``name`` ("auto"/None, "cpu", "cuda", "cuda:1", ...)."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise FakdError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FakdError(f"device {name!r} asked for, but this torch build sees no CUDA device")
    return device
