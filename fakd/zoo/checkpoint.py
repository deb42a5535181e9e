"""Checkpoints: atomic writes, safe loading, and models rebuilt from what a checkpoint records.

A checkpoint is a plain dict that ``torch.load(weights_only=True)`` accepts (tensors, numbers,
strings, lists, dicts) — never pickled objects:

    format, version       "fakd-checkpoint", 1
    model_config          ``model.config`` (enough to rebuild the network)
    model_name            a human name (preset, or "<role> <run name>") used in tables
    model_state           ``state_dict`` of the network
    iteration             number of finished training iterations
    role                  teacher | student | distill
    run_config            the resolved RunConfig as a dict (optional)
    optimizer_state, scheduler_state, rng_state, best_val_psnr, best_iteration   (training state;
                          absent in a model-only checkpoint such as best.pt)

Wherever a checkpoint path is read, ``fakd:<name>`` names a shipped model instead
(:func:`resolve_checkpoint_path`, ``fakd.zoo.pretrained``).

Writes go to a temporary file in the same folder, are flushed and fsync'ed, then ``os.replace``d
over the target, so a process killed at any moment leaves either the old or the new file whole.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fakd.atomic import storage_errors
from fakd.errors import FakdError
from fakd.models import build_model_from_config, count_parameters
from fakd.models.registry import check_model_size
from fakd.models.spandrel_adapter import SPANDREL_ARCH, NotRecognised, spandrel_model
from fakd.zoo.official import UnknownLayout, recognise
from fakd.zoo.pretrained import file_sha256, resolve_checkpoint_path
from fakd.zoo.weights_file import SAFETENSORS_RES_SCALE, read_weights_file

CHECKPOINT_FORMAT = "fakd-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` (plus format/version) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}
    with storage_errors(path):  # a full disk: one line naming the checkpoint
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                torch.save(payload, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a fakd checkpoint with ``weights_only=True``; a missing/corrupt/foreign file → FakdError."""
    path = resolve_checkpoint_path(path)
    if not path.is_file():
        raise FakdError(f"checkpoint {str(path)!r} not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch raises many types (and pages of advice) for truncated or foreign files
        raise FakdError(
            f"checkpoint {str(path)!r} is unreadable: not a complete PyTorch file of tensors "
            "(truncated, not a checkpoint, or saved with pickled objects)"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise FakdError(f"{str(path)!r} is not a fakd checkpoint (no '{CHECKPOINT_FORMAT}' header)")
    _check_header(payload, path=path)
    return payload


def _check_header(payload: dict[str, Any], *, path: Path) -> None:
    """A fakd checkpoint of this version with a model config and a state dict."""
    if payload.get("version") != CHECKPOINT_VERSION:
        raise FakdError(
            f"checkpoint {str(path)!r} has format version {payload.get('version')!r}; "
            f"this fakd reads version {CHECKPOINT_VERSION}"
        )
    _check_model_fields(payload, where=f"checkpoint {str(path)!r}")


def _check_model_fields(payload: dict[str, Any], *, where: str) -> None:
    """``model_config`` is a mapping of settings and ``model_state`` maps parameter names to tensors."""
    for key in ("model_config", "model_state"):
        if key not in payload:
            raise FakdError(f"{where} lacks {key!r}")
    config, state = payload["model_config"], payload["model_state"]
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        raise FakdError(f"{where} is malformed: model_config is not a mapping of settings")
    if not isinstance(state, dict) or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()):
        raise FakdError(f"{where} is malformed: model_state is not a mapping of parameter names to tensors")


def _check_rebuildable(payload: dict[str, Any], *, where: str) -> None:
    """Besides the field types: ``model_config`` names an architecture (``arch``) and a whole-number ``scale``."""
    _check_model_fields(payload, where=where)
    config = payload["model_config"]
    if not isinstance(config.get("arch"), str):
        raise FakdError(f"{where}: cannot rebuild its model (model_config has no architecture name 'arch')")
    scale = config.get("scale")
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise FakdError(f"{where}: cannot rebuild its model (model_config's scale is {scale!r}, not a whole number)")


def build_model_from_checkpoint(payload: dict[str, Any], *, source: str = "checkpoint") -> nn.Module:
    """Rebuild the network recorded in ``payload`` and load its weights (strict)."""
    _check_rebuildable(payload, where=source)
    if payload["model_config"]["arch"] == SPANDREL_ARCH:
        return spandrel_model(payload["model_state"], where=source)
    try:
        check_model_size(dict(payload["model_config"]), where="model_config")  # no memory yet
    except FakdError as error:
        raise FakdError(f"{source}: cannot rebuild its model ({error})") from None
    model = build_model_from_config(dict(payload["model_config"]))
    try:
        model.load_state_dict(payload["model_state"], strict=True)
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise FakdError(f"{source}: weights do not fit the recorded architecture ({detail[:160]})") from None
    return model


def load_model_from_checkpoint(
    path: str | Path,
    device: str | torch.device | None = None,
    *,
    scale: int | None = None,
    arch: str | None = None,
    res_scale: float | None = None,
) -> nn.Module:
    """The model stored in checkpoint ``path``, in eval mode on ``device`` (default CPU).

    ``path`` may also hold official RCAN / EDSR weights, a BasicSR checkpoint or a .safetensors file
    (:func:`read_model_payload`; ``res_scale`` for an EDSR whose value is not the preset's).

    ``scale``/``arch``, when given, must match the checkpoint's (otherwise a FakdError says which
    scale/architecture it holds). The model gets ``checkpoint_name`` (for tables) and
    ``checkpoint_path`` attributes. ``path`` may be ``fakd:<name>`` (a shipped model).
    """
    path = resolve_checkpoint_path(path)
    payload = read_model_payload(path, res_scale=res_scale, scale=scale)
    _check_rebuildable(payload, where=f"checkpoint {str(path)!r}")
    config = payload["model_config"]
    _check_scale(config, scale=scale, path=path)
    if arch is not None and config.get("arch") != arch:
        raise FakdError(f"checkpoint {str(path)!r} holds a {config.get('arch')} model, expected {arch}")
    model = build_model_from_checkpoint(payload, source=f"checkpoint {str(path)!r}")
    model.checkpoint_name = str(payload.get("model_name") or Path(path).stem)
    model.checkpoint_path = str(path)
    model.eval()
    return model.to(torch.device("cpu") if device is None else torch.device(device))


def read_model_payload(path: str | Path, *, res_scale: float | None = None, scale: int | None = None,
                       quiet: bool = False) -> dict[str, Any]:
    """A fakd checkpoint's payload, or one made from official / BasicSR / .safetensors weights (converted
    to fakd's network; one line on stderr says what was recognised and the file's sha256). ``scale``, when
    given, must be the model's."""
    path = resolve_checkpoint_path(path)
    contents = read_weights_file(path)
    if contents.kind == "fakd":
        _check_header(contents.payload, path=path)
        return contents.payload
    if res_scale is None and SAFETENSORS_RES_SCALE in contents.metadata:
        res_scale = float(contents.metadata[SAFETENSORS_RES_SCALE])
    try:
        recognised = recognise(contents.payload, where=f"{str(path)!r}", res_scale=res_scale)
    except UnknownLayout as unknown:
        return _spandrel_payload(contents, path=path, scale=scale, quiet=quiet, unknown=unknown)
    _check_scale(recognised.model_config, scale=scale, path=path)
    digest = file_sha256(path)
    if not quiet:
        print(f"{path.name}: {recognised.describe()} ({contents.container}, sha256 {digest[:16]})",
              file=sys.stderr, flush=True)
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model_config": recognised.model_config,
            "model_state": recognised.model_state, "model_name": path.stem, "role": "imported",
            "source": {"file": path.name, "sha256": digest, "layout": recognised.layout,
                       "container": contents.container, "rgb_range": recognised.rgb_range,
                       "description": recognised.describe()}}


