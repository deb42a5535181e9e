"""One sweep point on a Dask worker.

``run_point`` is the Dask task: it starts ``python -m fakd.study.worker`` (this module's ``main``) in
the point's working directory, which runs the notebook with papermill, and waits for it. The point
gets a process of its own so that it can be stopped: when the sweep is cancelled (the Dask ``Event``
named in the request is set) the task ends it, its kernel included. When the Dask worker itself dies
(killed, out of memory, node lost) the point process notices its parent is gone and ends its kernel
and itself, so the scheduler can re-run the point elsewhere without two writers in one run folder.

The task records where the point ran (worker address, host, device, wall time) in the run folder's
``fakd-point.json``; the done marker ``fakd-done.json`` stays the notebook runner's alone.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

PROVENANCE_FILE = "fakd-point.json"
POLL_S = 0.5
GPU_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/kfd")  # NVIDIA, AMD ROCm


def end_process_tree(pid: int) -> None:
    """Kill ``pid`` and every process below it (the kernel runs in a session of its own)."""
    import psutil

    try:
        root = psutil.Process(pid)
        family = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=5)


def _point_device(parameters: dict) -> str:
    """The device the point's notebook trains on: its ``device`` parameter, else CUDA when present
    (torch is imported only on a machine with a GPU driver: the import competes with the point)."""
    name = parameters.get("device")
    if name not in (None, "", "auto"):
        return str(name)
    if not any(Path(driver).exists() for driver in GPU_DRIVER_PATHS):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _wait(child: subprocess.Popen, cancel_event: str | None) -> bool:
    """Wait for the point process; False (after ending it) when the sweep is cancelled meanwhile."""
    from distributed import Event

    event = Event(cancel_event) if cancel_event else None
    while True:
        try:
            child.wait(timeout=POLL_S)
            return True
        except subprocess.TimeoutExpired:
            pass
        if event is not None and event.is_set():
            end_process_tree(child.pid)
            return False


def run_point(request: dict) -> dict:
    """The Dask task: run one point in its own process; a notebook error is a result, not an exception."""
    from distributed import get_worker

    from fakd.atomic import write_json_atomically
    from fakd.study.environment import kernel_environment

    worker = get_worker()
    run_dir = Path(request["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / PROVENANCE_FILE).unlink(missing_ok=True)
    environment = kernel_environment(threads=request.get("threads") or 1)
    cwd = request.get("cwd") if request.get("cwd") and Path(request["cwd"]).is_dir() else None
    started = time.monotonic()
    # Output to files, not pipes: a chatty point cannot block on a full pipe while this task polls.
    with tempfile.TemporaryFile("w+") as output, tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen([sys.executable, "-m", "fakd.study.worker"], stdin=subprocess.PIPE,
                                 stdout=output, stderr=errors, text=True, cwd=cwd, env={**os.environ, **environment})
        child.stdin.write(json.dumps({**request, "environment": environment}))
        child.stdin.close()
        provenance = {"worker": worker.address, "host": socket.gethostname(),
                      "device": _point_device(request["parameters"])}
        if not _wait(child, request.get("cancel_event")):
            return {"status": "cancelled", "seconds": time.monotonic() - started, "error": "cancelled",
                    "executed": None, **provenance}
        result = _child_result(child, output=output, errors=errors, started=started)
    provenance["seconds"] = round(time.monotonic() - started, 3)
    if result["status"] == "done":
        write_json_atomically(run_dir / PROVENANCE_FILE, {
            **provenance, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return {**result, **provenance}


def _child_result(child: subprocess.Popen, *, output, errors, started: float) -> dict:
    """The JSON result the point process printed last; a crash becomes a failure record."""
    output.seek(0)
    errors.seek(0)
    lines = output.read().strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        detail = (errors.read().strip().splitlines() or ["no output"])[-1]
        return {"status": "failed", "seconds": time.monotonic() - started, "executed": None,
                "error": f"point process exited with code {child.returncode}: {detail}"}


def execute(request: dict) -> dict:
    """Run one point's notebook; a failing notebook becomes a result record, not an exception."""
    from fakd.study.notebook_runner import KernelSettings, NotebookFailed, run_notebook

    started = time.monotonic()
    try:
        run = run_notebook(Path(request["notebook"]), Path(request["run_dir"]), request["parameters"],
                           reuse=False, kernel=KernelSettings(environment=request["environment"]))
    except NotebookFailed as failure:
        return {"status": "failed", "seconds": time.monotonic() - started, "error": failure.error,
                "executed": str(failure.executed)}
    return {"status": "done", "seconds": run.seconds, "error": None, "executed": str(run.executed)}


def _end_with_parent() -> None:
    """When the process that started this one dies, end this one's kernel and this process."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_S)
        end_process_tree_below(os.getpid())
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="fakd-parent-watch").start()


def end_process_tree_below(pid: int) -> None:
    """Kill every process below ``pid``, not ``pid`` itself."""
    import psutil

    for child in psutil.Process(pid).children(recursive=False):
        end_process_tree(child.pid)


def main() -> int:
    """The point process: a JSON request on stdin, the JSON result as the last line of stdout."""
    _end_with_parent()
    result = execute(json.loads(sys.stdin.read()))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
