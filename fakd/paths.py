"""Checks of the paths a user gives, made before any work starts: a wrong output or input path is one
line and exit 2 at once (``FakdError``), never a traceback after minutes of computation, and nothing
is created by a refused command.

``label`` names the path as the user gave it (``--output``, ``report folder``, ...).
"""

import os
import tempfile
from pathlib import Path

from fakd.errors import FakdError


def check_output_folder(path: Path, *, label: str = "--output") -> Path:
    """``path`` is a folder (or can be made below an existing one) that this process can write into."""
    path = check_not_a_file(path, label=label)
    _check_writable(path, label=label)
    return path


def check_not_a_file(path: Path, *, label: str) -> Path:
    """``path`` is a folder or nothing yet: a folder that may be read-only (a shared cache) is fine."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FakdError(f"{label} {str(path)!r} is a file, not a folder: a path that is not a folder cannot "
                        f"hold the outputs")
    return path


def check_output_file(path: Path, *, label: str) -> Path:
    """``path`` names a file (not a folder) whose folder this process can write into."""
    path = Path(path)
    if path.is_dir() or str(path).endswith(os.sep):
        raise FakdError(f"{label} {str(path)!r} is a folder; give a file name")
    if path.parent.exists() and not path.parent.is_dir():
        raise FakdError(f"{label} {str(path)!r}: {str(path.parent)!r} is not a folder")
    _check_writable(path.parent, label=label)
    return path


def check_input_folder(path: Path, *, label: str) -> Path:
    """``path`` is an existing folder this process can list and read."""
    path = Path(path)
    if not path.exists():
        raise FakdError(f"{label} {str(path)!r} not found")
    if not path.is_dir():
        raise FakdError(f"{label} {str(path)!r} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise FakdError(f"{label} {str(path)!r} is not readable (permission denied)")
    return path


def _check_writable(folder: Path, *, label: str) -> None:
    """The folder, or the nearest existing folder above it (where it would be made), takes a file: the
    permission bits first, then a real temporary file (read-only mounts, quotas)."""
    existing = next((candidate for candidate in [folder, *folder.absolute().parents] if candidate.exists()), None)
    if existing is None or not existing.is_dir():
        raise FakdError(f"{label} {str(folder)!r} cannot be made: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FakdError(f"cannot write into {label} {str(folder)!r}: not writable (no permission to write "
                        f"in {str(existing)!r})")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise FakdError(f"cannot write into {label} {str(folder)!r}: not writable ({str(existing)!r}: "
                        f"{error.strerror or error})") from None
