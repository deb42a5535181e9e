"""A run's directory: resolved config, job description, metrics log, checkpoints, summary.

    RUN_DIR/job.json             fakd's marker and what is trained: {"format": "fakd-run", "version": 1,
                                 role, model, teacher checkpoint (+ sha256)}
    RUN_DIR/config.yaml          the resolved RunConfig (usable again as ``--config``)
    RUN_DIR/metrics.jsonl        one JSON object per line: iteration, lr, loss, each term unweighted,
                                 share_<term> (its fraction of the weighted total), val_psnr
    RUN_DIR/checkpoints/last.pt  full training state (resume point), written atomically
    RUN_DIR/checkpoints/best.pt  model with the best validation PSNR (validation split only)
    RUN_DIR/summary.json         git commit, torch version, device, wall time, best val PSNR, status
    RUN_DIR/run.lock             holds the writing process's pid while it runs

A folder is a fakd run only when its ``job.json`` says so (the ``fakd-run`` marker; a job.json of a
run from before the marker, with a ``role`` and ``model``, counts too). Such a folder is reused only
with ``resume`` (same config and job required) or ``overwrite``, which deletes the files listed
above by name and nothing else (never a folder wholesale: your own files in RUN_DIR or
RUN_DIR/checkpoints stay). A folder that holds no fakd run is used only when it is empty, or with
``overwrite`` when none of the names above is taken by a file of yours.

A run folder has one owner: ``prepare`` takes an advisory ``fcntl.flock`` on ``run.lock`` and keeps
it while the ``RunDirectory`` lives; a second process (another ``--resume``, an orphaned sweep
worker) fails at once with a ``FakdError`` naming the holder's pid. The operating system drops the
lock when its process ends, ``kill -9`` included, so a stale ``run.lock`` never blocks anybody.
"""

from __future__ import annotations

import json
import os
import subprocess
import weakref
from pathlib import Path
from typing import Any

import yaml

from fakd.atomic import storage_errors, write_json_atomically, write_text_atomically
from fakd.errors import FakdError

try:
    import fcntl
except ImportError:  # not POSIX: no lock (fakd's training is meant for POSIX systems)
    fcntl = None

# Settings that may change between a run and its resumption without making it another run: where and
# how fast it computes, not what (the speed switches give the same results within float rounding, and
# a run folder written before a switch existed has no key for it).
RESUMABLE_DIFFERENCES = ("device", "threads", "compile", "channels_last", "teacher_cache", "teacher_cache_gb")
RUN_FORMAT = "fakd-run"
RUN_FORMAT_VERSION = 1
MARKER_KEYS = ("format", "version")
LOCK_FILE = "run.lock"
RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "job.json")  # job.json (the marker) last
CHECKPOINT_FILES = ("last.pt", "best.pt")
LEGACY_ROLES = ("teacher", "student", "distill")

# The locks this process holds, by lock-file path: a second RunDirectory of the same folder in the
# same process (a notebook cell run again) shares the lock instead of failing on its own process.
_HELD_LOCKS: weakref.WeakValueDictionary[str, _RunLock] = weakref.WeakValueDictionary()


class _RunLock:
    """An open, flock'ed lock file; closing it (or the process ending) releases the lock."""

    def __init__(self, handle):
        self.handle = handle

    def release(self) -> None:
        if not self.handle.closed:
            self.handle.close()

    def __del__(self):
        self.release()


