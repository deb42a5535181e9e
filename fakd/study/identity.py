"""What a notebook run computes, named by its content, never by where its inputs lie.

A study's runs are reused (and a sweep point's folder is named) by their parameters. Three parameters are
locations: ``data_root``, ``teacher_run_dir`` and ``sweep_dir``. Their paths say where a machine keeps the
inputs, not what is computed, so a run's identity replaces each by the content it stands for:

- ``data_root`` → the image sets the run reads (the profile's training sets and the test sets), each by a
  SHA-256 of its HR files' names and bytes (``None``: the embedded sets);
- ``teacher_run_dir`` → the SHA-256 of the teacher's best checkpoint (``None`` while it has none);
- ``sweep_dir`` → the SHA-256 of the sweep's results table.

A study moved with its runs, archive and data to other folders or another machine is therefore the same
study: nothing is retrained. ``run_dir`` (where the run itself goes) is never part of it.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from fakd.data.roots import resolve_data_root, resolve_set
from fakd.errors import FakdError
from fakd.study.parameters import normalize_parameters, parameters_digest

TEACHER_CHECKPOINT = Path("train") / "checkpoints" / "best.pt"  # in a 02_train_teacher run folder
SWEEP_RESULTS = "results.csv"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (remembered per path, size and modification time within a process)."""
    stat = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=64)
def _folder_digest(folder: str, mtime_ns: int) -> str:
    """SHA-256 over the names and bytes of the files in ``folder``; remembered within a process while the
    folder's own modification time (a file added, removed or renamed) is unchanged."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + file_digest(path).encode())
    return digest.hexdigest()


def set_digest(name: str, *, data_root) -> str:
    """The digest of one image set's HR files (the embedded sets: their name; they ship with the code)."""
    source = resolve_set(name, data_root=data_root)
    if source.is_embedded:
        return f"embedded:{name}"
    folder = Path(source.hr_folder).resolve()
    return _folder_digest(str(folder), folder.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _used_sets(profile: str | None, root: str, test_sets: tuple[str, ...]) -> tuple[str, ...]:
    """The profile's training sets and the test sets (given, else the paper's that the root holds)."""
    from fakd.analysis.results import default_test_sets
    from fakd.train.config import load_run_config

    train = list(load_run_config(profile).data.train_sets) if profile else []
    return tuple(dict.fromkeys(train + list(test_sets or default_test_sets(root))))


def data_identity(parameters: dict) -> dict | None:
    """``{set name: digest}`` of the sets a run with these parameters reads from its data root (None: no root)."""
    try:
        root = resolve_data_root(parameters.get("data_root") or None)
    except FakdError:
        return {"missing": True}  # no such folder here: a run that needs it fails with its own message
    if root is None:
        return None
    found = {}
    for name in _used_sets(parameters.get("profile") or None, str(root), tuple(parameters.get("test_sets") or ())):
        try:
            found[name] = set_digest(name, data_root=root)
        except FakdError:
            found[name] = None  # not there: a run that needs it fails on its own, with its own message
    return found


def teacher_identity(folder) -> str | None:
    """The SHA-256 of the teacher run's best checkpoint, None while it has none."""
    path = Path(folder) / TEACHER_CHECKPOINT
    return file_digest(path) if path.is_file() else None


def sweep_identity(folder) -> str | None:
    """The SHA-256 of the sweep's results table, None while it has none."""
    path = Path(folder) / SWEEP_RESULTS
    return file_digest(path) if path.is_file() else None


def run_identity(parameters: dict) -> dict[str, Any]:
    """``parameters`` with every location replaced by the content it stands for (see the module doc)."""
    parameters = normalize_parameters(parameters)
    identity = dict(parameters)
    if "data_root" in parameters:
        identity["data_root"] = data_identity(parameters)
    if parameters.get("teacher_run_dir"):
        identity["teacher_run_dir"] = {"teacher_sha256": teacher_identity(parameters["teacher_run_dir"])}
    if parameters.get("sweep_dir"):
        identity["sweep_dir"] = {"results_sha256": sweep_identity(parameters["sweep_dir"])}
    return identity


def identity_digest(parameters: dict) -> str:
    """The SHA-256 of ``run_identity(parameters)``: what a finished run's marker records and is matched by."""
    return parameters_digest(run_identity(parameters))
