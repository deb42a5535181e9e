"""Arguments and checks shared by several sub-commands, so every command spells them the same way.

The ``check_*`` functions run before any work starts: a wrong output or input path is one line and
exit 2 at once, never a traceback after minutes of computation.
"""

import argparse
import os
import sys
from pathlib import Path

from fakd.errors import FakdError


def add_data_root_argument(parser: argparse.ArgumentParser) -> None:
    """``--data-root``: folder of ``<Set>/HR``; default ``$FAKD_DATA_ROOT``, else the embedded sets."""
    parser.add_argument(
        "--data-root",
        default=None,
        help="folder holding <Set>/HR/*.png (default: $FAKD_DATA_ROOT, else the embedded "
        "scikit-image photographs: sets skimage-train and skimage-test)",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``: auto (CUDA when available), cpu, cuda, cuda:N."""
    parser.add_argument("--device", default="auto", help="auto (default: CUDA if available), cpu, cuda[:N]")


def _whole_number(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ {minimum}, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type for a whole number ≥ 0."""
    return _whole_number(text, minimum=0)


def positive_int(text: str) -> int:
    """argparse type for a whole number ≥ 1."""
    return _whole_number(text, minimum=1)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch CPU threads; the default is chosen by ``fakd.threads.choose_threads``."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="torch CPU threads (default: the config's setting, else $OMP_NUM_THREADS, else "
                        "the cores left free by the machine's load; printed at the start)")


def shows_progress() -> bool:
    """Progress bars only on a terminal (stderr), never in a log file or a pipe."""
    return sys.stderr.isatty()


def check_output_folder(path: Path, *, option: str = "--output") -> Path:
    """Before any work: ``path`` is a folder (or can be created) that this user can write in."""
    if path.exists() and not path.is_dir():
        raise FakdError(f"{option} {str(path)!r} exists and is not a folder")
    _check_writable(path, option=option)
    return path


def check_output_file(path: Path, *, option: str) -> Path:
    """Before any work: ``path`` names a file (not a folder) whose folder this user can write in."""
    if path.is_dir() or str(path).endswith(os.sep):
        raise FakdError(f"{option} {str(path)!r} is a folder; give a file name")
    if path.parent.exists() and not path.parent.is_dir():
        raise FakdError(f"{option} {str(path)!r}: {str(path.parent)!r} is not a folder")
    _check_writable(path.parent, option=option)
    return path


def check_input_folder(path: Path, *, option: str) -> Path:
    """Before any work: ``path`` is an existing folder this user can list and read."""
    if not path.exists():
        raise FakdError(f"{option} {str(path)!r} not found")
    if not path.is_dir():
        raise FakdError(f"{option} {str(path)!r} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise FakdError(f"{option} {str(path)!r} is not readable (permission denied)")
    return path


def _check_writable(folder: Path, *, option: str) -> None:
    """The folder, or the nearest existing folder above it (where it would be created), is writable."""
    existing = next((candidate for candidate in [folder, *folder.absolute().parents] if candidate.exists()), None)
    if existing is None or not existing.is_dir():
        raise FakdError(f"{option} {str(folder)!r} cannot be created: {str(existing)!r} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FakdError(f"{option} {str(folder)!r} is not writable: no permission to write in {str(existing)!r}")
