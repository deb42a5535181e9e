"""A study notebook's training run: the run's config, training through ``fakd.train.trainer``, its models.

Layout of a ``02_train_teacher`` / ``03_distill_student`` run folder (the notebook's ``run_dir``):

    RUN_DIR/train/            the training run (config.yaml, metrics.jsonl, checkpoints/best.pt, ...)
    RUN_DIR/per_image.csv     per-image scores of the best checkpoint (``fakd.analysis.results``)
    RUN_DIR/results.json      one row per test set (``fakd.analysis.results``)

The training run resumes when the folder already holds it (same config), so a notebook re-executed
after a code edit or an interruption continues instead of starting over.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from torch import nn

from fakd.data import resolve_data_root
from fakd.device import resolve_device
from fakd.errors import FakdError
from fakd.threads import use_threads
from fakd.train.config import RunConfig, load_run_config
from fakd.train.distillation import distill_updates
from fakd.train.rundir import RunDirectory
from fakd.train.trainer import train_run
from fakd.zoo.checkpoint import load_model_from_checkpoint

TRAIN_FOLDER = "train"
TEACHER_CACHE_FOLDER = "teacher-outputs"  # in the teacher's run folder: its outputs shared by the students


def best_checkpoint(run_dir: str | Path) -> Path:
    """``RUN_DIR/train/checkpoints/best.pt`` of a training notebook's run (FakdError when absent)."""
    path = RunDirectory(Path(run_dir) / TRAIN_FOLDER).best_checkpoint
    if not path.is_file():
        raise FakdError(f"{run_dir} holds no trained model ({path} is missing): is it a finished "
                        f"02_train_teacher / 03_distill_student run folder?")
    return path


def use_profile_threads(profile: str) -> int:
    """Set this process's torch threads (``fakd.threads.use_threads``: the profile's ``threads``
    setting, else $OMP_NUM_THREADS, else the cores other processes leave free now), print the choice,
    and return the count.

    Training runs do this themselves; notebooks that only evaluate call it so that, e.g., the smoke
    profile's single thread also holds there (several threads on a busy CPU can be far slower).
    """
    return use_threads(configured=load_run_config(profile).threads, command="threads").threads


def run_config(*, profile: str, seed: int, device: str | None = None, method: str | None = None,
               weight: float | None = None, taps: Sequence[str] = (), p: int = 1, alpha: float | None = None,
               student_iterations: int | None = None, init: str | None = None,
               student_model: str | None = None) -> RunConfig:
    """The training config of a notebook run: the profile, the seed, and (for a student) the KD choices.

    ``alpha``: the output-KD share (None: the profile's); only for a method with a teacher.
    ``student_iterations``: the student's length (None: the profile's); the learning-rate milestones are
    fractions of it, so a longer run keeps the schedule's shape. ``init``: the student's first weights
    (``scratch``, ``teacher``, ``teacher-spaced``; None: the profile's). ``student_model``: a model preset
    in place of the profile's student (e.g. a narrower one); None: the profile's.
    """
    updates: dict = {"seed": int(seed)}
    if device:
        updates["device"] = device
    if method is not None and method != "none":
        updates.update(distill_updates(
            [method], weights=None if weight is None else [float(weight)], student_taps=list(taps) or None,
            p=int(p) if method == "fakd" else None))
    elif weight is not None or alpha is not None:
        raise FakdError(f"method {method!r} has no teacher term for a weight or alpha "
                        f"(got weight={weight}, alpha={alpha})")
    optional = {"distill.alpha": alpha, "student.iterations": student_iterations, "student.init": init,
                "student.model": student_model or None}
    updates.update({key: value for key, value in optional.items() if value is not None})
    return load_run_config(profile, updates=updates)


def train_teacher(run_dir: str | Path, config: RunConfig, *, data_root=None, progress: bool = False) -> dict:
    """Train (or resume) the config's teacher into ``RUN_DIR/train``; returns the run's summary."""
    return train_run(config, role="teacher", out=Path(run_dir) / TRAIN_FOLDER,
                     data_root=resolve_data_root(data_root), resume=True, progress=progress)


def train_student(run_dir: str | Path, config: RunConfig, *, method: str, teacher_run_dir: str | Path = "",
                  data_root=None, progress: bool = False) -> dict:
    """Train (or resume) a student: alone for ``none``, else distilled from the teacher run's best model
    (sharing the teacher's outputs through ``TEACHER_RUN/teacher-outputs`` when the config's
    ``teacher_cache`` is on)."""
    out = Path(run_dir) / TRAIN_FOLDER
    from_teacher = config.student.init != "scratch"
    if not str(teacher_run_dir) and (method != "none" or from_teacher):
        need = f"method {method!r}" if method != "none" else f"init {config.student.init!r}"
        raise FakdError(f"{need} needs a teacher: set teacher_run_dir to a finished "
                        f"02_train_teacher run folder (fakd sweep ... --set teacher_run_dir=DIR)")
    if method == "none":
        return train_run(config, role="student", out=out, data_root=resolve_data_root(data_root), resume=True,
                         progress=progress, teacher_checkpoint=best_checkpoint(teacher_run_dir) if from_teacher else None)
    return train_run(config, role="distill", out=out, teacher_checkpoint=best_checkpoint(teacher_run_dir),
                     data_root=resolve_data_root(data_root), resume=True, progress=progress,
                     teacher_cache=Path(teacher_run_dir) / TEACHER_CACHE_FOLDER)


def training_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The metrics log of a notebook's training run as a table (one row per logged iteration)."""
    return pd.DataFrame(RunDirectory(Path(run_dir) / TRAIN_FOLDER).read_metrics())


def load_best_model(run_dir: str | Path, *, scale: int | None = None, device=None) -> nn.Module:
    """The best checkpoint of a training notebook's run, in eval mode on ``device``."""
    return load_model_from_checkpoint(best_checkpoint(run_dir), resolve_device(device), scale=scale)