class RunDirectory:
    """Paths and bookkeeping of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.job_path = self.path / "job.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.summary_path = self.path / "summary.json"
        self.lock_path = self.path / LOCK_FILE
        self.checkpoint_dir = self.path / "checkpoints"
        self.last_checkpoint = self.checkpoint_dir / "last.pt"
        self.best_checkpoint = self.checkpoint_dir / "best.pt"
        self._lock: _RunLock | None = None

    def run_format_version(self) -> int | None:
        """The run-format version in job.json (0: a run from before the marker); None: not a fakd run."""
        try:
            job = json.loads(self.job_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        if not isinstance(job, dict):
            return None
        if job.get("format") == RUN_FORMAT:
            version = job.get("version")
            return version if isinstance(version, int) and not isinstance(version, bool) else None
        if "format" not in job and job.get("role") in LEGACY_ROLES and isinstance(job.get("model"), str):
            return 0
        return None

    def holds_run(self) -> bool:
        """True when job.json carries fakd's marker (see the module docstring)."""
        return self.run_format_version() is not None

    def prepare(self, *, config: dict[str, Any], job: dict[str, Any], resume: bool, overwrite: bool) -> bool:
        """Create or check the folder and lock it; returns True when an existing run is to be resumed."""
        if resume and overwrite:
            raise FakdError("--resume and --overwrite exclude each other")
        if self.path.exists() and not self.path.is_dir():
            raise FakdError(f"output {str(self.path)!r} exists and is not a folder")
        if not self.holds_run():
            self._check_foreign_folder(overwrite=overwrite)  # before creating anything in it
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise FakdError(f"cannot create the run folder {str(self.path)!r}: {error.strerror}") from None
        self._acquire_lock()
        try:
            return self._prepare_locked(config=config, job=job, resume=resume, overwrite=overwrite)
        except BaseException:
            self.release()
            raise

    def _prepare_locked(self, *, config: dict[str, Any], job: dict[str, Any], resume: bool, overwrite: bool) -> bool:
        version = self.run_format_version()
        if version is not None:
            if version > RUN_FORMAT_VERSION:
                raise FakdError(f"run folder {str(self.path)!r} was written by a newer fakd (run format "
                                f"{version}; this fakd knows {RUN_FORMAT_VERSION})")
            if resume:
                self._check_same_run(config=config, job=job)
                for stale in self._torn_checkpoint_writes():  # a write torn by a kill
                    stale.unlink(missing_ok=True)
                return True
            if not overwrite:
                raise FakdError(
                    f"output folder {str(self.path)!r} already holds a run; pass --resume to "
                    f"continue it or --overwrite to replace it"
                )
            self._remove_run_files()
        else:
            self._check_foreign_folder(overwrite=overwrite)  # again, now that nobody else writes here
        write_json_atomically(self.job_path, {"format": RUN_FORMAT, "version": RUN_FORMAT_VERSION, **job})
        write_text_atomically(self.config_path, yaml.safe_dump(config, sort_keys=False))
        self.checkpoint_dir.mkdir(exist_ok=True)
        return False

    def _check_foreign_folder(self, *, overwrite: bool) -> None:
        """A folder without fakd's marker: only empty, or (``overwrite``) with none of fakd's names taken."""
        if not self.path.is_dir():
            return
        try:
            entries = sorted(name for name in os.listdir(self.path) if name != LOCK_FILE)
        except OSError as error:
            raise FakdError(f"cannot read the output folder {str(self.path)!r}: {error.strerror}") from None
        if not entries:
            return
        if not overwrite:
            raise FakdError(
                f"output folder {str(self.path)!r} is not empty and holds no fakd run; choose a new "
                f"folder (or --overwrite, which only deletes fakd's own files)"
            )
        taken = [name for name in RUN_FILES if (self.path / name).exists()]
        taken += [f"checkpoints/{name}" for name in CHECKPOINT_FILES if (self.checkpoint_dir / name).exists()]
        if self.checkpoint_dir.exists() and not self.checkpoint_dir.is_dir():
            taken.append("checkpoints")
        if taken:
            raise FakdError(
                f"output folder {str(self.path)!r} holds no fakd run (its job.json has no fakd marker), but "
                f"{', '.join(taken)} would be replaced; fakd never touches files it did not write: "
                f"choose another folder"
            )

    def _check_same_run(self, *, config: dict[str, Any], job: dict[str, Any]) -> None:
        try:
            stored_config = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
            stored_job = json.loads(self.job_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise FakdError(f"run folder {str(self.path)!r} is damaged ({detail}); use --overwrite") from None
        if not isinstance(stored_config, dict):
            raise FakdError(f"run folder {str(self.path)!r} is damaged (config.yaml is not a mapping); "
                            f"use --overwrite")
        stored_job = {key: value for key, value in stored_job.items() if key not in MARKER_KEYS}
        differences = _differences(_comparable(with_later_defaults(stored_config)),
                                   _comparable(with_later_defaults(config)))
        differences += _differences(stored_job, job, prefix="job.")
        if differences:
            shown = "; ".join(differences[:3]) + (" ..." if len(differences) > 3 else "")
            raise FakdError(
                f"output folder {str(self.path)!r} holds a different run ({shown}); "
                f"use another folder or --overwrite"
            )

    def _torn_checkpoint_writes(self) -> list[Path]:
        return [path for name in CHECKPOINT_FILES for path in self.checkpoint_dir.glob(f".{name}.*.tmp")]

    def _remove_run_files(self) -> None:
        """Delete fakd's own files by name (job.json, the marker, last); folders and other files stay."""
        for path in [*(self.checkpoint_dir / name for name in CHECKPOINT_FILES), *self._torn_checkpoint_writes()]:
            path.unlink(missing_ok=True)
        for name in RUN_FILES:
            if name != "job.json":  # replaced atomically by the new run's marker
                (self.path / name).unlink(missing_ok=True)

    # -- ownership ---------------------------------------------------------------------------

    def _acquire_lock(self) -> None:
        """Take the folder's lock, or fail at once naming the process that holds it."""
        if fcntl is None:
            return
        key = str(self.lock_path.resolve())
        held = _HELD_LOCKS.get(key)
        if held is not None and not held.handle.closed:
            self._lock = held
            return
        try:
            handle = open(self.lock_path, "a+", encoding="utf-8")
        except OSError as error:
            raise FakdError(f"cannot write in the run folder {str(self.path)!r}: {error.strerror}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise FakdError(f"run folder {str(self.path)!r} is in use by {who} (a fakd run writing into it); "
                            f"wait for it to end or stop it, then try again") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = _RunLock(handle)
        _HELD_LOCKS[key] = self._lock

    def release(self) -> None:
        """Give up this object's share of the folder's lock (also happens when it is garbage-collected)."""
        self._lock = None

    # -- metrics log -------------------------------------------------------------------------

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line and flush it (a kill loses at most the line being written)."""
        with storage_errors(self.metrics_path), self.metrics_path.open("a", encoding="utf-8") as stream:
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

    def finished_summary(self, *, iterations: int) -> dict[str, Any] | None:
        """The summary of a run that finished all ``iterations`` and kept its best checkpoint, else None.

        Resuming a finished run leaves it as it is: one restored from a study archive (``best.pt``, no
        ``last.pt``) is not trained again from scratch, and no summary is rewritten by a later commit."""
        try:
            summary = json.loads(self.summary_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        done = summary.get("status") == "finished" and summary.get("final_iteration", -1) >= iterations
        return summary if done and self.best_checkpoint.is_file() else None


def with_later_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored config with the keys it predates at their defaults (e.g. ``student.init`` = scratch):
    a key added later defaults to what runs did before it existed, so those runs stay resumable."""
    from fakd.train.config import RunConfig, merged_mapping

    return merged_mapping(RunConfig().to_dict(), stored)


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
