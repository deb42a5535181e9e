"""Archives made while a run's identity held paths: their points renamed and their records made path-free.

Until 2026-12-08 a finished run's marker recorded its parameters as given — ``data_root`` and
``teacher_run_dir`` as absolute paths of the machine that ran it — and a sweep point's folder name ended in
a digest of them, so an archive continued only at the same paths. ``migrate_archive`` brings such an archive
to today's identity (``fakd.study.identity``) in place:

- each marker's parameters become their identity (the data by content, the teacher by its checkpoint's
  SHA-256, which the archive's own ``teacher`` step holds), and a point's folder takes the key that identity
  gives (the same readable part, a new digest);
- the machine's paths in the archived small files (summaries, job records, executed notebooks) become
  ``<runs>/…`` and ``<data root>``, and a result row's ``teacher_run`` the path relative to its run folder.

A marker already in today's form is left as it is, so migrating twice changes nothing. Run on the data the
runs were trained on (``data_root``): the data's identity is its content.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from fakd.atomic import write_json_atomically, write_text_atomically
from fakd.errors import FakdError
from fakd.study.archive import DATA_PLACEHOLDER, RUNS_PLACEHOLDER, path_free_notebook, scrub_text
from fakd.study.identity import identity_digest, run_identity
from fakd.study.notebook_runner import DONE_MARKER

_KEY_DIGEST = re.compile(r"-[0-9a-f]{8}$")
_TEXT_SUFFIXES = (".json", ".ipynb", ".yaml", ".jsonl", ".csv")


def is_path_marker(marker: dict) -> bool:
    """Whether a marker records locations as paths (made before identities were by content)."""
    parameters = marker.get("parameters", {})
    return any(isinstance(parameters.get(name), str) and parameters.get(name)
               for name in ("data_root", "teacher_run_dir", "sweep_dir"))


def migrate_archive(archive: Path, *, data_root: str | None) -> dict[str, str]:
    """Migrate every run of ``archive`` made with path identities; returns {old folder: new folder} (relative)."""
    archive = Path(archive)
    markers = [(path, json.loads(path.read_text())) for path in sorted(archive.rglob(DONE_MARKER))]
    markers = [(path, marker) for path, marker in markers if is_path_marker(marker)]
    teachers = {marker["parameters"]["teacher_run_dir"] for _, marker in markers
                if marker["parameters"].get("teacher_run_dir")}
    runs_root = Path(sorted(teachers)[0]).parent if teachers else None  # <runs>/teacher → <runs>
    renamed = {}
    for marker_path, marker in markers:
        old = marker_path.parent
        new = _migrate_run(old, marker, archive=archive, data_root=data_root, runs_root=runs_root)
        if new != old:
            renamed[str(old.relative_to(archive))] = str(new.relative_to(archive))
    return renamed


def _migrate_run(folder: Path, marker: dict, *, archive: Path, data_root: str | None, runs_root: Path | None) -> Path:
    old = dict(marker["parameters"])
    here = dict(old)
    if old.get("data_root"):
        if data_root is None:
            raise FakdError(f"{folder} was trained on the data root {old['data_root']}: give that data "
                            "(--data-root) to migrate it; its identity is the data's content")
        here["data_root"] = str(data_root)
    if runs_root is not None and old.get("teacher_run_dir"):
        here["teacher_run_dir"] = str(archive / Path(old["teacher_run_dir"]).relative_to(runs_root))
    replacements = {str(runs_root): RUNS_PLACEHOLDER} if runs_root is not None else {}
    if old.get("data_root"):
        replacements[str(old["data_root"])] = DATA_PLACEHOLDER
    _rewrite_results(folder, old=old, runs_root=runs_root, archive=archive)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix == ".ipynb":
            write_json_atomically(path, path_free_notebook(path.read_text(encoding="utf-8"), replacements))
        elif path.is_file() and path.suffix in _TEXT_SUFFIXES and path.name != DONE_MARKER:
            _replace_in_file(path, replacements)
    digest = identity_digest(here)
    kept = {key: value for key, value in marker.items() if key != "python"}  # an interpreter's path, not a fact
    write_json_atomically(folder / DONE_MARKER, {**kept, "parameters": run_identity(here), "parameters_sha256": digest})
    if folder.parent.name != "runs" or not _KEY_DIGEST.search(folder.name):
        return folder  # a notebook step (teacher): its folder is named by the step
    target = folder.with_name(_KEY_DIGEST.sub(f"-{digest[:8]}", folder.name))
    if target != folder:
        if target.exists():
            raise FakdError(f"cannot migrate {folder}: {target} exists already")
        folder.rename(target)
    return target


def _rewrite_results(folder: Path, *, old: dict, runs_root: Path | None, archive: Path) -> None:
    """results.json: ``teacher_run`` relative to the run folder (as 03_distill_student writes it today)."""
    path = folder / "results.json"
    if runs_root is None or not path.is_file():
        return
    payload = json.loads(path.read_text())
    run_dir = runs_root / folder.relative_to(archive)
    for row in payload.get("rows", []):
        if isinstance(row.get("teacher_run"), str) and os.path.isabs(row["teacher_run"]):
            row["teacher_run"] = os.path.relpath(row["teacher_run"], run_dir)
    write_json_atomically(path, payload)


def _replace_in_file(path: Path, replacements: dict[str, str]) -> None:
    text = path.read_text(encoding="utf-8")
    updated = scrub_text(text, replacements)
    if updated != text:
        write_text_atomically(path, updated)