def _check_scale(config: dict[str, Any], *, scale: int | None, path: Path) -> None:
    if scale is not None and config.get("scale") != int(scale):
        raise FakdError(f"checkpoint {str(path)!r} is a ×{config.get('scale')} model, but ×{scale} was asked for")


def _spandrel_payload(contents, *, path: Path, scale: int | None, quiet: bool, unknown: FakdError) -> dict[str, Any]:
    """The payload of a network spandrel recognises (fakd.models.spandrel_adapter); without spandrel, or for
    a network it does not know either, the nearest-layout error ``unknown``."""
    from fakd.models.spandrel_import import spandrel_registry

    try:
        spandrel_registry()
    except FakdError as missing:
        raise FakdError(f"{unknown} ({missing})") from None
    try:
        model = spandrel_model(contents.payload, where=f"{str(path)!r}")
    except NotRecognised:
        raise unknown from None
    _check_scale(model.config, scale=scale, path=path)
    digest = file_sha256(path)
    defaults = ", ".join(model.default_taps) or "none"
    description = (f"spandrel {model.arch_id} x{model.scale}, {count_parameters(model.net) / 1e6:.2f}M parameters, "
                   f"{len(model.tap_names())} taps at LR resolution (default {defaults})")
    if not quiet:
        print(f"{path.name}: {description} ({contents.container}, sha256 {digest[:16]})", file=sys.stderr, flush=True)
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model_config": dict(model.config),
            "model_state": dict(contents.payload), "model_name": path.stem, "role": "imported",
            "source": {"file": path.name, "sha256": digest, "layout": f"spandrel-{model.arch_id}",
                       "container": contents.container, "description": description}}
