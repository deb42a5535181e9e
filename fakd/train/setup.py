"""Setting up a training run: what the job is, the networks and the objective, the schedule, and the
state a resumed run continues from (``last.pt``). ``fakd.train.trainer`` runs the loop on top.

Every role trains one network from the config's preset (the teacher preset for ``teacher``, the
student preset otherwise); ``distill`` adds a frozen eval-mode teacher from a checkpoint (a path or
``fakd:<name>``) and the objective of the run's ``distill`` settings. A student whose ``student.init`` is
not ``scratch`` starts from that teacher's weights (``fakd.models.inherit``), with or without KD.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fakd.distill import DistillationObjective, FeatureTaps
from fakd.errors import FakdError
from fakd.models import build_model
from fakd.models.inherit import inherit_teacher_weights
from fakd.train.config import RunConfig
from fakd.train.config_checks import STUDENT_INITS
from fakd.train.distillation import build_objective
from fakd.train.rng import restore_rng_state
from fakd.zoo.checkpoint import load_checkpoint, load_model_from_checkpoint
from fakd.zoo.pretrained import file_sha256, resolve_checkpoint_path

ROLES = ("teacher", "student", "distill")


@dataclass
class TrainingState:
    """What the loop carries between iterations (and what ``last.pt`` restores)."""

    iteration: int = 0
    best_val_psnr: float | None = None
    best_iteration: int | None = None
    elapsed_seconds: float = 0.0


def make_scheduler(optimizer: torch.optim.Optimizer, settings, iterations: int):
    """Multi-step (milestones as fractions of the run, factor ``gamma``) or cosine to ``min_lr``."""
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations, eta_min=settings.min_lr)
    milestones = sorted({max(1, round(fraction * iterations)) for fraction in settings.milestones})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=settings.gamma)


def build_role_model(config: RunConfig, role: str) -> nn.Module:
    """The trained network: the teacher preset for ``teacher``, the student preset otherwise."""
    settings = config.role("teacher" if role == "teacher" else "student")
    return build_model(settings.model.preset, scale=config.scale, **settings.model.overrides)


def job_description(*, role: str, config: RunConfig, teacher_checkpoint: str | Path | None) -> dict[str, Any]:
    """What makes two runs the same job (stored in job.json and compared on --resume)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use {', '.join(ROLES)}")
    settings = config.role("teacher" if role == "teacher" else "student")
    job: dict[str, Any] = {"role": role, "model": settings.model.preset, "overrides": settings.model.overrides}
    if settings.init != "scratch":
        job["init"] = settings.init  # absent for scratch: the jobs of runs made before the choice existed
    if role == "distill" or settings.init != "scratch":
        if teacher_checkpoint is None:
            need = "distillation" if role == "distill" else f"student.init={settings.init}"
            raise FakdError(f"{need} needs a teacher checkpoint (--teacher CKPT)")
        path = resolve_checkpoint_path(teacher_checkpoint)  # a file or fakd:<name>
        if not path.is_file():
            raise FakdError(f"teacher checkpoint {str(path)!r} not found")
        job["teacher_checkpoint"] = str(path.resolve())
        job["teacher_sha256"] = file_sha256(path)
    return job


def initialise_student(config: RunConfig, *, role: str, model: nn.Module, teacher: nn.Module | None,
                       teacher_checkpoint, device: torch.device) -> None:
    """Give the student its teacher's weights when ``student.init`` asks for them (in place; a no-op for
    ``scratch`` and for the teacher role). A teacher of another width is one FakdError."""
    rule = STUDENT_INITS[config.student.init]
    if role == "teacher" or rule is None:
        return
    if teacher is None:
        teacher = load_model_from_checkpoint(teacher_checkpoint, device, scale=config.scale)
    inherit_teacher_weights(student=model, teacher=teacher, rule=rule)


def teacher_and_objective(config: RunConfig, *, role: str, model: nn.Module, teacher_checkpoint,
                           device: torch.device) -> tuple[nn.Module | None, DistillationObjective]:
    """The frozen teacher (None when the objective never runs it) and the objective of the role."""
    if role != "distill":
        return None, DistillationObjective(alpha=0.0)
    teacher = load_model_from_checkpoint(teacher_checkpoint, device, scale=config.scale)
    teacher.requires_grad_(False).eval()
    objective = build_objective(config.distill, student=model, teacher=teacher)
    return (teacher if objective.needs_teacher else None), objective


def prepare_adapters(objective: DistillationObjective, model: nn.Module, teacher: nn.Module, patches, device) -> None:
    """Let the objective size its learnable adapters (FitNet) from one sample pass."""
    lr_batch, _ = patches.batch(0, 1)
    lr_batch = lr_batch.to(device)
    with torch.no_grad(), FeatureTaps(model, objective.student_taps) as student_taps, \
            FeatureTaps(teacher, objective.teacher_taps) as teacher_taps:
        model(lr_batch)
        teacher(lr_batch)
        objective.prepare(dict(student_taps.features), dict(teacher_taps.features))


def restore_training_state(path: Path, model, objective, optimizer, scheduler, scaler) -> TrainingState:
    """Load ``last.pt`` into the live objects; returns the loop state it recorded."""
    payload = load_checkpoint(path)
    if "optimizer_state" not in payload:
        raise FakdError(f"{path} holds no training state (optimizer, RNG); cannot resume from it")
    try:
        model.load_state_dict(payload["model_state"])
        objective.load_state_dict(payload["objective_state"])
        optimizer.load_state_dict(payload["optimizer_state"])
        scheduler.load_state_dict(payload["scheduler_state"])
        if scaler is not None and payload.get("scaler_state"):
            scaler.load_state_dict(payload["scaler_state"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise FakdError(f"cannot resume from {path}: it does not fit this run ({str(error).splitlines()[0]})") from None
    restore_rng_state(payload["rng_state"])
    return TrainingState(
        iteration=int(payload["iteration"]),
        best_val_psnr=payload.get("best_val_psnr"),
        best_iteration=payload.get("best_iteration"),
        elapsed_seconds=float(payload.get("elapsed_seconds", 0.0)),
    )
