"""The ``fakd`` command: one sub-command per module in ``fakd.commands``.

A user mistake (``FakdError``) becomes one line on stderr and exit code 2, never a traceback; so does
a failure of the machine's storage (disk full, permission denied, read-only: ``ENVIRONMENT_ERRNOS``).
Only the module of the sub-command being run is imported (the others need torch, pandas, ...), so
``fakd --version`` and ``fakd --help`` answer at once.
"""

import argparse
import importlib
import sys

from fakd import __version__
from fakd.atomic import ENVIRONMENT_ERRNOS
from fakd.errors import FakdError

# Sub-commands in the order ``fakd --help`` lists them, with the one-line help it shows (each module's
# ``register`` uses the same text; a test keeps them equal). Each module ``fakd.commands.<name>`` has
# ``register(subparsers)``, which adds its parser and sets ``handler`` (a function taking the parsed
# args, returning an exit code).
COMMANDS = {
    "degrade": "write MATLAB-bicubic LR images of a folder of HR images",
    "evaluate": "PSNR/SSIM (Y, border crop = scale) of models on benchmark sets",
    "train": "train a teacher or a student without distillation",
    "distill": "train a student with knowledge distillation from a teacher checkpoint",
    "profile": "parameters, Multi-Adds and latency of presets or checkpoints",
    "upscale": "super-resolve images with a checkpoint (large images in overlapping tiles)",
    "study": "run the study notebooks (primer … ablation report) and render them as one report",
    "sweep": "run a notebook over a parameter grid (parallel, resumable) and gather one results table",
    "convert": "write official RCAN/EDSR, BasicSR or .safetensors weights as a fakd checkpoint",
    "taps": "list a model's tap points with the shape of each feature map",
    "export": "ship a finished run's best model as fakd:<name> (or --list the shipped models)",
    "explore": "serve the affinity explorer as a web page: click a pixel, see its affinity maps",
}
COMMAND_MODULES = list(COMMANDS)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 and one line (its default is a usage dump)."""

    def error(self, message: str) -> None:  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(commands=None) -> argparse.ArgumentParser:
    """The parser with the full arguments of ``commands`` (default: every sub-command) and only a
    name and one-line help for the others, whose modules are then not imported."""
    chosen = set(COMMANDS if commands is None else commands)
    parser = _Parser(
        prog="fakd",
        description="FAKD study kit: data, SR models, feature-affinity distillation, evaluation and reports.",
    )
    parser.add_argument("--version", action="version", version=f"fakd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name, summary in COMMANDS.items():
        if name in chosen:
            importlib.import_module(f"fakd.commands.{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def _requested_command(argv: list[str]) -> list[str]:
    """The sub-command named on the command line, as a list (empty for ``--help``, ``--version``, a typo):
    the top-level options take no values, so it is the first argument that is not an option."""
    first = next((argument for argument in argv if not argument.startswith("-")), None)
    return [first] if first in COMMANDS else []


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_requested_command(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FakdError as error:
        print(f"fakd {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRNOS:
            raise  # anything else is a bug: keep its traceback
        where = f": {error.filename}" if error.filename else ""
        print(f"fakd {args.command}: error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fakd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
