"""Checks made before the first notebook of a sweep or study runs, so that a user mistake (an output
path that is a file, a folder fakd cannot write, an unknown device, a missing data root or training
set) is one line and exit code 2 instead of a failure found minutes later with a partial report."""

import tempfile
from pathlib import Path

from fakd.errors import FakdError


def check_output_folder(path: Path, *, what: str = "output folder") -> Path:
    """``path`` must be a folder fakd can write into, or not exist yet below one (nothing is created:
    a refused run leaves nothing behind). The write is real, so read-only mounts are caught too."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FakdError(f"{what} {path} is a file, not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise FakdError(f"{what} {path} cannot be made: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise FakdError(f"cannot write into {what} {path} ({existing}: {error.strerror or error})") from None
    return path


def check_device(name: str | None, *, local: bool = True) -> None:
    """The device name must parse (cpu, cuda, cuda:N, ...); with ``local``, it must also exist here
    (a cluster's workers resolve it themselves)."""
    if name in (None, "", "auto"):
        return
    import torch

    from fakd.device import resolve_device

    if local:
        resolve_device(name)
        return
    try:
        torch.device(name)
    except RuntimeError:
        raise FakdError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from None


def check_training_data(profile: str, *, data_root: str | None) -> None:
    """The data root exists and every training set of the profile resolves to a folder of images."""
    from fakd.data.image_io import list_images
    from fakd.data.roots import resolve_data_root, resolve_set
    from fakd.engine.config import load_run_config

    resolve_data_root(data_root)
    for name in load_run_config(profile).data.train_sets:
        source = resolve_set(name, data_root=data_root)
        if source.is_embedded:
            continue
        try:
            found = list_images(source.hr_folder)
        except (OSError, FakdError):
            found = []
        if not found:
            raise FakdError(f"training set {name} of the {profile} profile has no images in {source.hr_folder}")
