"""One training loop for the three jobs: teacher (L1 to HR), student alone, distilled student.

``train_run(...)`` builds the model from the run's config, the objective (plain L1 for
``teacher``/``student``; ``DistillationObjective`` with a frozen eval-mode teacher for
``distill``), Adam and the schedule, then iterates over ``TrainingPatches.batch(i, B)`` — a pure
function of (seed, i), so a run resumed from ``last.pt`` sees the same batches and, on CPU with the
same thread count, ends bitwise equal to an uninterrupted one. Validation PSNR on the patches'
held-out validation images picks ``best.pt`` (never a test set). A non-finite loss stops the run
before the optimiser touches the weights; the last good checkpoint stays as it was.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from fakd.device import resolve_device
from fakd.distill import DistillationObjective, FeatureTaps
from fakd.engine.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    load_model_from_checkpoint,
    resolve_checkpoint_path,
    restore_rng_state,
    save_checkpoint,
)
from fakd.engine.config import RunConfig
from fakd.engine.data import open_training_patches, validation_psnr
from fakd.engine.distillation import build_objective
from fakd.engine.malloc import malloc_is_tuned
from fakd.engine.rundir import RunDirectory, file_sha256, git_commit
from fakd.errors import FakdError
from fakd.models import build_model, count_parameters

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
        raise FakdError(f"unknown role {role!r}: use {', '.join(ROLES)}")
    settings = config.role("teacher" if role == "teacher" else "student")
    job: dict[str, Any] = {"role": role, "model": settings.model.preset, "overrides": settings.model.overrides}
    if role == "distill":
        if teacher_checkpoint is None:
            raise FakdError("distillation needs a teacher checkpoint (--teacher CKPT)")
        path = resolve_checkpoint_path(teacher_checkpoint)  # a file or fakd:<name>
        if not path.is_file():
            raise FakdError(f"teacher checkpoint {str(path)!r} not found")
        job["teacher_checkpoint"] = str(path.resolve())
        job["teacher_sha256"] = file_sha256(path)
    return job


def train_run(
    config: RunConfig,
    *,
    role: str,
    out: str | Path,
    teacher_checkpoint: str | Path | None = None,
    data_root: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) one run into ``out``; returns the summary written to summary.json."""
    device = resolve_device(config.device)
    if (config.amp or config.compile) and device.type != "cuda":
        raise FakdError("--amp and --compile are CUDA options; this run is on " + str(device))
    if config.threads:
        torch.set_num_threads(config.threads)
    job = job_description(role=role, config=config, teacher_checkpoint=teacher_checkpoint)
    run_dir = RunDirectory(out)
    settings = config.role("teacher" if role == "teacher" else "student")

    torch.manual_seed(config.seed)
    model = build_role_model(config, role).to(device)
    teacher = None
    if role == "distill":
        teacher = load_model_from_checkpoint(teacher_checkpoint, device, scale=config.scale)
        teacher.requires_grad_(False).eval()
        objective = build_objective(config.distill, student=model, teacher=teacher)
        if not objective.needs_teacher:
            teacher = None
    else:
        objective = DistillationObjective(alpha=0.0)
    patches = open_training_patches(config, data_root=data_root)
    objective = objective.to(device)
    if teacher is not None and objective.terms:
        _prepare_adapters(objective, model, teacher, patches, device)

    parameters = list(model.parameters()) + list(objective.parameters())
    optimizer = torch.optim.Adam(parameters, lr=settings.lr, betas=tuple(settings.betas))
    scheduler = make_scheduler(optimizer, settings, settings.iterations)
    use_fp16 = config.amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16) if config.amp else None
    forward_model = torch.compile(model) if config.compile else model

    resuming = run_dir.prepare(config=config.to_dict(), job=job, resume=resume, overwrite=overwrite)
    state = TrainingState()
    if resuming and run_dir.last_checkpoint.is_file():
        state = _restore(run_dir.last_checkpoint, model, objective, optimizer, scheduler, scaler)
    if resuming:
        run_dir.truncate_metrics(state.iteration)

    label = "+".join(config.distill.methods) if role == "distill" else role
    model_name = f"{settings.model.preset} {label} s{config.seed}"

    def checkpoint_payload(*, full: bool) -> dict[str, Any]:
        payload = {
            "model_config": dict(model.config),
            "model_name": model_name,
            "model_state": model.state_dict(),
            "iteration": state.iteration,
            "role": role,
            "run_config": config.to_dict(),
            "best_val_psnr": state.best_val_psnr,
            "best_iteration": state.best_iteration,
        }
        if full:
            payload.update(
                objective_state=objective.state_dict(),
                optimizer_state=optimizer.state_dict(),
                scheduler_state=scheduler.state_dict(),
                scaler_state=scaler.state_dict() if scaler is not None else {},
                rng_state=capture_rng_state(),
                elapsed_seconds=state.elapsed_seconds,
            )
        return payload

    summary_base = {
        "role": role,
        "out": str(run_dir.path),
        "model": settings.model.preset,
        "parameters": count_parameters(model),
        "scale": config.scale,
        "seed": config.seed,
        "profile": config.profile,
        "iterations": settings.iterations,
        "teacher_checkpoint": job.get("teacher_checkpoint"),
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "malloc_tuned": malloc_is_tuned(),
    }

    def write_summary(status: str, **extra: Any) -> dict[str, Any]:
        summary = {
            **summary_base,
            "status": status,
            "final_iteration": state.iteration,
            "best_val_psnr": state.best_val_psnr,
            "best_iteration": state.best_iteration,
            "wall_time_seconds": round(state.elapsed_seconds, 3),
            "best_checkpoint": str(run_dir.best_checkpoint) if run_dir.best_checkpoint.is_file() else None,
            "last_checkpoint": str(run_dir.last_checkpoint) if run_dir.last_checkpoint.is_file() else None,
            **extra,
        }
        run_dir.write_summary(summary)
        return summary

    taps_student = objective.student_taps if teacher is not None else []
    taps_teacher = objective.teacher_taps if teacher is not None else []
    autocast_dtype = torch.float16 if use_fp16 else torch.bfloat16
    segment_start = time.perf_counter()
    segment_offset = state.elapsed_seconds
    bar = tqdm(total=settings.iterations, initial=state.iteration, disable=not progress,
               desc=f"{role} {settings.model.preset}", dynamic_ncols=True)
    model.train()
    with FeatureTaps(model, taps_student) as student_taps, _maybe_taps(teacher, taps_teacher) as teacher_taps:
        while state.iteration < settings.iterations:
            iteration = state.iteration
            lr_batch, hr_batch = patches.batch(iteration, config.data.batch_size)
            lr_batch = lr_batch.to(device, non_blocking=True)
            hr_batch = hr_batch.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=config.amp):
                total, terms = compute_loss(forward_model, teacher, objective, lr_batch, hr_batch,
                                            student_taps=student_taps if taps_student else None,
                                            teacher_taps=teacher_taps if taps_teacher else None)
            if not torch.isfinite(total).item():
                state.elapsed_seconds = segment_offset + time.perf_counter() - segment_start
                kept = f"last good checkpoint {run_dir.last_checkpoint} kept" if run_dir.last_checkpoint.is_file() \
                    else "no checkpoint had been written yet"
                bar.close()
                values = ", ".join(f"{name}={float(value.detach()):.4g}" for name, value in terms.items())
                write_summary("stopped: non-finite loss", failed_iteration=iteration + 1)
                raise FakdError(
                    f"loss became {float(total.detach())} at iteration {iteration + 1} ({values}); training "
                    f"stopped, {kept} (lower the learning rate or check the data)"
                )
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                total.backward()
                optimizer.step()
            lr_now = optimizer.param_groups[0]["lr"]
            scheduler.step()
            state.iteration = iteration + 1
            bar.update(1)

            record: dict[str, Any] = {}
            if state.iteration % config.log_every == 0 or state.iteration == settings.iterations:
                values = {name: float(value.detach()) for name, value in terms.items()}
                record = {"iteration": state.iteration, "lr": lr_now, "loss": float(total.detach()),
                          **values, **objective.shares(values)}
                bar.set_postfix({name: f"{value:.4f}" for name, value in record.items()
                                 if name not in ("iteration", "lr") and not name.startswith("share_")},
                                refresh=False)
            if state.iteration % config.validate_every == 0 or state.iteration == settings.iterations:
                value = validation_psnr(model, patches.validation, scale=config.scale, device=device)
                model.train()
                record = record or {"iteration": state.iteration, "lr": lr_now}
                record["val_psnr"] = value
                if state.best_val_psnr is None or value > state.best_val_psnr:
                    state.best_val_psnr, state.best_iteration = value, state.iteration
                    save_checkpoint(checkpoint_payload(full=False), run_dir.best_checkpoint)
            state.elapsed_seconds = segment_offset + time.perf_counter() - segment_start
            if record:
                record["elapsed_seconds"] = round(state.elapsed_seconds, 3)
                run_dir.append_metrics(record)
            if state.iteration % config.checkpoint_every == 0 or state.iteration == settings.iterations:
                save_checkpoint(checkpoint_payload(full=True), run_dir.last_checkpoint)
    bar.close()
    return write_summary("finished")


