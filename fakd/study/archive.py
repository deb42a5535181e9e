"""A study's finished runs kept as small files that can be committed, and put back on a new machine.

A long study outlives sessions and machines: run folders (checkpoints, logs) live on one machine,
while the archive is a folder inside the checkout (e.g. ``reports/cpu-runs``) that is committed as
points finish. ``fakd study --archive DIR`` copies each finished run there and, at start, restores
every archived run whose folder is missing, so a study on a fresh machine continues the grid
instead of restarting it (a restored run counts as finished when its parameters and notebook code
match, as for any finished run).

    DIR/<step>/                       a notebook step's run (teacher, ...)
    DIR/<step>/<point>/               a sweep step's point (students/<key>)

What is kept per run: the done marker, ``results.json``, ``per_image.csv``, the executed notebook
with its pictures dropped (text outputs kept), and the engine's ``config.yaml``, ``job.json``,
``metrics.jsonl``, ``summary.json``. The best checkpoint is kept only where a later step loads it:
the teacher, and the lowest seed of each student configuration (``keep_model``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fakd.atomic import write_bytes_atomically, write_json_atomically
from fakd.train.rundir import RUN_FILES as ENGINE_FILES
from fakd.study.notebook_runner import DONE_MARKER
from fakd.analysis.results import RESULTS_FILE

RUN_FILES = (DONE_MARKER, RESULTS_FILE, "per_image.csv")  # the done marker first: it is copied last
ENGINE_FOLDER = "train"  # where a training notebook keeps its engine run (fakd.train.runs)
BEST_CHECKPOINT = Path(ENGINE_FOLDER) / "checkpoints" / "best.pt"
DROPPED_OUTPUTS = ("image/png", "image/jpeg", "image/svg+xml", "text/html")


def _strip_pictures(source: Path, target: Path) -> None:
    """Copy an executed notebook without its pictures (and HTML tables): a few kB instead of MBs."""
    notebook = json.loads(source.read_text(encoding="utf-8"))
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data")
            if isinstance(data, dict):
                for kind in DROPPED_OUTPUTS:
                    data.pop(kind, None)
    write_json_atomically(target, notebook)


def _copy(source: Path, target: Path) -> None:
    write_bytes_atomically(target, source.read_bytes())


def archive_run(run_dir: Path, target: Path, *, keep_model: bool) -> Path:
    """Copy a finished run's small files (and its best checkpoint if ``keep_model``) to ``target``.

    The done marker is copied last, so an archive interrupted half-way is not taken for finished.
    """
    run_dir, target = Path(run_dir), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for notebook in run_dir.glob("*.ipynb"):
        _strip_pictures(notebook, target / notebook.name)
    for name in ENGINE_FILES:
        if (run_dir / ENGINE_FOLDER / name).is_file():
            _copy(run_dir / ENGINE_FOLDER / name, target / ENGINE_FOLDER / name)
    if keep_model and (run_dir / BEST_CHECKPOINT).is_file():
        _copy(run_dir / BEST_CHECKPOINT, target / BEST_CHECKPOINT)
    for name in reversed(RUN_FILES):  # the marker last
        if (run_dir / name).is_file():
            _copy(run_dir / name, target / name)
    return target


def restore_runs(archive: Path, runs: Path) -> list[Path]:
    """Copy every archived run (a folder holding a done marker) whose run folder is missing.

    A run folder that exists is never touched: it may hold a newer or unfinished run of its own.
    Returns the run folders restored.
    """
    archive, runs = Path(archive), Path(runs)
    restored = []
    for marker in sorted(archive.rglob(DONE_MARKER)):
        relative = marker.parent.relative_to(archive)
        destination = runs / relative
        if destination.exists():
            continue
        temporary = destination.with_name(f".{destination.name}.restoring")
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.copytree(marker.parent, temporary)
        temporary.rename(destination)
        restored.append(destination)
    return restored


LOCATION_PARAMETERS = ("data_root", "teacher_run_dir")


def recorded_locations(archive: Path) -> dict[str, str]:
    """The data root and teacher run folder the archived runs were made with (their markers' parameters).

    A run is reused only by a study that passes the same parameters, and these two are absolute paths
    of the machine that ran it, so a study re-rendered from the archive must be given the same
    ``--data-root`` and ``--runs`` (the teacher run folder is ``<runs>/teacher``).
    """
    found: dict[str, str] = {}
    for marker in sorted(Path(archive).rglob(DONE_MARKER)):
        try:
            parameters = json.loads(marker.read_text()).get("parameters", {})
        except (OSError, ValueError, AttributeError):
            continue
        for name in LOCATION_PARAMETERS:
            if name in parameters:
                found.setdefault(name, str(parameters[name]))
    return found


def location_mismatch(archive: Path, *, runs_dir: Path, data_root: str | None) -> str | None:
    """A line saying which paths to give to reuse the archived runs, or None when these are the ones."""
    recorded = recorded_locations(archive)
    here = {"data_root": data_root, "teacher_run_dir": str((Path(runs_dir) / "teacher").resolve())}
    if all(here[name] == value for name, value in recorded.items()):
        return None
    runs = Path(recorded["teacher_run_dir"]).parent if "teacher_run_dir" in recorded else runs_dir
    data = f"--data-root {recorded['data_root']} " if "data_root" in recorded else ""
    return (f"study: the runs in {archive} were made with {data}--runs {runs}; with other paths they are not "
            f"reused and train again (a run's identity includes these paths): give those two to re-render from it")
