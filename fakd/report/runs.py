"""A study notebook's training run: train through ``fakd.engine``, evaluate, write the run's results.

Layout of a ``02_train_teacher`` / ``03_distill_student`` run folder (the notebook's ``run_dir``):

    RUN_DIR/train/            the engine's run (config.yaml, metrics.jsonl, checkpoints/best.pt, ...)
    RUN_DIR/per_image.csv     dataset, name, psnr, ssim of the best checkpoint on every test image
    RUN_DIR/results.json      {"rows": [...]}: one row per test set (dataset, scale, psnr, ssim,
                              val_psnr, best_iteration, iterations, wall_time_s, params, model, ...)

The engine run resumes when the folder already holds it (same config), so a notebook re-executed
after a code edit or an interruption continues instead of starting over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from fakd.atomic import write_json_atomically
from fakd.data import open_benchmark_set, resolve_data_root, resolve_set
from fakd.device import resolve_device
from fakd.engine.checkpoint import load_model_from_checkpoint
from fakd.engine.config import RunConfig, load_run_config
from fakd.engine.distillation import distill_overrides
from fakd.engine.rundir import RunDirectory
from fakd.engine.trainer import train_run
from fakd.errors import FakdError
from fakd.metrics import evaluate_model
from fakd.study.results import RESULTS_FILE, read_results

TRAIN_FOLDER = "train"
PER_IMAGE_FILE = "per_image.csv"
PAPER_TEST_SETS = ("Set5", "Set14", "B100")
EMBEDDED_TEST_SET = "skimage-test"


def default_test_sets(data_root: str | Path | None = None) -> list[str]:
    """Set5 / Set14 / B100 when the data root holds them (those it holds), else the embedded skimage-test."""
    if resolve_data_root(data_root) is None:
        return [EMBEDDED_TEST_SET]
    found = []
    for name in PAPER_TEST_SETS:
        try:
            resolve_set(name, data_root=data_root)
        except FakdError:
            continue
        found.append(name)
    return found or [EMBEDDED_TEST_SET]


def best_checkpoint(run_dir: str | Path) -> Path:
    """``RUN_DIR/train/checkpoints/best.pt`` of a training notebook's run (FakdError when absent)."""
    path = RunDirectory(Path(run_dir) / TRAIN_FOLDER).best_checkpoint
    if not path.is_file():
        raise FakdError(f"{run_dir} holds no trained model ({path} is missing): is it a finished "
                        f"02_train_teacher / 03_distill_student run folder?")
    return path


def use_profile_threads(profile: str) -> int:
    """Set this process's torch threads (``fakd.threads.use_threads``: the profile's ``threads``
    setting, else $OMP_NUM_THREADS, else the cores the machine's load leaves free), print the choice,
    and return the count.

    Training runs do this themselves; notebooks that only evaluate call it so that, e.g., the smoke
    profile's single thread also holds there (several threads on a busy CPU can be far slower).
    """
    from fakd.threads import use_threads

    return use_threads(configured=load_run_config(profile).threads, command="threads").threads


def run_config(*, profile: str, seed: int, device: str | None = None, method: str | None = None,
               weight: float | None = None, taps: Sequence[str] = (), p: int = 1) -> RunConfig:
    """The engine config of a notebook run: the profile, the seed, and (for a student) the KD choices."""
    overrides = [f"seed={int(seed)}"]
    if device:
        overrides.append(f"device={device}")
    if method is not None and method != "none":
        overrides += distill_overrides(
            [method], weights=None if weight is None else [float(weight)], student_taps=list(taps) or None,
            p=int(p) if method == "fakd" else None)
    elif weight is not None:
        raise FakdError(f"method {method!r} has no feature term for a weight (got weight={weight})")
    return load_run_config(profile, overrides)


def train_teacher(run_dir: str | Path, config: RunConfig, *, data_root=None, progress: bool = False) -> dict:
    """Train (or resume) the config's teacher into ``RUN_DIR/train``; returns the engine's summary."""
    return train_run(config, role="teacher", out=Path(run_dir) / TRAIN_FOLDER,
                     data_root=resolve_data_root(data_root), resume=True, progress=progress)


