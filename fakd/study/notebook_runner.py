"""Execute one parameterized notebook with papermill into its run directory, or reuse a finished run.

A run directory holds the executed notebook (``<notebook name>.ipynb``), whatever the notebook wrote
there (``results.json``, figures, checkpoints) and a done marker ``fakd-done.json`` written atomically
last, recording the parameters by what they compute (``fakd.study.identity``: the data, the teacher, the sweep
by content, never a path) and the notebook's code hash. A later call whose parameters compute the same — from
any folder, on any machine — with unchanged code returns the finished run without starting a kernel.

The kernel is always this interpreter (``sys.executable -m ipykernel_launcher``), whatever kernelspecs
Jupyter finds elsewhere on the machine, so notebooks see the installed ``fakd`` of this environment.
"""

import json
import logging
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import zmq
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec

from fakd.atomic import write_json_atomically
from fakd.errors import FakdError
from fakd.study.identity import identity_digest, run_identity
from fakd.study.parameters import check_parameters, normalize_parameters, notebook_digest

DONE_MARKER = "fakd-done.json"
FAILED_MARKER = "fakd-failed.json"
RUN_DIR_PARAMETER = "run_dir"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class NotebookRun:
    """A finished run: where it lives and whether this call executed it or found it done."""

    notebook: Path
    run_dir: Path
    executed: Path
    parameters: dict
    reused: bool
    seconds: float


class NotebookFailed(FakdError):
    """A cell raised (or the kernel died): the executed notebook with the error is kept at ``executed``."""

    def __init__(self, message: str, *, executed: Path, error: str):
        super().__init__(message)
        self.executed = executed
        self.error = error


@dataclass
class KernelSettings:
    """How to start the kernel: extra environment variables (thread counts, allocator) and limits."""

    environment: dict = field(default_factory=dict)
    start_timeout: float = 120.0
    cell_timeout: float | None = None  # seconds per cell; None = no limit (training cells are long)


def current_interpreter_kernel(environment: dict | None = None) -> type[AsyncKernelManager]:
    """A kernel manager class that starts ipykernel with ``sys.executable`` and ``environment`` added."""
    spec = KernelSpec(
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name=f"Python 3 ({sys.executable})",
        language="python",
        env={key: str(value) for key, value in (environment or {}).items()},
        metadata={"supported_encryption": ["curve"]},  # as ipykernel's own kernelspec declares
    )

    class CurrentInterpreterKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            if zmq.has("curve"):
                self.transport_encryption = "auto"  # local sockets encrypted, as Jupyter's own servers do

        @property
        def kernel_spec(self) -> KernelSpec:
            return spec

    return CurrentInterpreterKernelManager


def executed_path(notebook: Path, run_dir: Path) -> Path:
    """Where the executed copy of ``notebook`` goes inside ``run_dir``."""
    return Path(run_dir) / Path(notebook).name


