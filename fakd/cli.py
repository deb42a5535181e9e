"""The ``fakd`` command: one sub-command per module in ``fakd.commands``.

A user mistake (``FakdError``) becomes one line on stderr and exit code 2, never a traceback.
"""

import argparse
import importlib
import sys

from fakd import __version__
from fakd.errors import FakdError

# Sub-command modules, in the order ``fakd --help`` lists them. Each has ``register(subparsers)``,
# which adds its parser and sets ``handler`` (a function taking the parsed args, returning an exit code).
COMMAND_MODULES = [
    "degrade",
    "evaluate",
    "train",
    "distill",
    "profile",
    "upscale",
    "study",
    "sweep",
    "export",
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 and one line (its default is a usage dump)."""

    def error(self, message: str) -> None:  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every available sub-command."""
    parser = _Parser(
        prog="fakd",
        description="FAKD study kit: data, SR models, feature-affinity distillation, evaluation and reports.",
    )
    parser.add_argument("--version", action="version", version=f"fakd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"fakd.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FakdError as error:
        print(f"fakd {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fakd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
