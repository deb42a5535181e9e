"""Arguments shared by several sub-commands, so every command spells them the same way (the checks of
user-given paths are ``fakd.paths``)."""

import argparse
import importlib.util
import sys

from fakd.errors import FakdError

# What running notebooks needs beyond fakd's core dependencies (the `notebooks` extra).
NOTEBOOK_TOOLS = ("papermill", "nbformat", "nbconvert", "nbclient", "ipykernel")


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


def positive_number(text: str) -> float:
    """argparse type for a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch CPU threads; the default is chosen by ``fakd.threads.choose_threads``."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="torch CPU threads (default: the config's setting, else $OMP_NUM_THREADS, else "
                        "the cores other processes leave free now; printed at the start)")


def shows_progress() -> bool:
    """Progress bars only on a terminal (stderr), never in a log file or a pipe."""
    return sys.stderr.isatty()


def require_notebook_tools() -> None:
    """FakdError naming what to install when the notebook tools are missing (``fakd study``/``sweep``)."""
    missing = [name for name in NOTEBOOK_TOOLS if importlib.util.find_spec(name) is None]
    if missing:
        raise FakdError(f"running notebooks needs {', '.join(missing)}: pip install 'fakd[notebooks]'")
