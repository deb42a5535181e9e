"""Models named on the command line: a preset name, a checkpoint path or ``fakd:<name>`` (a shipped
model), each with a table name."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fakd.errors import FakdError
from fakd.models import PRESETS, build_model, list_presets
from fakd.zoo.checkpoint import load_model_from_checkpoint, resolve_checkpoint_path


def model_from_spec(spec: str, *, scale: int, device: torch.device | str | None = None,
                    any_scale: bool = False) -> tuple[str, nn.Module]:
    """(name, model) for a preset name (fresh weights, at ``scale``) or a checkpoint file / ``fakd:<name>``
    (its trained weights; of ``scale`` unless ``any_scale``)."""
    path = resolve_checkpoint_path(spec)
    if path.is_file():
        model = load_model_from_checkpoint(path, device, scale=None if any_scale else scale)
        return model.checkpoint_name, model
    if spec in PRESETS:
        model = build_model(spec, scale=scale).eval()
        return spec, model.to(torch.device("cpu") if device is None else torch.device(device))
    if path.suffix in (".pt", ".pth", ".safetensors") or path.parent != Path("."):
        raise FakdError(f"checkpoint {spec!r} not found")
    raise FakdError(f"{spec!r} is neither a model preset ({', '.join(list_presets())}) nor a checkpoint file")


def models_from_checkpoints(paths, *, scale: int, device: torch.device | str | None = None) -> list[tuple[str, nn.Module]]:
    """(name, model) for each checkpoint, named as recorded in it; clashing names get the run folder."""
    files = [resolve_checkpoint_path(path) for path in paths]
    models = [model_from_spec(str(file), scale=scale, device=device) if file.is_file()
              else _missing(path) for path, file in zip(paths, files)]
    names = [name for name, _ in models]
    unique = []
    for (name, model), path in zip(models, paths):
        if names.count(name) > 1:
            name = f"{name} [{_run_label(Path(path))}]"
        unique.append((name, model))
    return unique


def _missing(path) -> tuple[str, nn.Module]:
    raise FakdError(f"checkpoint {str(path)!r} not found")


def _run_label(path: Path) -> str:
    """``run/checkpoints/best.pt`` → ``run/best``; any other file → its stem."""
    if path.parent.name == "checkpoints":
        return f"{path.parent.parent.name}/{path.stem}"
    return path.stem
