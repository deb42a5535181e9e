"""One training loop for the three jobs: teacher (L1 to HR), student alone, distilled student.

``train_run(...)`` sets the run up (``fakd.train.setup``: the model from the run's config, the
objective — plain L1 for ``teacher``/``student``; ``DistillationObjective`` with a frozen eval-mode
teacher for ``distill`` —, Adam and the schedule), then iterates over ``TrainingPatches.batch(i, B)`` — a pure
function of (seed, i), so a run resumed from ``last.pt`` sees the same batches and, on CPU with the
same thread count, ends bitwise equal to an uninterrupted one. Validation PSNR on the patches'
held-out validation images picks ``best.pt`` (never a test set). A non-finite loss stops the run
before the optimiser touches the weights; the last good checkpoint stays as it was.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from fakd.device import resolve_device
from fakd.distill import DistillationObjective, FeatureTaps
from fakd.errors import FakdError
from fakd.malloc import malloc_is_tuned
from fakd.models import count_parameters
from fakd.train.config import RunConfig
from fakd.train.data import open_training_patches, validation_psnr
from fakd.train.rng import capture_rng_state
from fakd.train.rundir import RunDirectory, git_commit
from fakd.train.setup import (TrainingState, build_role_model, job_description, make_scheduler, prepare_adapters,
                              restore_training_state, teacher_and_objective)
from fakd.train.teacher_cache import TeacherOutputCache, TeacherOutputs, cache_key, run_teacher, stored_taps
from fakd.zoo.checkpoint import save_checkpoint


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
    teacher_cache: str | Path | None = None,
) -> dict[str, Any]:
    """Train (or resume) one run into ``out``; returns the summary written to summary.json.

    ``teacher_cache``: a folder where the frozen teacher's outputs are shared with other runs of the
    same teacher, data and seed (``fakd.train.teacher_cache``); used when ``config.teacher_cache`` is on."""
    training = Training.set_up(config, role=role, out=out, teacher_checkpoint=teacher_checkpoint,
                               data_root=data_root, resume=resume, overwrite=overwrite,
                               teacher_cache=teacher_cache)
    iterations = training.settings.iterations
    bar = tqdm(total=iterations, initial=training.state.iteration, disable=not progress,
               desc=f"{role} {training.settings.model.preset}", dynamic_ncols=True)
    training.model.train()
    with training.taps() as (student_taps, teacher_taps):
        while training.state.iteration < iterations:
            total, terms, lr_now = training.step(student_taps, teacher_taps, bar=bar)
            bar.update(1)
            record = training.log_record(total, terms, lr_now, bar=bar)
            training.validate_and_checkpoint(record, lr_now)
    bar.close()
    return training.write_summary("finished")


class Training:
    """One run's live objects and its lifecycle, in the order BasicSR's ``SRModel`` uses: set up
    (model, objective, optimiser, run folder, resumed state), one optimisation step, validation and
    checkpoints, the summary."""

    def __init__(self, *, config: RunConfig, role: str, device: torch.device, run_dir: RunDirectory,
                 job: dict[str, Any], model: nn.Module, teacher: nn.Module | None,
                 objective: DistillationObjective, patches):
        self.config, self.role, self.device, self.run_dir, self.job = config, role, device, run_dir, job
        self.settings = config.role("teacher" if role == "teacher" else "student")
        self.model, self.teacher, self.objective, self.patches = model, teacher, objective, patches
        parameters = list(model.parameters()) + list(objective.parameters())
        self.optimizer = torch.optim.Adam(parameters, lr=self.settings.lr, betas=tuple(self.settings.betas))
        self.scheduler = make_scheduler(self.optimizer, self.settings, self.settings.iterations)
        self.use_fp16 = config.amp and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_fp16) if config.amp else None
        self.forward_model = compiled(model) if config.compile else model
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.state = TrainingState()
        self.teacher_cache: TeacherOutputCache | None = None
        label = "+".join(config.distill.methods) if role == "distill" else role
        self.model_name = f"{self.settings.model.preset} {label} s{config.seed}"
        self.summary_base = _summary_base(self)
        self._segment_start = time.perf_counter()
        self._segment_offset = 0.0

    @classmethod
    def set_up(cls, config: RunConfig, *, role: str, out: str | Path, teacher_checkpoint: str | Path | None,
               data_root: str | Path | None, resume: bool, overwrite: bool,
               teacher_cache: str | Path | None = None) -> "Training":
        """Check the job, build model, teacher and objective, prepare the run folder, restore ``last.pt``."""
        device = resolve_device(config.device)
        if config.amp and device.type != "cuda":
            raise FakdError("--amp is a CUDA option; this run is on " + str(device))
        if config.threads:
            torch.set_num_threads(config.threads)
        job = job_description(role=role, config=config, teacher_checkpoint=teacher_checkpoint)
        run_dir = RunDirectory(out)
        torch.manual_seed(config.seed)
        model = build_role_model(config, role).to(device)
        teacher, objective = teacher_and_objective(config, role=role, model=model,
                                                    teacher_checkpoint=teacher_checkpoint, device=device)
        patches = open_training_patches(config, data_root=data_root)
        objective = objective.to(device)
        if config.channels_last:
            for network in (model, teacher):
                if network is not None:
                    network.to(memory_format=torch.channels_last)
        if teacher is not None and objective.terms:
            prepare_adapters(objective, model, teacher, patches, device)
        training = cls(config=config, role=role, device=device, run_dir=run_dir, job=job, model=model,
                       teacher=teacher, objective=objective, patches=patches)
        training.prepare_run_folder(resume=resume, overwrite=overwrite)
        if config.teacher_cache and teacher is not None and teacher_cache is not None:
            training.teacher_cache = TeacherOutputCache(teacher_cache, key=cache_key(
                teacher_sha256=job["teacher_sha256"], teacher_taps=stored_taps(objective.teacher_taps, teacher), config=config,
                patches=patches, device=device))
        return training

    def prepare_run_folder(self, *, resume: bool, overwrite: bool) -> None:
        """Claim the run folder; on resume, load ``last.pt`` and drop metrics logged after it."""
        resuming = self.run_dir.prepare(config=self.config.to_dict(), job=self.job, resume=resume,
                                        overwrite=overwrite)
        if resuming and self.run_dir.last_checkpoint.is_file():
            self.state = restore_training_state(self.run_dir.last_checkpoint, self.model, self.objective, self.optimizer,
                                  self.scheduler, self.scaler)
        if resuming:
            self.run_dir.truncate_metrics(self.state.iteration)
        self._segment_offset = self.state.elapsed_seconds
        self._segment_start = time.perf_counter()

    def taps(self):
        """Feature taps on student and teacher for the objective's terms (empty without a teacher)."""
        with_teacher = self.teacher is not None
        teacher_names = self.teacher_cache.taps if self.teacher_cache is not None else self.objective.teacher_taps
        return _PairedTaps(self.model, self.objective.student_taps if with_teacher else [],
                           self.teacher, teacher_names if with_teacher else [])

    def step(self, student_taps, teacher_taps, *, bar) -> tuple[torch.Tensor, dict, float]:
        """One optimisation step on batch ``state.iteration``; returns (total, terms, the step's lr).

        A non-finite loss writes the summary and raises FakdError before the weights change."""
        iteration = self.state.iteration
        lr_batch, hr_batch = self.patches.batch(iteration, self.config.data.batch_size)
        lr_batch = lr_batch.to(self.device, non_blocking=True, memory_format=self.memory_format)
        hr_batch = hr_batch.to(self.device, non_blocking=True)
        autocast_dtype = torch.float16 if self.use_fp16 else torch.bfloat16
        with torch.autocast(device_type=self.device.type, dtype=autocast_dtype, enabled=self.config.amp):
            teacher_outputs = self.teacher_outputs(iteration, lr_batch, teacher_taps)
            total, terms = compute_loss(self.forward_model, self.teacher, self.objective, lr_batch, hr_batch,
                                        student_taps=student_taps, teacher_outputs=teacher_outputs)
        if not torch.isfinite(total).item():
            bar.close()
            self._stop_on_non_finite(total, terms, iteration)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            total.backward()
            self.optimizer.step()
        lr_now = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.state.iteration = iteration + 1
        return total, terms, lr_now

    def teacher_outputs(self, iteration: int, lr_batch: torch.Tensor, teacher_taps) -> TeacherOutputs | None:
        """The teacher's SR and features for batch ``iteration``: from the cache when another run stored
        them (the first hit checked against a live forward), else a live forward, then stored."""
        if self.teacher is None:
            return None
        cache = self.teacher_cache
        stored = cache.lookup(iteration, self.device) if cache is not None else None
        if stored is not None and cache.checked:
            return stored
        live = run_teacher(self.teacher, lr_batch, teacher_taps)
        if stored is not None:
            cache.check(iteration, stored, live)
        elif cache is not None:
            cache.store(iteration, live)
        return live

    def _stop_on_non_finite(self, total: torch.Tensor, terms: dict, iteration: int) -> None:
        self._update_elapsed()
        kept = f"last good checkpoint {self.run_dir.last_checkpoint} kept" \
            if self.run_dir.last_checkpoint.is_file() else "no checkpoint had been written yet"
        values = ", ".join(f"{name}={float(value.detach()):.4g}" for name, value in terms.items())
        self.write_summary("stopped: non-finite loss", failed_iteration=iteration + 1)
        raise FakdError(
            f"loss became {float(total.detach())} at iteration {iteration + 1} ({values}); training "
            f"stopped, {kept} (lower the learning rate or check the data)"
        )

    def _due(self, every: int) -> bool:
        return self.state.iteration % every == 0 or self.state.iteration == self.settings.iterations

    def log_record(self, total: torch.Tensor, terms: dict, lr_now: float, *, bar) -> dict[str, Any]:
        """The metrics record of this iteration (loss, terms, shares) when logging is due, else {}."""
        if not self._due(self.config.log_every):
            return {}
        values = {name: float(value.detach()) for name, value in terms.items()}
        record = {"iteration": self.state.iteration, "lr": lr_now, "loss": float(total.detach()),
                  **values, **self.objective.shares(values)}
        bar.set_postfix({name: f"{value:.4f}" for name, value in record.items()
                         if name not in ("iteration", "lr") and not name.startswith("share_")}, refresh=False)
        return record

    def validate_and_checkpoint(self, record: dict[str, Any], lr_now: float) -> None:
        """Validation PSNR (a new best → ``best.pt``), the metrics line, ``last.pt`` when due."""
        if self._due(self.config.validate_every):
            value = validation_psnr(self.model, self.patches.validation, scale=self.config.scale, device=self.device)
            self.model.train()
            record = record or {"iteration": self.state.iteration, "lr": lr_now}
            record["val_psnr"] = value
            if self.state.best_val_psnr is None or value > self.state.best_val_psnr:
                self.state.best_val_psnr, self.state.best_iteration = value, self.state.iteration
                save_checkpoint(self.checkpoint_payload(full=False), self.run_dir.best_checkpoint)
        self._update_elapsed()
        if record:
            record["elapsed_seconds"] = round(self.state.elapsed_seconds, 3)
            self.run_dir.append_metrics(record)
        if self._due(self.config.checkpoint_every):
            save_checkpoint(self.checkpoint_payload(full=True), self.run_dir.last_checkpoint)

    def _update_elapsed(self) -> None:
        self.state.elapsed_seconds = self._segment_offset + time.perf_counter() - self._segment_start

    def checkpoint_payload(self, *, full: bool) -> dict[str, Any]:
        """``best.pt`` (model only) or, with ``full``, ``last.pt`` (plus everything a resume needs)."""
        payload = {
            "model_config": dict(self.model.config),
            "model_name": self.model_name,
            "model_state": self.model.state_dict(),
            "iteration": self.state.iteration,
            "role": self.role,
            "run_config": self.config.to_dict(),
            "best_val_psnr": self.state.best_val_psnr,
            "best_iteration": self.state.best_iteration,
        }
        if full:
            payload.update(
                objective_state=self.objective.state_dict(),
                optimizer_state=self.optimizer.state_dict(),
                scheduler_state=self.scheduler.state_dict(),
                scaler_state=self.scaler.state_dict() if self.scaler is not None else {},
                rng_state=capture_rng_state(),
                elapsed_seconds=self.state.elapsed_seconds,
            )
        return payload

    def write_summary(self, status: str, **extra: Any) -> dict[str, Any]:
        """Write ``summary.json`` (the run's facts, ``status``, best validation PSNR, checkpoints)."""
        run_dir = self.run_dir
        summary = {
            **self.summary_base,
            "status": status,
            "final_iteration": self.state.iteration,
            "best_val_psnr": self.state.best_val_psnr,
            "best_iteration": self.state.best_iteration,
            "wall_time_seconds": round(self.state.elapsed_seconds, 3),
            "best_checkpoint": str(run_dir.best_checkpoint) if run_dir.best_checkpoint.is_file() else None,
            "last_checkpoint": str(run_dir.last_checkpoint) if run_dir.last_checkpoint.is_file() else None,
            "teacher_cache": self.teacher_cache.summary() if self.teacher_cache is not None else None,
            **extra,
        }
        run_dir.write_summary(summary)
        return summary


