"""Where image sets come from: the data root, set names, set paths and the embedded sets.

A data root is a folder of sets laid out as ``<root>/<Set>/HR/*.png`` (with optional premade LR
images in ``<root>/<Set>/LR_bicubic/X<s>/``). It is chosen by an explicit argument, else by the
environment variable ``FAKD_DATA_ROOT``; with neither, only the embedded sets (``skimage-train``,
``skimage-test``) and explicit paths are available.

A set is given as
- an embedded set name (``skimage-test``);
- a folder name under the root, matched case-insensitively, with the aliases B100 <-> BSD100
  (``Set5``, ``b100``);
- a path: a set folder holding ``HR/``, an ``HR`` folder itself, or a plain folder of images.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fakd.data.embedded import EMBEDDED_SETS, embedded_set_images, is_embedded_set
from fakd.data.image_io import IMAGE_SUFFIXES, list_images, read_image
from fakd.errors import FakdError

DATA_ROOT_ENV = "FAKD_DATA_ROOT"
SET_ALIASES = {"b100": ("bsd100",), "bsd100": ("b100",)}


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path | None:
    """The data root: ``data_root`` if given, else ``$FAKD_DATA_ROOT``, else None (embedded sets only)."""
    origin = "data root"
    if data_root is None or str(data_root) == "":
        data_root = os.environ.get(DATA_ROOT_ENV) or None
        origin = f"data root from ${DATA_ROOT_ENV}"
    if data_root is None:
        return None
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise FakdError(f"{origin} is not an existing folder: {root}")
    return root


@dataclass(frozen=True)
class SetSource:
    """A resolved image set: its display name and where its HR images (and premade LR) live."""

    name: str
    hr_folder: Path | None  # None for an embedded set
    lr_root: Path | None  # folder expected to hold X<s>/ premade LR folders; None for an embedded set

    @property
    def is_embedded(self) -> bool:
        return self.hr_folder is None

    def load_hr_images(self) -> list[tuple[str, np.ndarray]]:
        """(image name = file stem, RGB uint8 (H, W, 3)) for every HR image, sorted by file name."""
        if self.is_embedded:
            return embedded_set_images(self.name)
        return [(path.stem, read_image(path)) for path in list_images(self.hr_folder)]


def resolve_set(name_or_path: str | os.PathLike, *, data_root: str | os.PathLike | None = None) -> SetSource:
    """Resolve a set name (embedded, or a folder under the data root) or a path to a ``SetSource``."""
    text = os.fspath(name_or_path)
    if is_embedded_set(text):
        return SetSource(name=text, hr_folder=None, lr_root=None)
    if _looks_like_path(name_or_path):
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise FakdError(f"data set folder not found: {text}")
        return _source_from_folder(folder, display_name=None)
    root = resolve_data_root(data_root)
    if root is not None:
        folder = _find_under_root(root, text)
        if folder is not None:
            return _source_from_folder(folder, display_name=text)
    if Path(text).is_dir():  # a relative folder in the working directory
        return _source_from_folder(Path(text), display_name=None)
    raise FakdError(_unknown_set_message(text, root))


def available_sets(data_root: str | os.PathLike | None = None) -> list[str]:
    """Names of the sets under the data root (folders holding HR/ or images), then the embedded ones."""
    root = resolve_data_root(data_root)
    found = []
    if root is not None:
        found = sorted(entry.name for entry in root.iterdir() if entry.is_dir() and _holds_images(entry))
    return found + list(EMBEDDED_SETS)


def _looks_like_path(name_or_path) -> bool:
    if isinstance(name_or_path, Path):
        return True
    text = str(name_or_path)
    return os.sep in text or "/" in text or text.startswith((".", "~")) or os.path.isabs(text)


def _find_under_root(root: Path, name: str) -> Path | None:
    wanted = [name.lower(), *SET_ALIASES.get(name.lower(), ())]
    folders = {entry.name.lower(): entry for entry in root.iterdir() if entry.is_dir()}
    for candidate in wanted:
        if candidate in folders:
            return folders[candidate]
    return None


def _source_from_folder(folder: Path, *, display_name: str | None) -> SetSource:
    if (folder / "HR").is_dir():
        set_folder, hr_folder = folder, folder / "HR"
    elif folder.name == "HR":
        set_folder, hr_folder = folder.parent, folder
    else:
        set_folder, hr_folder = folder, folder
    name = display_name or set_folder.resolve().name
    return SetSource(name=name, hr_folder=hr_folder, lr_root=set_folder / "LR_bicubic")


def _holds_images(folder: Path) -> bool:
    candidate = folder / "HR" if (folder / "HR").is_dir() else folder
    return any(entry.suffix.lower() in IMAGE_SUFFIXES for entry in candidate.iterdir() if entry.is_file())


def _unknown_set_message(name: str, root: Path | None) -> str:
    embedded = ", ".join(EMBEDDED_SETS)
    if root is None:
        return (f"unknown data set {name!r}: no data root given (use --data-root or ${DATA_ROOT_ENV}); "
                f"embedded sets: {embedded}")
    known = ", ".join(available_sets(root)) or "none"
    return f"unknown data set {name!r}: not under data root {root}; sets found: {known}"
