"""Checks made before the first notebook of a sweep or study runs, so that a user mistake (an unknown
device, a missing data root or training set; output folders: ``fakd.paths``) is one line and exit code
2 instead of a failure found minutes later with a partial report."""

from fakd.errors import FakdError


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
    from fakd.train.config import load_run_config

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
