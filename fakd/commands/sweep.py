"""``fakd sweep``: the cross product of a grid's parameters as parallel, resumable papermill runs."""

import argparse
from pathlib import Path

import yaml

from fakd.commands.common import positive_int
from fakd.errors import FakdError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a notebook over a parameter grid (parallel, resumable) and gather one results table",
        description="Execute a notebook with papermill for every point of the grid in GRID.yaml (keys: "
        "notebook, parameters, grid; see notebooks/README.md), each point in its own run folder under "
        "OUT/runs/. Finished points are skipped, so re-running resumes. Results are gathered into "
        "OUT/results.csv; failed points are listed in OUT/failures.json and make the exit code 1.",
    )
    parser.add_argument("grid", metavar="GRID.yaml", help="a grid file, or the name of a shipped grid "
                        "(smoke, cpu_ablation, paper_ablation)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the sweep's folder")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="points run at once, each with cores/workers threads (default 1)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="overrides",
                        help="fix a parameter for every point (VALUE read as YAML: 3, 0.5, true, [a, b]); "
                        "repeatable")
    parser.set_defaults(handler=run)


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
    from fakd.commands.study import require_notebook_tools

    require_notebook_tools()
    from fakd.study.grid import load_grid
    from fakd.study.locations import resolve_grid
    from fakd.study.sweep import print_outcome, run_sweep

    grid = load_grid(resolve_grid(args.grid))
    if args.overrides:
        grid = grid.with_fixed(parse_overrides(args.overrides))
    print(f"sweep: {len(grid.points)} points of {grid.notebook.name} into {args.out} ({args.workers} at a time)")
    report = run_sweep(grid, args.out, workers=args.workers, on_outcome=print_outcome)
    counts = {status: sum(outcome.status == status for outcome in report.outcomes)
              for status in ("done", "reused", "failed")}
    print(f"sweep: {counts['done']} run, {counts['reused']} reused, {len(report.failures)} failed; "
          f"{len(report.results)} result rows in {report.results_path}")
    if report.failures:
        print(f"sweep: failures listed in {report.failures_path}")
        return 1
    return 0
