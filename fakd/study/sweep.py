"""Run every point of a sweep grid as a papermill run, in parallel, resumably; gather one results table.

    OUT/sweep.json            what was asked: notebook, fixed parameters, every point and its folder
    OUT/runs/<point>/         one run directory per point (executed notebook, results.json, done marker)
    OUT/results.csv           one row per result row: run, run_dir, all parameters, the results' keys
    OUT/failures.json         the points that failed: parameters, error, executed notebook

Finished points (done marker with the same parameters and notebook code) are skipped, so an
interrupted sweep resumes where it stopped; failed points are tried again. One point failing does not
stop the others.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fakd.atomic import write_json_atomically
from fakd.errors import FakdError
from fakd.study.environment import kernel_environment, threads_per_worker
from fakd.study.grid import SweepGrid, SweepPoint
from fakd.study.notebook_runner import RUN_DIR_PARAMETER, finished_run
from fakd.study.parameters import check_parameters
from fakd.study.results import gather_results

RUNS_FOLDER = "runs"
RESULTS_TABLE = "results.csv"
FAILURES_FILE = "failures.json"
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class PointOutcome:
    """What happened to one point in this invocation: ``done``, ``reused`` or ``failed``."""

    point: SweepPoint
    run_dir: Path
    status: str
    seconds: float
    error: str | None = None
    executed: Path | None = None


@dataclass(frozen=True)
class SweepReport:
    """The outcome of a sweep invocation and where its table and failure list are."""

    out_dir: Path
    outcomes: tuple[PointOutcome, ...]
    results: pd.DataFrame
    results_path: Path
    failures_path: Path
    failures: tuple[dict, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def _execute_point(notebook: Path, run_dir: Path, parameters: dict, environment: dict) -> dict:
    """One point in a fresh ``python -m fakd.study.worker`` process; a crash becomes a failure record."""
    request = json.dumps({"notebook": str(notebook), "run_dir": str(run_dir), "parameters": parameters,
                          "environment": environment})
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "fakd.study.worker"], input=request,
                               capture_output=True, text=True, env={**os.environ, **environment})
    lines = completed.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        detail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "failed", "seconds": time.monotonic() - started, "executed": None,
                "error": f"worker process exited with code {completed.returncode}: {detail}"}


def check_grid(grid: SweepGrid) -> None:
    """Check every point's parameters against the notebook before anything runs."""
    if not grid.points:
        raise FakdError("the grid has no points")
    if RUN_DIR_PARAMETER in grid.fixed or any(RUN_DIR_PARAMETER in point.varied for point in grid.points):
        raise FakdError(f"{RUN_DIR_PARAMETER} is set by the sweep (each point gets its own folder under --out); "
                        "remove it from the grid and --set")
    for point in grid.points:
        try:
            check_parameters(grid.notebook, point.parameters)
        except FakdError as error:
            raise FakdError(f"grid point {point.key}: {error}") from None


def _describe_sweep(grid: SweepGrid, runs_dir: Path) -> dict:
    return {
        "grid_file": str(grid.source) if grid.source else None,
        "notebook": str(grid.notebook),
        "description": grid.description,
        "fixed": grid.fixed,
        "points": [{"run": point.key, "run_dir": str(runs_dir / point.key), "varied": point.varied}
                   for point in grid.points],
    }


def run_sweep(
    grid: SweepGrid,
    out_dir: Path,
    *,
    workers: int = 1,
    on_outcome: Callable[[PointOutcome, int, int], None] | None = None,
) -> SweepReport:
    """Run the grid's points not yet done into ``out_dir``, ``workers`` at a time, then gather results.

    Each worker's kernel gets ``cores / workers`` threads and the tuned allocator settings.
    ``on_outcome(outcome, finished_count, total)`` is called as each point ends (for progress lines).
    """
    if workers < 1:
        raise FakdError(f"workers must be ≥ 1, got {workers}")
    check_grid(grid)
    out_dir = Path(out_dir)
    runs_dir = out_dir / RUNS_FOLDER
    runs_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(out_dir / SWEEP_FILE, _describe_sweep(grid, runs_dir))
    environment = kernel_environment(threads=threads_per_worker(workers))
    total, outcomes = len(grid.points), []

    def record(outcome: PointOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome, len(outcomes), total)

    pending = []
    for point in grid.points:
        run_dir = runs_dir / point.key
        done = finished_run(grid.notebook, run_dir, point.parameters)
        if done is not None:
            record(PointOutcome(point=point, run_dir=run_dir, status="reused", seconds=done.seconds,
                                executed=done.executed))
        else:
            pending.append(point)

    def outcome_of(point: SweepPoint, result: dict) -> PointOutcome:
        executed = Path(result["executed"]) if result.get("executed") else None
        return PointOutcome(point=point, run_dir=runs_dir / point.key, status=result["status"],
                            seconds=result["seconds"], error=result["error"], executed=executed)

    # Threads only wait: each point runs in its own worker process, which starts the kernel.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_execute_point, grid.notebook, runs_dir / point.key, point.parameters,
                               environment): point for point in pending}
        for future in as_completed(futures):
            record(outcome_of(futures[future], future.result()))

    return _finish(grid, out_dir, runs_dir, outcomes)


def _finish(grid: SweepGrid, out_dir: Path, runs_dir: Path, outcomes: list[PointOutcome]) -> SweepReport:
    """Gather the table and write the failure list (points that failed, or finished without results)."""
    order = {point.key: index for index, point in enumerate(grid.points)}
    outcomes = sorted(outcomes, key=lambda outcome: order[outcome.point.key])
    finished = [outcome for outcome in outcomes if outcome.status != "failed"]
    table, problems = gather_results([(outcome.point, outcome.run_dir) for outcome in finished], base=out_dir)
    failures = [
        {"run": outcome.point.key, "run_dir": str(outcome.run_dir), "parameters": outcome.point.parameters,
         "error": outcome.error, "executed": str(outcome.executed) if outcome.executed else None}
        for outcome in outcomes if outcome.status == "failed"
    ]
    failures += [{"run": point.key, "run_dir": str(runs_dir / point.key), "parameters": point.parameters,
                  "error": problem, "executed": None} for point, problem in problems]
    failures.sort(key=lambda failure: order[failure["run"]])
    results_path = out_dir / RESULTS_TABLE
    temporary = results_path.with_name(f".{results_path.name}.{os.getpid()}.tmp")
    table.to_csv(temporary, index=False)
    os.replace(temporary, results_path)
    failures_path = out_dir / FAILURES_FILE
    write_json_atomically(failures_path, failures)
    return SweepReport(out_dir=out_dir, outcomes=tuple(outcomes), results=table, results_path=results_path,
                       failures_path=failures_path, failures=tuple(failures))


def print_outcome(outcome: PointOutcome, finished: int, total: int) -> None:
    """A progress line per point, for the command line."""
    width = len(str(total))
    status = {"done": "done  ", "reused": "reused", "failed": "FAILED"}[outcome.status]
    line = f"[{finished:>{width}}/{total}] {status} {outcome.point.key} ({outcome.seconds:.1f} s)"
    if outcome.error:
        line += f": {outcome.error}"
    print(line, file=sys.stderr if outcome.status == "failed" else sys.stdout, flush=True)
