"""One training loop for the three jobs: teacher (L1 to HR), student alone, distilled student.

``train_run(...)`` sets the run up (``fakd.train.setup``: the model from the run's config, the
objective — plain L1 for ``teacher``/``student``; ``DistillationObjective`` with a frozen eval-mode
teacher for ``distill`` —, Adam and the schedule), then iterates over ``TrainingPatches.batch(i, B)`` — a pure
function of (seed, i), so a run resumed from ``last.pt`` sees the same batches and, on CPU with the
same thread count, ends bitwise equal to an uninterrupted one. Validation PSNR on the patches'
held-out validation images picks ``best.pt`` (never a test set). A non-finite loss stops the run
before the optimiser touches the weights; the last good checkpoint stays as it was.

Under torchrun the same loop runs on every rank (``fakd.train.distributed``): each rank trains on its
share of the global batch, DistributedDataParallel averages the gradients, and rank 0 alone writes the
run folder and validates.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from fakd.device import autocast_dtype, describe_autocast, resolve_device
from fakd.distill import DistillationObjective
from fakd.errors import FakdError
from fakd.train.config import RunConfig
from fakd.train.data import open_training_patches, validation_psnr
from fakd.train.distributed import (Ranks, average, check_batch_split, end_process_group, is_lost_rank,
                                    lost_rank_error, on_rank_zero, rank_device, ranks_from_environment,
                                    start_process_group, wrap_for_gradients)
from fakd.train.loss import PairedTaps, StudentLoss, compute_loss  # compute_loss: also imported from here (benchmarks, tests)
from fakd.train.records import checkpoint_payload, run_summary, summary_base
from fakd.train.rundir import RunDirectory
from fakd.train.setup import (TrainingState, build_role_model, initialise_student, job_description, make_scheduler,
                              prepare_adapters, restore_training_state, teacher_and_objective)
from fakd.train.teacher_cache import TeacherOutputCache, TeacherOutputs, cache_key, note, run_teacher, stored_taps
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
    same teacher, data and seed (``fakd.train.teacher_cache``); used when ``config.teacher_cache`` is on
    (and the run is on one process). Under torchrun (``WORLD_SIZE`` > 1) every rank calls this and
    trains its share of each batch; rank 0 writes the run folder (``fakd.train.distributed``)."""
    ranks = ranks_from_environment()
    training, finished = None, False
    try:
        training = Training.set_up(config, role=role, out=out, teacher_checkpoint=teacher_checkpoint,
                                   data_root=data_root, resume=resume, overwrite=overwrite,
                                   teacher_cache=teacher_cache, ranks=ranks)
        summary = _train_loop(training, progress=progress and ranks.is_main)
        finished = True
        return summary
    except RuntimeError as error:
        if not is_lost_rank(ranks, error):
            raise
        if training is None:
            raise lost_rank_error(ranks, error, kept="nothing was trained") from None
        raise training.stop_on_lost_rank(error) from None
    finally:
        end_process_group(ranks, wait=finished)


def _train_loop(training: "Training", *, progress: bool) -> dict[str, Any]:
    """Steps from the state's iteration to the end, with logging, validation and checkpoints."""
    iterations = training.settings.iterations
    if training.finished_before is not None:  # resumed a finished run: nothing to do, its summary untouched
        return training.finished_before
    bar = tqdm(total=iterations, initial=training.state.iteration, disable=not progress,
               desc=f"{training.role} {training.settings.model.preset}", dynamic_ncols=True)
    training.model.train()
    with training.taps() as (student_taps, teacher_taps):
        while training.state.iteration < iterations:
            total, terms, lr_now = training.step(student_taps, teacher_taps, bar=bar)
            bar.update(1)
            record = training.log_record(total, terms, lr_now, bar=bar)
            training.validate_and_checkpoint(record, lr_now)
    bar.close()
    return training.write_summary("finished")


FINISHED_BEFORE = -1  # rank 0's answer to the other ranks: the run folder holds a finished run already


