"""Shipped models: the manifest of ``fakd/pretrained/`` and ``fakd:<name>`` specs (export from a run is
``fakd.train.export``).

The package folder ``fakd/pretrained/`` holds weights-only checkpoints and ``manifest.json``
(``{"models": [entry, ...]}``); each entry names its file, sha256 and size, the model and how it
was trained, and its Set5 PSNR/SSIM measured on the exported file at export time
(``recorded_set5``). Anywhere a checkpoint path is accepted, ``fakd:<name>`` names a shipped model;
its file is checked against the manifest's sha256 before it is used.

The folder is ``$FAKD_PRETRAINED_DIR`` when that is set (tests, or models kept outside the
package), else the package's own. :func:`write_entry` replaces the manifest atomically, then deletes
the file the entry replaced (an export writes the checkpoint before): a crash leaves at most an
unlisted file, never a listed entry that does not match. One export at a time per folder (the
manifest is read, changed and replaced without a lock).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fakd.atomic import write_json_atomically
from fakd.errors import FakdError

PRETRAINED_PREFIX = "fakd:"
PRETRAINED_DIR_ENV = "FAKD_PRETRAINED_DIR"
MANIFEST_FILE = "manifest.json"


def package_pretrained_dir() -> Path:
    """The folder shipped inside the package (``fakd/pretrained``), whatever the environment says."""
    return Path(__file__).resolve().parents[1] / "pretrained"


def pretrained_dir(directory: str | Path | None = None) -> Path:
    """``directory`` if given, else ``$FAKD_PRETRAINED_DIR``, else the package folder."""
    if directory is not None:
        return Path(directory)
    return Path(os.environ[PRETRAINED_DIR_ENV]) if os.environ.get(PRETRAINED_DIR_ENV) else package_pretrained_dir()


def is_pretrained_spec(spec: str | Path) -> bool:
    """True for ``fakd:<name>``."""
    return str(spec).startswith(PRETRAINED_PREFIX)


def list_pretrained(directory: str | Path | None = None) -> list[dict[str, Any]]:
    """The manifest's entries (an empty list when nothing is shipped)."""
    folder = pretrained_dir(directory)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return []
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise FakdError(f"pretrained manifest {str(path)!r} is unreadable ({error})") from None
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, list) or not all(isinstance(entry, dict) for entry in models):
        raise FakdError(f"pretrained manifest {str(path)!r} is not {{\"models\": [entry, ...]}}")
    for index, entry in enumerate(models):
        _check_entry_types(entry, where=f"pretrained manifest {str(path)!r}, entry {index}")
    return models


# The fields fakd reads from a manifest entry, with the types they must have (None: may be null).
ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "file": (str,), "sha256": (str,), "size_bytes": (int,), "scale": (int,),
    "role": (str,), "method": (str,), "seed": (int, type(None)), "recorded_set5": (dict, type(None)),
}


def _check_entry_types(entry: dict[str, Any], *, where: str) -> None:
    """Every field in ``ENTRY_TYPES`` present with its type; recorded scores are numbers."""
    for key, types in ENTRY_TYPES.items():
        value = entry.get(key)
        if key not in entry or isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join("null" if kind is type(None) else kind.__name__ for kind in types)
            raise FakdError(f"{where}: field {key!r} must be {wanted}, got {value!r}"[:300])
    recorded = entry["recorded_set5"] or {}
    for key in ("psnr", "ssim"):
        if key in recorded and (isinstance(recorded[key], bool) or not isinstance(recorded[key], (int, float))):
            raise FakdError(f"{where}: recorded_set5.{key} must be a number, got {recorded[key]!r}"[:300])


def pretrained_entry(name: str, directory: str | Path | None = None) -> dict[str, Any]:
    """The manifest entry called ``name``; an unknown name → FakdError listing the shipped ones."""
    entries = list_pretrained(directory)
    for entry in entries:
        if entry.get("name") == name:
            return entry
    folder = pretrained_dir(directory)
    if not entries:
        raise FakdError(f"no shipped model {name!r}: no models are shipped yet ({folder / MANIFEST_FILE} lists none)")
    names = ", ".join(str(entry.get("name")) for entry in entries)
    raise FakdError(f"no shipped model {name!r}; shipped: {names}")


def pretrained_path(name: str, directory: str | Path | None = None) -> Path:
    """The checkpoint file of shipped model ``name``, after checking its size and sha256."""
    name = str(name)
    if is_pretrained_spec(name):
        name = name[len(PRETRAINED_PREFIX):]
    entry = pretrained_entry(name, directory)
    file_name = str(entry.get("file", ""))
    if not file_name or Path(file_name).name != file_name:
        raise FakdError(f"shipped model {name!r}: manifest entry has an invalid file {file_name!r}")
    path = pretrained_dir(directory) / file_name
    if not path.is_file():
        raise FakdError(f"shipped model {name!r}: its file {str(path)!r} is missing")
    if path.stat().st_size != entry.get("size_bytes") or file_sha256(path) != entry.get("sha256"):
        raise FakdError(f"shipped model {name!r}: {str(path)!r} does not match the manifest's sha256/size "
                        f"(damaged or replaced; reinstall fakd or export it again)")
    return path


def resolve_checkpoint_path(spec: str | Path) -> Path:
    """The file a checkpoint spec names: a path as given, or ``fakd:<name>`` → the shipped model's
    file (checked against the manifest's sha256; an unknown name → FakdError listing the shipped ones)."""
    return pretrained_path(spec) if is_pretrained_spec(spec) else Path(spec)


def write_entry(folder: Path, entry: dict[str, Any]) -> None:
    """Add or replace ``entry`` in the folder's manifest atomically, then drop the file it replaced."""
    models = list_pretrained(folder)
    replaced = [old for old in models if old.get("name") == entry["name"]]
    if replaced:
        models = [entry if old.get("name") == entry["name"] else old for old in models]
    else:
        models.append(entry)
    write_json_atomically(folder / MANIFEST_FILE, {"models": models})
    still_listed = {str(item.get("file")) for item in models}
    for old in replaced:
        if old.get("file") and old["file"] not in still_listed:
            (folder / Path(str(old["file"])).name).unlink(missing_ok=True)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a checkpoint's identity: shipped models, a run's teacher)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
