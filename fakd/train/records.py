"""What a run writes about itself: the payloads of its checkpoints (``best.pt``: the model;
``last.pt``: everything a resume needs) and the facts of ``summary.json`` (the job, the code, the
machine, the outcome). Functions of a live ``fakd.train.trainer.Training``."""

from __future__ import annotations

import platform
from typing import Any

import torch

from fakd.malloc import malloc_is_tuned
from fakd.models import count_parameters
from fakd.train.rng import capture_rng_state
from fakd.train.rundir import git_commit


def checkpoint_payload(training, *, full: bool) -> dict[str, Any]:
    """``best.pt`` (model only) or, with ``full``, ``last.pt`` (plus everything a resume needs)."""
    payload = {
        "model_config": dict(training.model.config),
        "model_name": training.model_name,
        "model_state": training.model.state_dict(),
        "iteration": training.state.iteration,
        "role": training.role,
        "run_config": training.config.to_dict(),
        "best_val_psnr": training.state.best_val_psnr,
        "best_iteration": training.state.best_iteration,
    }
    if full:
        payload.update(
            objective_state=training.objective.state_dict(),
            optimizer_state=training.optimizer.state_dict(),
            scheduler_state=training.scheduler.state_dict(),
            scaler_state=training.scaler.state_dict() if training.scaler is not None else {},
            rng_state=capture_rng_state(),
            elapsed_seconds=training.state.elapsed_seconds,
        )
    return payload


def run_summary(training, status: str, **extra: Any) -> dict[str, Any]:
    """``summary.json``'s content: the run's facts, ``status``, best validation PSNR, checkpoints."""
    run_dir, state = training.run_dir, training.state
    return {
        **training.summary_base,
        "status": status,
        "final_iteration": state.iteration,
        "best_val_psnr": state.best_val_psnr,
        "best_iteration": state.best_iteration,
        "wall_time_seconds": round(state.elapsed_seconds, 3),
        "best_checkpoint": str(run_dir.best_checkpoint) if run_dir.best_checkpoint.is_file() else None,
        "last_checkpoint": str(run_dir.last_checkpoint) if run_dir.last_checkpoint.is_file() else None,
        "teacher_cache": training.teacher_cache.summary() if training.teacher_cache is not None else None,
        **extra,
    }


def summary_base(training) -> dict[str, Any]:
    """What a run's summary says whatever its status: the job, the code, the machine (``processes``:
    how many torchrun processes trained it, 1 without torchrun)."""
    return {
        "role": training.role,
        "out": str(training.run_dir.path),
        "model": training.settings.model.preset,
        "parameters": count_parameters(training.model),
        "scale": training.config.scale,
        "seed": training.config.seed,
        "profile": training.config.profile,
        "iterations": training.settings.iterations,
        "init": training.settings.init,
        "teacher_checkpoint": training.job.get("teacher_checkpoint"),
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(training.device),
        "processes": training.ranks.world_size,
        "threads": torch.get_num_threads(),
        "malloc_tuned": malloc_is_tuned(),
    }
