"""Where a study's report goes, and how it replaces the previous one without ever losing it.

A study renders into a staging folder beside its report folder (``<folder>.partial``). Only when every
step succeeded are the staged files moved into the report folder, replacing exactly what a report
consists of (``REPORT_ENTRIES``); anything else there (an ``ANALYSIS.md`` written by hand) stays. A
failed study leaves the report folder untouched and its staging folder for inspection.

Every report carries ``fakd-report.json``: which study it shows (profile, training and test sets). A
study of another kind never writes over it: the default folder then becomes a folder of its own
(``reports/<profile>-<test sets>``), an explicit one is refused. A non-empty folder without that
file is not a fakd report and is refused too.
"""

import json
import os
import shutil
from pathlib import Path

from fakd.atomic import write_json_atomically
from fakd.errors import FakdError
from fakd.study.render import FIGURES_FOLDER, HTML_FOLDER, INDEX_FILE, README_FILE, TABLES_FOLDER

MARKER_FILE = "fakd-report.json"
MARKER_FORMAT = "fakd-report"
MARKER_VERSION = 1
REPORT_ENTRIES = (INDEX_FILE, README_FILE, HTML_FOLDER, FIGURES_FOLDER, TABLES_FOLDER, MARKER_FILE)
STAGING_SUFFIX = ".partial"


def study_identity(*, profile: str, train_sets, test_sets) -> dict:
    """What makes two studies' reports comparable: the profile and the data it trained and tested on."""
    return {"profile": profile, "train_sets": list(train_sets), "test_sets": list(test_sets)}


def read_marker(folder: Path) -> dict | None:
    """The folder's report marker, or None when it has none (or an unreadable one)."""
    try:
        marker = json.loads((Path(folder) / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT else None


def check_report_folder(folder: Path, *, identity: dict) -> None:
    """FakdError unless ``folder`` is new, empty, or holds a report of the same study."""
    folder = Path(folder)
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    marker = read_marker(folder)
    if marker is None:
        raise FakdError(f"report folder {str(folder)!r} is not empty and holds no fakd report ({MARKER_FILE} "
                        f"missing): give a new or empty folder with --out")
    if marker.get("study") != identity:
        raise FakdError(f"report folder {str(folder)!r} holds the report of another study ({_describe(marker.get('study'))}); "
                        f"this one is {_describe(identity)}: give another folder with --out")


def default_report_folder(requested: Path, *, identity: dict) -> Path:
    """``requested`` when it may take this study's report, else a sibling named for the study's test sets."""
    try:
        check_report_folder(requested, identity=identity)
        return Path(requested)
    except FakdError:
        own = Path(requested).with_name(f"{Path(requested).name}-{'-'.join(identity['test_sets']).lower()}")
        check_report_folder(own, identity=identity)
        return own


def staging_folder(folder: Path, *, identity: dict) -> Path:
    """A fresh staging folder beside ``folder``, marked as this study's (a previous leftover is cleared)."""
    staging = Path(folder).with_name(Path(folder).name + STAGING_SUFFIX)
    if staging.exists():
        if read_marker(staging) is None:
            raise FakdError(f"{str(staging)!r} exists and is not a fakd report's staging folder: move it away")
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    write_marker(staging, identity=identity, provenance={"state": "partial"})
    return staging


def write_marker(folder: Path, *, identity: dict, provenance: dict) -> Path:
    """``fakd-report.json`` in ``folder``: the study it shows and where it came from."""
    return write_json_atomically(Path(folder) / MARKER_FILE, {"format": MARKER_FORMAT, "version": MARKER_VERSION,
                                                              "study": identity, "provenance": provenance})


def publish(staging: Path, folder: Path) -> None:
    """Move a complete report from ``staging`` into ``folder``, entry by entry, then remove ``staging``.

    Each entry is swapped by renames on one file system (the old one set aside and deleted only after the
    new one is in place); entries of the previous report that this one lacks are removed; nothing else
    in ``folder`` is touched.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in REPORT_ENTRIES:
        new, old = Path(staging) / name, folder / name
        aside = folder / f".{name}.previous"
        _remove(aside)  # left by an interrupted publish
        if old.exists():
            os.replace(old, aside)
        if new.exists():
            os.replace(new, old)
        _remove(aside)
    shutil.rmtree(staging)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _describe(identity) -> str:
    if not isinstance(identity, dict):
        return "unknown"
    return (f"profile {identity.get('profile')}, trained on {', '.join(identity.get('train_sets') or [])}, "
            f"tested on {', '.join(identity.get('test_sets') or [])}")