def finished_run(notebook: Path, run_dir: Path, parameters: dict, *, library: str | None = None) -> NotebookRun | None:
    """The finished run in ``run_dir`` if its marker matches these parameters and this notebook code (and,
    with ``library``, was made by the library with this digest)."""
    marker_path = Path(run_dir) / DONE_MARKER
    executed = executed_path(notebook, run_dir)
    if not (marker_path.is_file() and executed.is_file()):
        return None
    try:
        marker = json.loads(marker_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if marker.get("parameters_sha256") != identity_digest(parameters):
        return None
    if marker.get("notebook_sha256") != notebook_digest(notebook):
        return None
    if library is not None and marker.get("library_sha256") != library:
        return None
    return NotebookRun(notebook=Path(notebook), run_dir=Path(run_dir), executed=executed,
                       parameters=parameters, reused=True, seconds=float(marker.get("seconds", 0.0)))


def _failure_message(error: BaseException) -> str:
    """One line naming the error: the cell's exception for a failed cell, else the exception itself."""
    name = getattr(error, "ename", None)
    value = getattr(error, "evalue", None)
    text = f"{name}: {value}" if name else f"{type(error).__name__}: {error}"
    return _ANSI.sub("", text).strip().splitlines()[0] if text.strip() else type(error).__name__


class _DropUnknownParameterWarnings(logging.Filter):
    """papermill's own parameter inspection misreads annotated cells (``x: str | None = None``) and
    warns about parameters that exist; fakd checks parameters itself (``check_parameters``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


def _silence_papermill_parameter_warnings() -> None:
    logger = logging.getLogger("papermill")
    if not any(isinstance(existing, _DropUnknownParameterWarnings) for existing in logger.filters):
        logger.addFilter(_DropUnknownParameterWarnings())


def run_notebook(
    notebook: Path,
    run_dir: Path,
    parameters: dict | None = None,
    *,
    reuse: bool = True,
    library: str | None = None,
    kernel: KernelSettings | None = None,
    progress: bool = False,
) -> NotebookRun:
    """Execute ``notebook`` with ``parameters`` (plus ``run_dir``) into ``run_dir``.

    Parameters are checked against the notebook's parameters cell first (FakdError on an unknown name or
    a wrongly typed value). With ``reuse`` a finished run with the same parameters and code is returned
    as is; with ``library`` (``fakd.study.parameters.library_digest()``) only one made by the same library
    code, which the marker then records. A failing cell raises ``NotebookFailed``; the executed notebook with the traceback stays in
    ``run_dir`` and ``fakd-failed.json`` records the error.
    """
    _silence_papermill_parameter_warnings()
    notebook, run_dir = Path(notebook), Path(run_dir)
    parameters = normalize_parameters(parameters or {})
    if RUN_DIR_PARAMETER in parameters:
        raise FakdError(f"pass the run directory as run_dir=..., not among the parameters of {notebook.name}")
    declared = check_parameters(notebook, parameters)
    if RUN_DIR_PARAMETER not in declared:
        raise FakdError(f"notebook {notebook.name} declares no 'run_dir' parameter (every fakd notebook must)")
    if reuse:
        done = finished_run(notebook, run_dir, parameters, library=library)
        if done is not None:
            return done

    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (DONE_MARKER, FAILED_MARKER):
        (run_dir / stale).unlink(missing_ok=True)
    executed = executed_path(notebook, run_dir)
    started = time.monotonic()
    _execute(notebook, executed, parameters={**parameters, RUN_DIR_PARAMETER: str(run_dir.resolve())},
             kernel=kernel or KernelSettings(), progress=progress, failed_marker=run_dir / FAILED_MARKER,
             started=started, marked_parameters=parameters)
    seconds = time.monotonic() - started
    write_json_atomically(run_dir / DONE_MARKER, default=str, content={
        "notebook": notebook.name,
        "notebook_sha256": notebook_digest(notebook),
        "parameters": run_identity(parameters),  # what was computed, by content: no path of this machine
        "parameters_sha256": identity_digest(parameters),
        **({"library_sha256": library} if library is not None else {}),
        "seconds": round(seconds, 3),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    })
    return NotebookRun(notebook=notebook, run_dir=run_dir, executed=executed, parameters=parameters,
                       reused=False, seconds=seconds)


def _execute(notebook: Path, executed: Path, *, parameters: dict, kernel: KernelSettings, progress: bool,
             failed_marker: Path, started: float, marked_parameters: dict) -> None:
    """papermill ``notebook`` → ``executed``; a failing cell, a dead or hung kernel writes ``failed_marker``
    and raises ``NotebookFailed``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=progress,
            start_timeout=kernel.start_timeout,
            execution_timeout=kernel.cell_timeout,
            kernel_manager_class=current_interpreter_kernel(kernel.environment),
        )
    except (PapermillExecutionError, RuntimeError, TimeoutError) as error:
        # PapermillExecutionError: a cell raised; RuntimeError/TimeoutError: the kernel died or hung
        # (nbclient's DeadKernelError and CellTimeoutError derive from them).
        message = _failure_message(error)
        write_json_atomically(failed_marker, default=str, content={
            "notebook": notebook.name, "parameters": marked_parameters, "error": message,
            "cell": getattr(error, "exec_count", None), "seconds": round(time.monotonic() - started, 3),
            "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        raise NotebookFailed(f"notebook {notebook.name} failed: {message} (executed notebook kept at {executed})",
                             executed=executed, error=message) from None
