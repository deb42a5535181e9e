"""A run's directory: resolved config, job description, metrics log, checkpoints, summary.

    RUN_DIR/config.yaml          the resolved RunConfig (usable again as ``--config``)
    RUN_DIR/job.json             what is trained: role, teacher checkpoint (+ sha256), methods
    RUN_DIR/metrics.jsonl        one JSON object per line: iteration, lr, loss, each term unweighted,
                                 share_<term> (its fraction of the weighted total), val_psnr
    RUN_DIR/checkpoints/last.pt  full training state (resume point), written atomically
    RUN_DIR/checkpoints/best.pt  model with the best validation PSNR (validation split only)
    RUN_DIR/summary.json         git commit, torch version, device, wall time, best val PSNR, status

A folder that already holds a run is only reused with ``resume`` (same config and job required)
or ``overwrite`` (which deletes the files listed above and nothing else).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from fakd.atomic import write_json_atomically, write_text_atomically
from fakd.errors import FakdError

# Settings that may change between a run and its resumption without making it another run.
RESUMABLE_DIFFERENCES = ("device", "threads")
RUN_FILES = ("config.yaml", "job.json", "metrics.jsonl", "summary.json")


class RunDirectory:
    """Paths and bookkeeping of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.job_path = self.path / "job.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.summary_path = self.path / "summary.json"
        self.checkpoint_dir = self.path / "checkpoints"
        self.last_checkpoint = self.checkpoint_dir / "last.pt"
        self.best_checkpoint = self.checkpoint_dir / "best.pt"

    def holds_run(self) -> bool:
        return self.config_path.is_file() or self.job_path.is_file()

    def prepare(self, *, config: dict[str, Any], job: dict[str, Any], resume: bool, overwrite: bool) -> bool:
        """Create or check the folder; returns True when an existing run is to be resumed."""
        if resume and overwrite:
            raise FakdError("--resume and --overwrite exclude each other")
        if self.path.exists() and not self.path.is_dir():
            raise FakdError(f"output {str(self.path)!r} exists and is not a folder")
        if self.holds_run():
            if overwrite:
                self._remove_run_files()
            elif resume:
                self._check_same_run(config=config, job=job)
                for stale in self.checkpoint_dir.glob(".*.tmp"):  # a write torn by a kill
                    stale.unlink(missing_ok=True)
                return True
            else:
                raise FakdError(
                    f"output folder {str(self.path)!r} already holds a run; pass --resume to "
                    f"continue it or --overwrite to replace it"
                )
        elif self.path.is_dir() and any(self.path.iterdir()) and not overwrite:
            raise FakdError(
                f"output folder {str(self.path)!r} is not empty and holds no fakd run; choose a new "
                f"folder (or --overwrite, which only deletes fakd's own files)"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir.mkdir(exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.job_path.write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")
        return False

    def _check_same_run(self, *, config: dict[str, Any], job: dict[str, Any]) -> None:
        try:
            stored_config = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
            stored_job = json.loads(self.job_path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, json.JSONDecodeError) as error:
            raise FakdError(f"run folder {str(self.path)!r} is damaged ({error}); use --overwrite") from None
        differences = _differences(_comparable(stored_config), _comparable(config))
        differences += _differences(stored_job, job, prefix="job.")
        if differences:
            shown = "; ".join(differences[:3]) + (" ..." if len(differences) > 3 else "")
            raise FakdError(
                f"output folder {str(self.path)!r} holds a different run ({shown}); "
                f"use another folder or --overwrite"
            )

    def _remove_run_files(self) -> None:
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        if self.checkpoint_dir.is_dir():
            shutil.rmtree(self.checkpoint_dir)

    # -- metrics log -------------------------------------------------------------------------

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line and flush it (a kill loses at most the line being written)."""
        with self.metrics_path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
            stream.flush()

    def truncate_metrics(self, last_iteration: int) -> None:
        """Keep only records up to ``last_iteration`` (the resumed checkpoint's), dropping torn lines."""
        if not self.metrics_path.is_file():
            return
        kept = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("iteration", 0) <= last_iteration:
                kept.append(line)
        write_text_atomically(self.metrics_path, "".join(f"{line}\n" for line in kept))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text(encoding="utf-8").splitlines() if line]

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomically(self.summary_path, summary)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in (config or {}).items() if key not in RESUMABLE_DIFFERENCES}


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), prefix=f"{prefix}{key}.")
        return found
    if old != new:
        return [f"{prefix.rstrip('.')}: {old!r} → {new!r}"]
    return []


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit() -> str | None:
    """The commit of the fakd source tree (suffix ``-dirty`` with local changes), or None."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("-dirty" if status.stdout.strip() else "")