def train_student(run_dir: str | Path, config: RunConfig, *, method: str, teacher_run_dir: str | Path = "",
                  data_root=None, progress: bool = False) -> dict:
    """Train (or resume) a student: alone for ``none``, else distilled from the teacher run's best model."""
    out = Path(run_dir) / TRAIN_FOLDER
    if method == "none":
        return train_run(config, role="student", out=out, data_root=resolve_data_root(data_root),
                         resume=True, progress=progress)
    if not str(teacher_run_dir):
        raise FakdError(f"method {method!r} needs a teacher: set teacher_run_dir to a finished "
                        f"02_train_teacher run folder (fakd sweep ... --set teacher_run_dir=DIR)")
    return train_run(config, role="distill", out=out, teacher_checkpoint=best_checkpoint(teacher_run_dir),
                     data_root=resolve_data_root(data_root), resume=True, progress=progress)


def training_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The engine's metrics log of a notebook run as a table (one row per logged iteration)."""
    return pd.DataFrame(RunDirectory(Path(run_dir) / TRAIN_FOLDER).read_metrics())


def evaluate_on_sets(model: nn.Module | object, test_sets: Sequence[str], *, scale: int, data_root=None,
                     device: str | torch.device | None = None) -> pd.DataFrame:
    """Per-image PSNR/SSIM (columns dataset, name, psnr, ssim) of ``model`` over each test set."""
    if not test_sets:
        raise FakdError("no test sets to evaluate on")
    target = resolve_device(device) if isinstance(model, nn.Module) else None
    tables = []
    for name in test_sets:
        dataset = open_benchmark_set(name, scale=scale, data_root=resolve_data_root(data_root))
        table = evaluate_model(model, dataset, scale=scale, device=target, progress=False)
        tables.append(table.assign(dataset=dataset.name)[["dataset", "name", "psnr", "ssim"]])
    return pd.concat(tables, ignore_index=True)


def load_best_model(run_dir: str | Path, *, scale: int | None = None, device=None) -> nn.Module:
    """The best checkpoint of a training notebook's run, in eval mode on ``device``."""
    return load_model_from_checkpoint(best_checkpoint(run_dir), resolve_device(device), scale=scale)


def result_rows(summary: dict, per_image: pd.DataFrame, **extra) -> list[dict]:
    """One row per test set: mean PSNR/SSIM over its images plus the run's training summary and ``extra``."""
    rows = []
    for dataset, group in per_image.groupby("dataset", sort=False):
        rows.append({
            "dataset": dataset, "scale": summary["scale"], "psnr": float(group["psnr"].mean()),
            "ssim": float(group["ssim"].mean()), "images": int(len(group)),
            "val_psnr": summary["best_val_psnr"], "best_iteration": summary["best_iteration"],
            "iterations": summary["final_iteration"], "wall_time_s": summary["wall_time_seconds"],
            "params": summary["parameters"], "model": summary["model"], **extra,
        })
    return rows


def write_run_results(run_dir: str | Path, rows: list[dict], per_image: pd.DataFrame | None = None) -> Path:
    """``results.json`` ({"rows": rows}) and, when given, ``per_image.csv`` in ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if per_image is not None:
        per_image.to_csv(run_dir / PER_IMAGE_FILE, index=False)
    return write_json_atomically(run_dir / RESULTS_FILE, {"rows": [_json_row(row) for row in rows]})


def _json_row(row: dict) -> dict:
    """A row with NaN as null and numpy scalars as plain numbers (results.json holds strict JSON)."""
    plain = {}
    for key, value in row.items():
        if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        plain[str(key)] = value
    return plain


def read_run_rows(run_dir: str | Path) -> pd.DataFrame:
    """The rows a notebook wrote to ``results.json``, as a table (FakdError when it wrote none)."""
    return pd.DataFrame(read_results(Path(run_dir)))
