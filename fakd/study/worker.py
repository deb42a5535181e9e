"""One sweep point in its own process: ``python -m fakd.study.worker`` reads a JSON request on stdin
(notebook, run_dir, parameters, environment), runs the notebook and prints a JSON result as the last
line of stdout.

A fresh interpreter per point (rather than a multiprocessing pool) works the same from a script
without a ``__main__`` guard, from a notebook, and from the ``fakd`` command.
"""

import json
import sys
import time
from pathlib import Path


def execute(request: dict) -> dict:
    """Run one point; a failing notebook becomes a result record, not an exception."""
    from fakd.study.notebook_runner import KernelSettings, NotebookFailed, run_notebook

    started = time.monotonic()
    try:
        run = run_notebook(Path(request["notebook"]), Path(request["run_dir"]), request["parameters"],
                           reuse=False, kernel=KernelSettings(environment=request["environment"]))
    except NotebookFailed as failure:
        return {"status": "failed", "seconds": time.monotonic() - started, "error": failure.error,
                "executed": str(failure.executed)}
    return {"status": "done", "seconds": run.seconds, "error": None, "executed": str(run.executed)}


def main() -> int:
    result = execute(json.loads(sys.stdin.read()))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