def compute_loss(model, teacher, objective, lr_batch, hr_batch, *, student_taps=None, teacher_taps=None):
    """One forward pass of the objective: teacher (frozen, no_grad) first, then the student.

    ``student_taps``/``teacher_taps`` are live ``FeatureTaps`` on the two models (or None when the
    objective has no feature terms). Returns ``(total, {term: value})``.
    """
    teacher_sr = None
    if teacher is not None:
        with torch.no_grad():
            teacher_sr = teacher(lr_batch)
    student_sr = model(lr_batch)
    return objective(
        student_sr=student_sr.float(),
        hr=hr_batch,
        teacher_sr=None if teacher_sr is None else teacher_sr.float(),
        student_features=student_taps.features if student_taps is not None else None,
        teacher_features=teacher_taps.features if teacher_taps is not None else None,
    )


class _maybe_taps:
    """``FeatureTaps`` on the teacher when there is one, else an empty stand-in."""

    def __init__(self, model: nn.Module | None, names: list[str]):
        self.taps = FeatureTaps(model, names) if model is not None and names else None
        self.features: dict[str, torch.Tensor] = {}

    def __enter__(self):
        return self.taps.__enter__() if self.taps is not None else self

    def __exit__(self, *exc):
        if self.taps is not None:
            return self.taps.__exit__(*exc)
        return False


def _prepare_adapters(objective: DistillationObjective, model: nn.Module, teacher: nn.Module, patches, device) -> None:
    """Let the objective size its learnable adapters (FitNet) from one sample pass."""
    lr_batch, _ = patches.batch(0, 1)
    lr_batch = lr_batch.to(device)
    with torch.no_grad(), FeatureTaps(model, objective.student_taps) as student_taps, \
            FeatureTaps(teacher, objective.teacher_taps) as teacher_taps:
        model(lr_batch)
        teacher(lr_batch)
        objective.prepare(dict(student_taps.features), dict(teacher_taps.features))


def _restore(path: Path, model, objective, optimizer, scheduler, scaler) -> TrainingState:
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