class Training:
    """One run's live objects and its lifecycle, in the order BasicSR's ``SRModel`` uses: set up
    (model, objective, optimiser, run folder, resumed state), one optimisation step, validation and
    checkpoints, the summary."""

    def __init__(self, *, config: RunConfig, role: str, device: torch.device, run_dir: RunDirectory,
                 job: dict[str, Any], model: nn.Module, teacher: nn.Module | None,
                 objective: DistillationObjective, patches, ranks: Ranks = Ranks()):
        self.config, self.role, self.device, self.run_dir, self.job = config, role, device, run_dir, job
        self.ranks = ranks
        self.settings = config.role("teacher" if role == "teacher" else "student")
        self.model, self.teacher, self.objective, self.patches = model, teacher, objective, patches
        parameters = list(model.parameters()) + list(objective.parameters())
        self.optimizer = torch.optim.Adam(parameters, lr=self.settings.lr, betas=tuple(self.settings.betas))
        self.scheduler = make_scheduler(self.optimizer, self.settings, self.settings.iterations)
        # --amp: bfloat16 on a CPU with bfloat16 instructions, float32 on one without; CUDA as always
        self.autocast_dtype = autocast_dtype(device, amp=config.amp)
        self.use_fp16 = self.autocast_dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_fp16) if config.amp and device.type == "cuda" \
            else None
        self.forward_model = compiled(model) if config.compile else model
        self.student_loss: nn.Module = StudentLoss(self.forward_model, objective)  # DDP-wrapped by set_up
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.state = TrainingState()
        self.teacher_cache: TeacherOutputCache | None = None
        self.finished_before: dict[str, Any] | None = None  # the summary of a finished run resumed
        label = "+".join(config.distill.methods) if role == "distill" else role
        self.model_name = f"{self.settings.model.preset} {label} s{config.seed}"
        self.summary_base = summary_base(self)
        self._segment_start = time.perf_counter()
        self._segment_offset = 0.0

    @classmethod
    def set_up(cls, config: RunConfig, *, role: str, out: str | Path, teacher_checkpoint: str | Path | None,
               data_root: str | Path | None, resume: bool, overwrite: bool,
               teacher_cache: str | Path | None = None, ranks: Ranks = Ranks()) -> "Training":
        """Check the job, build model, teacher and objective, prepare the run folder, restore ``last.pt``
        (under torchrun: join the process group first, and wrap the student in DDP last)."""
        device = rank_device(ranks, resolve_device(config.device))
        if config.amp and ranks.is_main:
            print(describe_autocast(device, autocast_dtype(device, amp=True)), flush=True)
        check_batch_split(ranks, config.data.batch_size)
        if config.threads:
            torch.set_num_threads(config.threads)
        job = job_description(role=role, config=config, teacher_checkpoint=teacher_checkpoint)
        start_process_group(ranks, device)
        run_dir = RunDirectory(out)
        torch.manual_seed(config.seed)
        model = build_role_model(config, role).to(device)
        teacher, objective = teacher_and_objective(config, role=role, model=model,
                                                    teacher_checkpoint=teacher_checkpoint, device=device)
        initialise_student(config, role=role, model=model, teacher=teacher, teacher_checkpoint=teacher_checkpoint,
                           device=device)
        patches = open_training_patches(config, data_root=data_root)
        objective = objective.to(device)
        if config.channels_last:
            for network in (model, teacher):
                if network is not None:
                    network.to(memory_format=torch.channels_last)
        if teacher is not None and objective.terms:
            prepare_adapters(objective, model, teacher, patches, device)
        training = cls(config=config, role=role, device=device, run_dir=run_dir, job=job, model=model,
                       teacher=teacher, objective=objective, patches=patches, ranks=ranks)
        training.prepare_run_folder(resume=resume, overwrite=overwrite)
        training.student_loss = wrap_for_gradients(ranks, training.student_loss, device)
        if config.teacher_cache and teacher is not None and teacher_cache is not None:
            training.open_teacher_cache(teacher_cache)
        return training

    def open_teacher_cache(self, folder: str | Path) -> None:
        """Share the teacher's outputs through ``folder`` — on one process only: a rank computes just its
        share of a batch, and the cache holds whole batches (docs/distributed.md)."""
        if self.ranks.distributed:
            if self.ranks.is_main:
                note(f"off under torchrun ({self.ranks.world_size} processes): every rank runs the teacher "
                     f"on its share of the batch; {folder} is neither read nor written")
            return
        self.teacher_cache = TeacherOutputCache(folder, key=cache_key(
            teacher_sha256=self.job["teacher_sha256"], config=self.config, patches=self.patches,
            teacher_taps=stored_taps(self.objective.teacher_taps, self.teacher), device=self.device,
            autocast=self.autocast_dtype), cap_bytes=int(self.config.teacher_cache_gb * 1e9) or None)

    def prepare_run_folder(self, *, resume: bool, overwrite: bool) -> None:
        """Claim the run folder (rank 0); on resume, load ``last.pt`` (every rank) and drop metrics
        logged after it (rank 0)."""
        resuming, iteration = on_rank_zero(self.ranks, lambda: self._claim_run_folder(resume=resume,
                                                                                      overwrite=overwrite))
        if iteration == FINISHED_BEFORE and not self.ranks.is_main:
            self.finished_before = self.run_dir.finished_summary(iterations=self.settings.iterations)
            return
        if resuming and not self.ranks.is_main and iteration is not None:
            self._restore()
            if self.state.iteration != iteration:
                raise FakdError(f"{self.ranks} read iteration {self.state.iteration} from {self.run_dir.last_checkpoint}, "
                                f"rank 0 {iteration}: the run folder must be on storage every node shares")
        self._segment_offset = self.state.elapsed_seconds
        self._segment_start = time.perf_counter()

    def _claim_run_folder(self, *, resume: bool, overwrite: bool) -> tuple[bool, int | None]:
        """The run folder prepared (locked, checked, created) and ``last.pt`` restored: (resuming, its iteration)."""
        resuming = self.run_dir.prepare(config=self.config.to_dict(), job=self.job, resume=resume,
                                        overwrite=overwrite)
        if not resuming:
            return False, None
        # a finished run (with last.pt, or restored from an archive without) stays as it is
        self.finished_before = self.run_dir.finished_summary(iterations=self.settings.iterations)
        if self.finished_before is not None:
            return True, FINISHED_BEFORE
        restored = self.run_dir.last_checkpoint.is_file()
        if restored:
            self._restore()
        self.run_dir.truncate_metrics(self.state.iteration)
        return True, self.state.iteration if restored else None

    def _restore(self) -> None:
        self.state = restore_training_state(self.run_dir.last_checkpoint, self.model, self.objective, self.optimizer,
                                            self.scheduler, self.scaler)

    def taps(self):
        """Feature taps on student and teacher for the objective's terms (empty without a teacher)."""
        with_teacher = self.teacher is not None
        teacher_names = self.teacher_cache.taps if self.teacher_cache is not None else self.objective.teacher_taps
        return PairedTaps(self.model, self.objective.student_taps if with_teacher else [],
                           self.teacher, teacher_names if with_teacher else [])

    def step(self, student_taps, teacher_taps, *, bar) -> tuple[torch.Tensor, dict, float]:
        """One optimisation step on batch ``state.iteration``; returns (total, terms, the step's lr).

        A non-finite loss writes the summary and raises FakdError before the weights change."""
        iteration = self.state.iteration
        lr_batch, hr_batch = self.local_batch(iteration)
        lr_batch = lr_batch.to(self.device, non_blocking=True, memory_format=self.memory_format)
        hr_batch = hr_batch.to(self.device, non_blocking=True)
        with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None):
            teacher_outputs = self.teacher_outputs(iteration, lr_batch, teacher_taps)
            total, terms = self.student_loss(lr_batch, hr_batch, student_taps=student_taps,
                                             teacher_outputs=teacher_outputs)
        logged_total, logged_terms = self.global_values(total, terms)
        if not torch.isfinite(logged_total).item():
            bar.close()
            self._stop_on_non_finite(logged_total, logged_terms, iteration)
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
        return logged_total, logged_terms, lr_now

    def local_batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``iteration`` (the global batch), or this rank's share of it under torchrun."""
        if not self.ranks.distributed:
            return self.patches.batch(iteration, self.config.data.batch_size)
        return self.patches.batch(iteration, self.config.data.batch_size, part=self.ranks.rank,
                                  parts=self.ranks.world_size)

    def global_values(self, total: torch.Tensor, terms: dict) -> tuple[torch.Tensor, dict]:
        """The loss and its terms over the global batch: the mean of the ranks' values (equal shares of
        means over images), the values themselves on one process."""
        if not self.ranks.distributed:
            return total, terms
        averaged = average(self.ranks, [total, *terms.values()])
        return averaged[0], dict(zip(terms, averaged[1:]))

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

    def stop_on_lost_rank(self, error: Exception) -> FakdError:
        """The summary (rank 0) and the one line for a collective that failed mid-run."""
        self._update_elapsed()
        kept = f"{self.run_dir.last_checkpoint} kept" if self.run_dir.last_checkpoint.is_file() \
            else "no checkpoint had been written yet"
        self.write_summary("stopped: lost a rank", failed_iteration=self.state.iteration + 1)
        return lost_rank_error(self.ranks, error, kept=kept)

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
        """Validation PSNR (a new best → ``best.pt``), the metrics line, ``last.pt`` when due (rank 0;
        the other ranks go on to the next step and wait there for it)."""
        if not self.ranks.is_main:
            return
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
        return checkpoint_payload(self, full=full)

    def write_summary(self, status: str, **extra: Any) -> dict[str, Any]:
        """Write ``summary.json`` (the run's facts, ``status``, best validation PSNR, checkpoints; rank 0
        writes it, every rank returns it)."""
        summary = run_summary(self, status, **extra)
        if self.ranks.is_main:
            self.run_dir.write_summary(summary)
        return summary


def compiled(model: nn.Module) -> nn.Module:
    """``torch.compile`` of the trained model, with dynamo guarding on forward hooks: the feature taps
    are hooks, and without the guard a graph compiled for the model without taps could be reused."""
    import torch._dynamo

    torch._dynamo.config.skip_nnmodule_hook_guards = False
    return torch.compile(model)
