"""``fakd sweep``: the cross product of a grid's parameters as parallel, resumable papermill runs."""

import argparse
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import yaml

from fakd.commands.common import non_negative_int, positive_int, require_notebook_tools
from fakd.errors import FakdError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a notebook over a parameter grid (parallel, resumable) and gather one results table",
        description="Execute a notebook with papermill for every point of the grid in GRID.yaml (keys: "
        "notebook, parameters, grid, and report, which only fakd study reads; see notebooks/README.md), each point in its own run folder under "
        "OUT/runs/. Finished points are skipped, so re-running resumes. Results are gathered into "
        "OUT/results.csv; failed points are listed in OUT/failures.json and make the exit code 1. The points "
        "run on Dask: local worker processes by default, an existing cluster with --scheduler "
        "(docs/distributed.md).",
    )
    parser.add_argument("grid", metavar="GRID.yaml", help="a grid file, or the name of a shipped grid "
                        "(smoke, cpu_ablation, paper_ablation)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the sweep's folder")
    add_cluster_arguments(parser, workers_help="local worker processes: points run at once (default 1)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads per point (default 1: parallel points do not oversubscribe the cores)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="overrides",
                        help="fix a parameter for every point (VALUE read as YAML: 3, 0.5, true, [a, b]); "
                        "repeatable")
    parser.set_defaults(handler=run)


def add_cluster_arguments(parser: argparse.ArgumentParser, *, workers_help: str) -> None:
    """--workers, --scheduler, --gpus-per-point: where the points of a sweep run (``fakd.study.cluster``)."""
    parser.add_argument("--workers", type=positive_int, default=1, help=workers_help)
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run the points on the Dask cluster whose scheduler is at ADDRESS (e.g. "
                        "tcp://host:8786; default: $FAKD_SCHEDULER, else local worker processes); run folders "
                        "must be on storage its workers share")
    parser.add_argument("--gpus-per-point", type=non_negative_int, default=0, metavar="G",
                        help="GPUs each point needs (the Dask worker resource GPU; default 0)")


@contextmanager
def interrupt_on_sigterm():
    """SIGTERM ends the command like Ctrl-C: running points and their kernels are stopped first."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_overrides(items: list[str]) -> dict:
    """``NAME=VALUE`` pairs, the values read as YAML scalars or lists."""
    overrides = {}
    for item in items:
        name, separator, text = item.partition("=")
        if not separator or not name.strip():
            raise FakdError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            overrides[name.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise FakdError(f"--set {name}: value {text!r} is not valid YAML") from None
    return overrides


def run(args: argparse.Namespace) -> int:
    require_notebook_tools()
    from fakd.study.cluster import scheduler_address
    from fakd.study.grid import load_grid
    from fakd.study.locations import resolve_grid
    from fakd.study.sweep import print_outcome, run_sweep

    grid = load_grid(resolve_grid(args.grid))
    if args.overrides:
        grid = grid.with_fixed(parse_overrides(args.overrides))
    scheduler = scheduler_address(args.scheduler)
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"{args.workers} at a time"
    print(f"sweep: {len(grid.points)} points of {grid.notebook.name} into {args.out} ({where})", flush=True)
    with interrupt_on_sigterm():
        report = run_sweep(grid, args.out, workers=args.workers, scheduler=scheduler,
                           gpus_per_point=args.gpus_per_point, threads=args.threads, on_outcome=print_outcome,
                           progress=True)
    counts = {status: sum(outcome.status == status for outcome in report.outcomes)
              for status in ("done", "reused", "failed")}
    print(f"sweep: {counts['done']} run, {counts['reused']} reused, {len(report.failures)} failed; "
          f"{len(report.results)} result rows in {report.results_path}")
    if report.failures:
        print(f"sweep: failures listed in {report.failures_path}")
        return 1
    return 0