def _summary_base(training: Training) -> dict[str, Any]:
    """What a run's summary says whatever its status: the job, the code, the machine."""
    return {
        "role": training.role,
        "out": str(training.run_dir.path),
        "model": training.settings.model.preset,
        "parameters": count_parameters(training.model),
        "scale": training.config.scale,
        "seed": training.config.seed,
        "profile": training.config.profile,
        "iterations": training.settings.iterations,
        "teacher_checkpoint": training.job.get("teacher_checkpoint"),
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(training.device),
        "threads": torch.get_num_threads(),
        "malloc_tuned": malloc_is_tuned(),
    }


def compiled(model: nn.Module) -> nn.Module:
    """``torch.compile`` of the trained model, with dynamo guarding on forward hooks: the feature taps
    are hooks, and without the guard a graph compiled for the model without taps could be reused."""
    import torch._dynamo

    torch._dynamo.config.skip_nnmodule_hook_guards = False
    return torch.compile(model)


def compute_loss(model, teacher, objective, lr_batch, hr_batch, *, student_taps=None, teacher_taps=None,
                 teacher_outputs: TeacherOutputs | None = None):
    """One forward pass of the objective: teacher (frozen, no_grad) first, then the student.

    ``student_taps``/``teacher_taps`` are live ``FeatureTaps`` on the two models (or None when the
    objective has no feature terms). ``teacher_outputs``, when given, stand for the teacher's forward
    (``Training.teacher_outputs``: a live one or the cache's). Returns ``(total, {term: value})``.
    """
    if teacher_outputs is None and teacher is not None:
        teacher_outputs = run_teacher(teacher, lr_batch, teacher_taps)
    student_sr = model(lr_batch)
    return objective(
        student_sr=student_sr.float(),
        hr=hr_batch,
        teacher_sr=None if teacher_outputs is None else teacher_outputs.sr.float(),
        student_features=student_taps.features if student_taps is not None else None,
        teacher_features=teacher_outputs.features if teacher_outputs is not None else None,
    )


class _PairedTaps:
    """``FeatureTaps`` on the student and, when there is one, the teacher, as one context; each side
    is None when it has no taps (the objective then reads no features from it)."""

    def __init__(self, model: nn.Module, student_names: list[str], teacher: nn.Module | None,
                 teacher_names: list[str]):
        self.student = FeatureTaps(model, student_names)
        self.teacher = FeatureTaps(teacher, teacher_names) if teacher is not None and teacher_names else None
        self.student_names, self.teacher_names = student_names, teacher_names

    def __enter__(self):
        return (self.student if self.student_names else None,
                self.teacher if self.teacher_names and self.teacher is not None else None)

    def __exit__(self, *exc_info) -> None:
        self.student.remove()
        if self.teacher is not None:
            self.teacher.remove()


