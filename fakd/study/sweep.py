"""Run every point of a sweep grid as a papermill run on a Dask cluster, resumably; gather one results table.

    OUT/sweep.json            what was asked: notebook, fixed parameters, every point and its folder
    OUT/runs/<point>/         one run directory per point (executed notebook, results.json, done marker)
    OUT/results.csv           one row per result row: run, run_dir, all parameters, the results' keys
    OUT/failures.json         the points that failed: parameters, error, executed notebook

Finished points (done marker with the same parameters and notebook code) are skipped, so an
interrupted sweep resumes where it stopped; failed points are tried again. One point failing does not
stop the others. The points run as Dask tasks (``fakd.study.worker.run_point``) on an embedded cluster
of local worker processes or on an existing cluster (``fakd.study.cluster``): a point whose worker dies
is re-run by Dask on another worker and counted once; a notebook error is a result (recorded once, not
retried); an interrupt (Ctrl-C, SIGTERM) stops the running points and keeps the finished ones. Each
table row also says where its point ran: ``point_worker``, ``point_host``, ``point_device``,
``point_seconds`` (from the run folder's ``fakd-point.json``).
"""

import dataclasses
import json
import os
import queue
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fakd.analysis.results import gather_results
from fakd.atomic import write_json_atomically
from fakd.errors import FakdError
from fakd.paths import check_output_folder
from fakd.study.cluster import (ClusterOptions, check_gpu_workers, check_shared_storage, dashboard_link,
                                open_cluster, point_slots)
from fakd.study.grid import SweepGrid, SweepPoint
from fakd.study.notebook_runner import RUN_DIR_PARAMETER, finished_run
from fakd.study.parameters import check_parameters
from fakd.study.progress import PointProgress, say
from fakd.study.worker import PROVENANCE_FILE, run_point

RUNS_FOLDER = "runs"
RESULTS_TABLE = "results.csv"
FAILURES_FILE = "failures.json"
SWEEP_FILE = "sweep.json"
PROVENANCE_COLUMNS = {"worker": "point_worker", "host": "point_host", "device": "point_device",
                      "seconds": "point_seconds"}
STOP_WAIT_S = 10.0  # how long an interrupt waits for the running points to end their processes


@dataclass(frozen=True)
class PointOutcome:
    """What happened to one point in this invocation: ``done``, ``reused`` or ``failed``."""

    point: SweepPoint
    run_dir: Path
    status: str
    seconds: float
    error: str | None = None
    executed: Path | None = None
    worker: str | None = None


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
    scheduler: str | None = None,
    gpus_per_point: int = 0,
    threads: int | None = None,
    on_outcome: Callable[[PointOutcome, int, int], None] | None = None,
    progress: bool = False,
) -> SweepReport:
    """Run the grid's points not yet done into ``out_dir`` on a Dask cluster, then gather results.

    The cluster is ``workers`` local processes, or the one at ``scheduler`` (``fakd.study.cluster``);
    each point gets ``gpus_per_point`` GPUs, ``threads`` torch threads (None: one, so that parallel
    points do not oversubscribe the cores) and the tuned allocator settings. ``on_outcome(outcome,
    finished_count, total)`` is called in this process as each point ends; ``progress`` shows a bar
    (on a terminal) and the dashboard address. Nothing starts when every point is done already.
    """
    options = ClusterOptions(workers=workers, scheduler=scheduler, gpus_per_point=gpus_per_point, threads=threads)
    check_grid(grid)
    out_dir = check_output_folder(Path(out_dir), label="sweep folder")
    runs_dir = out_dir / RUNS_FOLDER
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
    if not pending:
        write_json_atomically(out_dir / SWEEP_FILE, _describe_sweep(grid, runs_dir))
    else:
        with open_cluster(options) as client:  # a cluster that cannot be had leaves nothing behind
            runs_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomically(out_dir / SWEEP_FILE, _describe_sweep(grid, runs_dir))
            check_shared_storage(client, out_dir=runs_dir, notebook=grid.notebook)
            check_gpu_workers(client, gpus_per_point=options.gpus_per_point)
            if progress:
                _announce(client, options)
            _run_points(client, grid, pending, runs_dir=runs_dir, options=options, record=record,
                        bar=PointProgress(len(pending), enabled=progress))
    return _finish(grid, out_dir, runs_dir, outcomes)


def finished_part(grid: SweepGrid, out_dir: Path) -> SweepGrid:
    """The grid reduced to its points already finished in ``out_dir`` (for rendering without training)."""
    runs_dir = Path(out_dir) / RUNS_FOLDER
    done = tuple(point for point in grid.points
                 if finished_run(grid.notebook, runs_dir / point.key, point.parameters) is not None)
    return dataclasses.replace(grid, points=done)


def _announce(client, options: ClusterOptions) -> None:
    where = options.scheduler or f"{options.workers} local worker process(es)"
    link = dashboard_link(client, embedded=options.scheduler is None)
    say(f"sweep: running on {where}" + (f"; Dask dashboard at {link}" if link else ""))


