"""Guarantee: a run folder has one owner. A second writer (another ``--resume``, an orphaned worker)
fails at once with one line naming the holder's pid; the lock dies with its process, kill -9 included."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from guarantees_support import REPO, assert_one_line_error, run_fakd, snapshot

from fakd.errors import FakdError
from fakd.train.rundir import RunDirectory

SMOKE_STUDENT = ["train", "--role", "student", "--config", "smoke", "--set", "student.iterations=2", "--no-progress"]

# A process that owns a run folder (as a training process does) until it is killed.
HOLDER = textwrap.dedent("""
    import sys, time
    from fakd.train.rundir import RunDirectory
    run = RunDirectory(sys.argv[1])
    run.prepare(config={"seed": 0}, job={"role": "student", "model": "x"}, resume=True, overwrite=False)
    print("HOLDING", flush=True)
    time.sleep(600)
""")


@pytest.fixture
def holder(tmp_path):
    """A child process holding the lock of tmp_path/run; yields (run folder, child)."""
    folder = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert child.stdout.readline().strip() == "HOLDING"
        yield folder, child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)


@pytest.mark.slow
def test_a_second_writer_fails_at_once_naming_the_holder(holder):
    folder, child = holder
    before = snapshot(folder)
    for extra in (["--resume"], ["--overwrite"]):
        result = run_fakd(*SMOKE_STUDENT, "--out", folder, *extra)
        assert_one_line_error(result, f"in use by process {child.pid}")
    assert snapshot(folder) == before, "the second writer changed nothing"


def test_the_lock_is_released_when_its_process_is_killed(holder):
    folder, child = holder
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    result = run_fakd(*SMOKE_STUDENT, "--out", folder, "--overwrite")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [record["iteration"] for record in records] == [1, 2]


def test_in_one_process_a_second_run_directory_shares_the_lock(tmp_path):
    """A notebook cell run again in the same kernel is not locked out by its own earlier run."""
    first = RunDirectory(tmp_path / "run")
    first.prepare(config={"seed": 0}, job={"role": "student", "model": "x"}, resume=False, overwrite=False)
    second = RunDirectory(tmp_path / "run")
    assert second.prepare(config={"seed": 0}, job={"role": "student", "model": "x"}, resume=True, overwrite=False)
    assert (tmp_path / "run" / "run.lock").read_text().strip() == str(os.getpid())


def test_a_refused_prepare_releases_the_lock(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.prepare(config={"seed": 0}, job={"role": "student", "model": "x"}, resume=False, overwrite=False)
    run.release()
    with pytest.raises(FakdError, match="already holds a run"):
        RunDirectory(tmp_path / "run").prepare(config={"seed": 0}, job={"role": "student", "model": "x"},
                                               resume=False, overwrite=False)
    probe = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import fcntl, sys
        with open(sys.argv[1], "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    """), str(tmp_path / "run" / "run.lock")], capture_output=True, text=True)
    assert probe.returncode == 0, "the lock was free again: " + probe.stderr
