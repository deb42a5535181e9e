"""A study's finished runs kept as small files that can be committed, and put back on a new machine.

A long study outlives sessions and machines: run folders (checkpoints, logs) live on one machine,
while the archive is a folder inside the checkout (e.g. ``reports/cpu-runs``) that is committed as
points finish. ``fakd study --archive DIR`` copies each finished run there and, at start, restores
every archived run whose folder is missing, so a study on a fresh machine continues the grid
instead of restarting it (a restored run counts as finished when its parameters and notebook code
match, as for any finished run). A run's identity holds no path (``fakd.study.identity``), so the archive,
the runs and the data may each lie in another folder or on another machine.

    DIR/<step>/                       a notebook step's run (teacher, ...)
    DIR/<step>/<point>/               a sweep step's point (students/<key>)

What is kept per run: the done marker, ``results.json``, ``per_image.csv``, the executed notebook
with its pictures dropped (text outputs kept), and the engine's ``config.yaml``, ``job.json``,
``metrics.jsonl``, ``summary.json``. The best checkpoint is kept only where a later step loads it:
the teacher, and the lowest seed of each student configuration (``keep_model``).
"""

from __future__ import annotations

import json
import re
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
# What the machine's folders become in archived text: a record that can be read and continued anywhere.
RUNS_PLACEHOLDER, DATA_PLACEHOLDER = "<runs>", "<data root>"
_SOURCE_PATH = re.compile(r"/[^\s\"'<>:]*/(fakd/[\w/]+\.py)")


def scrub_text(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each of the machine's folders (keys, longest first) replaced by its placeholder, and a
    path into fakd's own source (a warning's file) cut to ``fakd/...``."""
    for old, new in sorted(replacements.items(), key=lambda item: -len(item[0])):
        text = text.replace(old, new)
    return _SOURCE_PATH.sub(r"\1", text)


def scrub_folder(folder: Path, replacements: dict[str, str]) -> None:
    """``scrub_text`` over every text file (HTML, Markdown, JSON, CSV, notebooks) in ``folder``."""
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and path.suffix in (".html", ".md", ".json", ".csv", ".ipynb", ".yaml", ".jsonl"):
            text = path.read_text(encoding="utf-8")
            updated = scrub_text(text, replacements)
            if updated != text:
                write_bytes_atomically(path, updated.encode("utf-8"))


def path_free_notebook(text: str, replacements: dict[str, str]) -> dict:
    """An executed notebook (JSON text) with the machine's folders as placeholders and papermill's record of
    where it read and wrote the notebook reduced to the file names."""
    notebook = json.loads(scrub_text(text, replacements))
    papermill = notebook.get("metadata", {}).get("papermill", {})
    for key in ("input_path", "output_path"):
        if isinstance(papermill.get(key), str):
            papermill[key] = Path(papermill[key]).name
    return notebook


def _strip_pictures(source: Path, target: Path, replacements: dict[str, str]) -> None:
    """Copy an executed notebook without its pictures (and HTML tables): a few kB instead of MBs."""
    notebook = path_free_notebook(source.read_text(encoding="utf-8"), replacements)
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data")
            if isinstance(data, dict):
                for kind in DROPPED_OUTPUTS:
                    data.pop(kind, None)
    write_json_atomically(target, notebook)


def _copy(source: Path, target: Path, replacements: dict[str, str] | None = None) -> None:
    data = source.read_bytes()
    if replacements:
        data = scrub_text(data.decode("utf-8"), replacements).encode("utf-8")
    write_bytes_atomically(target, data)


def archive_run(run_dir: Path, target: Path, *, keep_model: bool, replacements: dict[str, str] | None = None) -> Path:
    """Copy a finished run's small files (and its best checkpoint if ``keep_model``) to ``target``; in the text
    files, each folder of ``replacements`` (e.g. the runs folder, the data root) becomes its placeholder.

    The done marker is copied last, so an archive interrupted half-way is not taken for finished.
    """
    run_dir, target, replacements = Path(run_dir), Path(target), dict(replacements or {})
    target.mkdir(parents=True, exist_ok=True)
    for notebook in run_dir.glob("*.ipynb"):
        _strip_pictures(notebook, target / notebook.name, replacements)
    for name in ENGINE_FILES:
        if (run_dir / ENGINE_FOLDER / name).is_file():
            _copy(run_dir / ENGINE_FOLDER / name, target / ENGINE_FOLDER / name, replacements)
    if keep_model and (run_dir / BEST_CHECKPOINT).is_file():
        _copy(run_dir / BEST_CHECKPOINT, target / BEST_CHECKPOINT)
    for name in reversed(RUN_FILES):  # the marker last
        if (run_dir / name).is_file():
            _copy(run_dir / name, target / name, replacements)
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