def _request(grid: SweepGrid, point: SweepPoint, *, runs_dir: Path, options: ClusterOptions,
             cancel_event: str) -> dict:
    """What a worker needs for one point: absolute paths (its working directory may differ)."""
    return {"notebook": str(Path(grid.notebook).resolve()), "run_dir": str((runs_dir / point.key).resolve()),
            "parameters": point.parameters, "cwd": os.getcwd(), "threads": options.threads,
            "cancel_event": cancel_event}


def _run_points(client, grid: SweepGrid, points: list[SweepPoint], *, runs_dir: Path, options: ClusterOptions,
                record: Callable[[PointOutcome], None], bar: PointProgress) -> None:
    """Hand points to the cluster as it has free slots (so no point waits behind another on a busy
    worker while one idles), report each as it ends; on an interrupt stop the running ones, re-raise."""
    from distributed import Event

    token = uuid.uuid4().hex[:8]
    cancel = Event(f"fakd-cancel-{token}", client=client)
    resources = {"GPU": options.gpus_per_point} if options.gpus_per_point else None
    submitted, waiting, finished = {}, list(points), queue.Queue()

    def submit_while_free() -> None:
        nonlocal waiting
        free = max(0, point_slots(client, gpus_per_point=options.gpus_per_point) - _running(submitted))
        for point in waiting[:free]:
            request = _request(grid, point, runs_dir=runs_dir, options=options, cancel_event=cancel.name)
            future = client.submit(run_point, request, key=f"{point.key}-{token}", resources=resources, pure=False)
            submitted[future] = point
            future.add_done_callback(finished.put)
        waiting = waiting[free:]
        bar.running(_running(submitted))

    try:
        for _ in range(len(points)):
            future = None
            while future is None:
                submit_while_free()
                future = _next_or_none(finished, timeout=1.0)
            outcome = _outcome_of(submitted[future], future, runs_dir=runs_dir)
            bar.finished(failed=outcome.status == "failed")
            record(outcome)
    except BaseException:
        cancel.set()  # running points end their processes (kernels included) and return
        _wait_quietly(list(submitted), timeout=STOP_WAIT_S)
        client.cancel(list(submitted), force=True)
        raise
    finally:
        bar.close()


def _running(submitted: dict) -> int:
    return sum(not future.done() for future in submitted)


def _next_or_none(finished: queue.Queue, *, timeout: float):
    try:
        return finished.get(timeout=timeout)
    except queue.Empty:
        return None


def _wait_quietly(futures: list, *, timeout: float) -> None:
    from distributed import wait

    try:
        wait(futures, timeout=timeout)
    except Exception:  # noqa: BLE001 - best effort while stopping: a timeout or a lost connection
        pass


def _outcome_of(point: SweepPoint, future, *, runs_dir: Path) -> PointOutcome:
    """A finished task as an outcome; a task that raised (e.g. its workers kept dying) is a failure."""
    run_dir = runs_dir / point.key
    if future.status != "finished":
        error = future.exception()
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        return PointOutcome(point=point, run_dir=run_dir, status="failed", seconds=0.0, error=message)
    result = future.result()
    executed = Path(result["executed"]) if result.get("executed") else None
    return PointOutcome(point=point, run_dir=run_dir, status=result["status"], seconds=result["seconds"],
                        error=result["error"], executed=executed, worker=result.get("worker"))


def _finish(grid: SweepGrid, out_dir: Path, runs_dir: Path, outcomes: list[PointOutcome]) -> SweepReport:
    """Gather the table and write the failure list (points that failed, or finished without results)."""
    order = {point.key: index for index, point in enumerate(grid.points)}
    outcomes = sorted(outcomes, key=lambda outcome: order[outcome.point.key])
    finished = [outcome for outcome in outcomes if outcome.status != "failed"]
    table, problems = gather_results([(outcome.point, outcome.run_dir) for outcome in finished], base=out_dir)
    table = _with_provenance(table, [outcome.run_dir for outcome in finished])
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


def _with_provenance(table: pd.DataFrame, run_dirs: list[Path]) -> pd.DataFrame:
    """The table with where each run ran (its ``fakd-point.json``; empty for runs made before it existed)."""
    if table.empty:
        return table
    records = {}
    for run_dir in run_dirs:
        try:
            records[Path(run_dir).name] = json.loads((Path(run_dir) / PROVENANCE_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            records[Path(run_dir).name] = {}
    for field, column in PROVENANCE_COLUMNS.items():
        table[column] = [records.get(run, {}).get(field) for run in table["run"]]
    return table


def print_outcome(outcome: PointOutcome, finished: int, total: int) -> None:
    """A progress line per point, for the command line."""
    width = len(str(total))
    status = {"done": "done  ", "reused": "reused", "failed": "FAILED"}[outcome.status]
    line = f"[{finished:>{width}}/{total}] {status} {outcome.point.key} ({outcome.seconds:.1f} s"
    line += f" on {outcome.worker})" if outcome.worker else ")"
    if outcome.error:
        line += f": {outcome.error}"
    say(line, error=outcome.status == "failed")
