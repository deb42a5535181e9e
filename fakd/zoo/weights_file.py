"""Reading a model file of any kind fakd takes: a fakd checkpoint, a plain state dict (.pt/.pth), a BasicSR
checkpoint (``params_ema``, else ``params``) or a .safetensors file — as tensors, never pickled objects.

PyTorch files are read with ``torch.load(weights_only=True)``: a pickle holding anything but tensors,
numbers, strings and containers (a whole pickled model, custom classes) is refused, not executed.
DataParallel's ``module.`` prefix is dropped.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fakd.errors import FakdError

SAFETENSORS_SUFFIX = ".safetensors"
FAKD_FORMAT = "fakd-checkpoint"
BASICSR_KEYS = ("params_ema", "params")  # BasicSR's checkpoints: the EMA weights when it kept them
# Metadata fakd writes into a .safetensors export (fakd.train.weights_export): keys → strings.
SAFETENSORS_RES_SCALE = "fakd_res_scale"


@dataclass
class WeightsFile:
    """What a file holds: ``fakd`` (the checkpoint dict in ``payload``) or ``state`` (a state dict)."""

    kind: str                       # "fakd" | "state"
    payload: dict                   # the fakd checkpoint, or the state dict of tensors
    container: str                  # how the state dict was stored, for the recognition line
    metadata: dict = field(default_factory=dict)  # a .safetensors file's string metadata


def read_weights_file(path: Path) -> WeightsFile:
    """The contents of ``path``; an unreadable, pickled-object or tensor-less file → FakdError."""
    if not path.is_file():
        raise FakdError(f"checkpoint {str(path)!r} not found")
    if path.suffix == SAFETENSORS_SUFFIX:
        state, metadata = _read_safetensors(path)
        return WeightsFile(kind="state", payload=state, container="safetensors", metadata=metadata)
    payload = _torch_load(path)
    if isinstance(payload, dict) and payload.get("format") == FAKD_FORMAT:
        return WeightsFile(kind="fakd", payload=payload, container="fakd checkpoint")
    container = "state dict"
    if isinstance(payload, dict):
        for key in BASICSR_KEYS:
            if isinstance(payload.get(key), dict):
                payload, container = payload[key], f"BasicSR checkpoint ({key})"
                break
    if not isinstance(payload, dict) or not payload or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in payload.items()):
        shown = (", ".join(repr(key) for key in list(payload)[:4]) if isinstance(payload, dict)
                 else type(payload).__name__)
        raise FakdError(f"{str(path)!r} holds no state dict of tensors (nor a fakd checkpoint): found {shown}")
    return WeightsFile(kind="state", payload=_strip_module_prefix(payload), container=container)


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):  # not a pickled object: garbage or a truncated file
            raise FakdError(f"checkpoint {str(path)!r} is unreadable: not a complete PyTorch file of tensors "
                            "(truncated or not a checkpoint)") from None
        raise FakdError(f"{str(path)!r} is refused: it holds pickled Python objects, not plain weights "
                        f"(fakd loads with torch.load(weights_only=True); save model.state_dict() instead)") from None
    except Exception:  # torch raises many types (and pages of advice) for truncated or foreign files
        raise FakdError(
            f"checkpoint {str(path)!r} is unreadable: not a complete PyTorch file of tensors "
            "(truncated, not a checkpoint, or saved with pickled objects)"
        ) from None


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as stream:
            metadata = dict(stream.metadata() or {})
            state = {key: stream.get_tensor(key) for key in stream.keys()}
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as error:
        raise FakdError(f"{str(path)!r} is not a readable .safetensors file ({str(error)[:120]})") from None
    if not state:
        raise FakdError(f"{str(path)!r} holds no tensors")
    return state, metadata


def _strip_module_prefix(state: dict) -> dict:
    """DataParallel / DistributedDataParallel save every key as ``module.<key>``."""
    if all(key.startswith("module.") for key in state):
        return {key[len("module."):]: value for key, value in state.items()}
    return state
