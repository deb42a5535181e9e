"""Sweeps on Dask with real processes on 127.0.0.1: the embedded cluster gives the rows the notebook
runner gives alone; a cluster of `dask scheduler` + two `dask worker` processes runs every point
(recorded worker addresses) and survives SIGKILL of a worker mid-point (each point once in the
table, no orphan kernel); an unanswering scheduler is one line and exit 2 within seconds; SIGTERM of
`fakd sweep` ends its workers and kernels and the next run resumes; mistakes are refused before
anything runs."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from test_study_runs import write_notebook

from fakd.analysis.results import gather_results
from fakd.cli import main
from fakd.errors import FakdError
from fakd.study.cluster import ClusterOptions, open_cluster
from fakd.study.grid import load_grid
from fakd.study.locations import resolve_grid
from fakd.study.notebook_runner import KernelSettings, run_notebook
from fakd.study.sweep import PROVENANCE_COLUMNS, run_sweep

DASK = str(Path(sys.executable).parent / "dask")
PARAMETERS = 'run_dir = ""\nseed = 0\nhold = ""  # while this file exists, the point waits\n'
HOLD_AND_SCORE = """\
import json, os, pathlib, time
folder = pathlib.Path(run_dir)
with open(folder / "executions.txt", "a") as counter:
    counter.write(f"{os.getpid()}\\n")
while hold and pathlib.Path(hold).exists() and seed > 0:
    time.sleep(0.2)
json.dump({"score": seed * 3 + 1, "threads": os.environ.get("OMP_NUM_THREADS")}, open(folder / "results.json", "w"))
"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def wait_until(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sweep_command(grid_path, out, *extra):
    return [sys.executable, "-m", "fakd.cli", "sweep", str(grid_path), "--out", str(out), *extra]


def kernel_pids(out: Path, key: str) -> list[int]:
    path = out / "runs" / key / "executions.txt"
    return [int(line) for line in path.read_text().split()] if path.is_file() else []


@pytest.fixture
def held_grid(tmp_path):
    """A grid of seeds 0–2 whose points with seed > 0 wait while the file ``hold`` exists."""
    notebook = write_notebook(tmp_path / "held.ipynb", PARAMETERS, HOLD_AND_SCORE)
    hold = tmp_path / "hold"
    grid_path = tmp_path / "grid.yaml"
    grid_path.write_text(f"notebook: {notebook}\nparameters: {{hold: {hold}}}\ngrid:\n  seed: [0, 1, 2]\n")
    return grid_path, hold


@pytest.mark.slow
def test_embedded_cluster_gives_the_rows_of_the_notebook_runner(tmp_path, held_grid):
    grid_path, _ = held_grid
    grid = load_grid(grid_path)
    report = run_sweep(grid, tmp_path / "sweep", workers=2)
    assert report.ok and [outcome.status for outcome in report.outcomes] == ["done"] * 3

    # Reference: each point run by the notebook runner alone (no Dask), gathered the same way.
    runs = []
    for point in grid.points:
        run_dir = tmp_path / "reference" / "runs" / point.key
        run_notebook(grid.notebook, run_dir, point.parameters, kernel=KernelSettings(environment={"OMP_NUM_THREADS": "1"}))
        runs.append((point, run_dir))
    reference, problems = gather_results(runs, base=tmp_path / "reference")
    table = pd.read_csv(tmp_path / "sweep" / "results.csv")
    assert not problems
    assert list(table.columns) == [*reference.columns, *PROVENANCE_COLUMNS.values()]
    assert table[list(reference.columns)].astype(str).equals(reference.astype(str))
    assert set(table["point_host"]) == {socket.gethostname()} and set(table["point_device"]) == {"cpu"}
    assert table["point_worker"].str.startswith("tcp://127.0.0.1:").all()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays dead)."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask-logs")
    processes = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                  env=ENV, stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "w"))]
    for name in ("w0", "w1"):
        processes.append(subprocess.Popen(
            [DASK, "worker", address, "--name", name, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
             "--no-dashboard"], env=ENV, stdout=subprocess.DEVNULL, stderr=open(logs / f"{name}.log", "w")))
    try:
        client = wait_until(lambda: _client_or_none(Client, address), timeout=60, what="the scheduler")
        with client:
            client.wait_for_workers(2, timeout=90)
            workers = {info["name"]: worker for worker, info in client.scheduler_info(n_workers=-1)["workers"].items()}
            pids = dict(zip(("w0", "w1"), (process.pid for process in processes[1:])))
        yield {"address": address, "workers": workers, "pids": pids}
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _client_or_none(client_class, address):
    try:
        return client_class(address, timeout=2, set_as_default=False)
    except OSError:
        return None


@pytest.mark.slow
def test_existing_cluster_runs_every_point_on_its_workers(tmp_path, held_grid, dask_cluster):
    grid_path, _ = held_grid  # no hold file: the points do not wait
    out = tmp_path / "sweep"
    completed = subprocess.run(sweep_command(grid_path, out, "--scheduler", dask_cluster["address"]),
                               env=ENV, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    table = pd.read_csv(out / "results.csv")
    assert table["seed"].tolist() == [0, 1, 2] and table["score"].tolist() == [1, 4, 7]
    assert set(table["point_worker"]) <= set(dask_cluster["workers"].values())
    assert (table["threads"] == 1).all()  # one torch thread per point unless --threads


@pytest.mark.slow
def test_killed_worker_point_reruns_elsewhere_and_counts_once(tmp_path, held_grid, dask_cluster):
    grid_path, hold = held_grid
    hold.touch()
    out = tmp_path / "sweep"
    sweep = subprocess.Popen(sweep_command(grid_path, out, "--scheduler", dask_cluster["address"]),
                             env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    grid = load_grid(grid_path)
    keys = [point.key for point in grid.points]
    try:
        # Both workers hold a point (seed 0 never waits): kill the worker running seed 1 or 2.
        started = wait_until(lambda: [key for key in keys[1:] if kernel_pids(out, key)] if sum(
            bool(kernel_pids(out, key)) for key in keys[1:]) == 2 else None, timeout=300, what="two held points")
        victim_key = started[0]
        kernel = kernel_pids(out, victim_key)[0]
        worker_pid = next(parent.pid for parent in psutil.Process(kernel).parents()
                          if parent.pid in dask_cluster["pids"].values())
        survivor = next(name for name, pid in dask_cluster["pids"].items() if pid != worker_pid)
        os.kill(worker_pid, signal.SIGKILL)
        wait_until(lambda: not psutil.pid_exists(kernel), timeout=15, what="the orphaned kernel to end")
        hold.unlink()
        stdout, stderr = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, stderr
    table = pd.read_csv(out / "results.csv")
    assert table["run"].tolist() == keys  # every point exactly once
    assert table["score"].tolist() == [1, 4, 7]
    ran_on = dict(zip(table["run"], table["point_worker"]))
    assert ran_on[victim_key] == dask_cluster["workers"][survivor]
    assert len(kernel_pids(out, victim_key)) == 2  # it did run twice: once killed, once to the end
    assert json.loads((out / "failures.json").read_text()) == []


@pytest.mark.slow
def test_unanswering_scheduler_is_one_line_and_exit_2_within_seconds(tmp_path, held_grid):
    grid_path, _ = held_grid
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()  # the connection attempt alone (imports can be slow on a busy machine)
        with pytest.raises(FakdError, match=f"cannot reach the Dask scheduler at {address} within 5 s"):
            with open_cluster(ClusterOptions(scheduler=address)):
                pass
        assert time.monotonic() - started < 15
        completed = subprocess.run(sweep_command(grid_path, tmp_path / "out", "--scheduler", address),
                                   env=ENV, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 2
    errors = completed.stderr.strip().splitlines()
    assert len(errors) == 1 and "cannot reach the Dask scheduler" in errors[0]
    assert not (tmp_path / "out").exists()  # nothing left behind


@pytest.mark.slow
def test_sigterm_ends_workers_and_kernels_and_the_next_run_resumes(tmp_path, held_grid):
    grid_path, hold = held_grid
    grid_path.write_text(grid_path.read_text().replace("seed: [0, 1, 2]", "seed: [0, 1]"))  # fewer kernels
    hold.touch()
    out = tmp_path / "sweep"
    sweep = subprocess.Popen(sweep_command(grid_path, out, "--workers", "2"), env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    grid = load_grid(grid_path)
    keys = [point.key for point in grid.points]
    try:
        wait_until(lambda: all(kernel_pids(out, key) for key in keys), timeout=300, what="all points to start")
        wait_until(lambda: (out / "runs" / keys[0] / "fakd-done.json").is_file(), timeout=60, what="seed 0")
        family = psutil.Process(sweep.pid).children(recursive=True)
        kernels = [kernel_pids(out, keys[1])[0]]
        assert set(kernels) <= {process.pid for process in family}
        sweep.send_signal(signal.SIGTERM)
        _, stderr = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 130 and "interrupted" in stderr
    gone, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, f"orphans left: {alive}"

    hold.unlink()
    completed = subprocess.run(sweep_command(grid_path, out, "--workers", "2"), env=ENV, capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "1 run, 1 reused, 0 failed" in completed.stdout
    assert pd.read_csv(out / "results.csv")["score"].tolist() == [1, 4]


def test_mistakes_are_refused_before_anything_runs(tmp_path, held_grid, capsys):
    grid_path, _ = held_grid
    taken = tmp_path / "taken.txt"
    taken.write_text("the user's file")
    cases = {
        "is a file, not a folder": ["--out", str(taken)],
        "cannot write into sweep folder": ["--out", "/proc/fakd-sweep-test"],
    }
    for message, arguments in cases.items():
        assert main(["sweep", str(grid_path), *arguments]) == 2
        errors = capsys.readouterr().err.strip().splitlines()
        assert len(errors) == 1 and message in errors[0]
    assert taken.read_text() == "the user's file"

    broken = tmp_path / "broken.yaml"
    broken.write_text("notebook: held.ipynb\ngrid:\n  seed: [0, 1\n  other: {\n")
    assert main(["sweep", str(broken), "--out", str(tmp_path / "out")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "is not valid YAML" in errors[0] and "line" in errors[0]
    broken.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["sweep", str(broken), "--out", str(tmp_path / "out")]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_point_folders_are_named_by_what_they_compute(tmp_path):
    """Finished runs of a running study are reused only if a point keeps its folder name: the name holds the
    varied values and a digest of the point's identity — the teacher by its checkpoint's bytes, not its folder
    (the names recorded from the smoke grid for a teacher that has no checkpoint yet)."""
    def keys(teacher_run_dir):
        grid = load_grid(resolve_grid("smoke")).with_fixed({"teacher_run_dir": str(teacher_run_dir)})
        return [point.key for point in grid.points]

    assert keys("/nowhere/teacher") == ["method-none_seed-0-78219109", "method-fakd_seed-0-1ab07555"]
    for name, weights in (("here", b"teacher"), ("moved", b"teacher"), ("other", b"another teacher")):
        (tmp_path / name / "train" / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "train" / "checkpoints" / "best.pt").write_bytes(weights)
    assert keys(tmp_path / "here") == keys(tmp_path / "moved") != keys(tmp_path / "other")
    assert keys(tmp_path / "here")[0].startswith("method-none_seed-0-") and keys(tmp_path / "here") != keys("/nowhere")