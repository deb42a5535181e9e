"""One run on several processes: torchrun's environment, the process group, DistributedDataParallel.

``torchrun --nproc-per-node N -m fakd train|distill ...`` starts N copies of the command; each finds
its rank in torchrun's environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``: :func:`ranks_from_environment`).
With one process (no torchrun, or ``WORLD_SIZE=1``) nothing here acts and the trainer runs as always.
With more:

- **Process group**: NCCL on CUDA (each rank on ``cuda:<LOCAL_RANK>``), gloo on the CPU, with a
  timeout (``FAKD_DDP_TIMEOUT`` seconds, default 1800): a collective that waits longer than that for a
  rank — stuck, or gone without torchrun noticing — fails instead of hanging. It must outlast rank 0's
  validation and checkpoint writes, which the other ranks wait for in their next step.
- **Batch**: the config's ``data.batch_size`` is the *global* batch; rank r trains on its contiguous
  share ``TrainingPatches.batch(i, B, part=r, parts=N)`` of the very batch one process would draw.
- **Gradients**: the student (with the objective's learnable adapters, if any) is wrapped in
  ``DistributedDataParallel``, which averages the ranks' gradients; the frozen teacher is not wrapped
  (it has no gradient) and runs on each rank's share. Every loss term is a mean over equally sized
  per-image parts, so the mean of the ranks' losses over equal shares is the one-process loss and the
  averaged gradient is its gradient (docs/distributed.md).
- **Logged values**: the ranks' loss terms are averaged every step (one small all-reduce), so every
  rank sees the global loss: the metrics log holds what one process would log, and a non-finite loss
  stops every rank at the same step.
- **Writing**: only rank 0 owns the run folder (lock, config, metrics, checkpoints, summary) and
  validates; :func:`on_rank_zero` runs such a step there and hands its result, or its ``FakdError``,
  to the others, so a refused folder stops every rank with the same message instead of a hang.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from fakd.errors import FakdError

TIMEOUT_VARIABLE = "FAKD_DDP_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800
Result = TypeVar("Result")


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job: global rank, rank on its node, number of processes."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run folder and validates."""
        return self.rank == 0

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.world_size}"


def _whole(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise FakdError(f"environment variable {name}={text!r} is not a whole number (torchrun sets it)") from None


def ranks_from_environment(environ: Mapping[str, str] | None = None) -> Ranks:
    """The ranks torchrun set (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``); one process without them."""
    environ = os.environ if environ is None else environ
    ranks = Ranks(rank=_whole(environ, "RANK", 0), local_rank=_whole(environ, "LOCAL_RANK", 0),
                  world_size=_whole(environ, "WORLD_SIZE", 1))
    if ranks.world_size < 1 or not 0 <= ranks.rank < ranks.world_size or ranks.local_rank < 0:
        raise FakdError(f"torchrun's RANK={ranks.rank}, LOCAL_RANK={ranks.local_rank}, WORLD_SIZE="
                        f"{ranks.world_size} do not fit together")
    return ranks


def timeout_seconds(environ: Mapping[str, str] | None = None) -> int:
    """How long a collective may wait for the other ranks (``FAKD_DDP_TIMEOUT``, default 1800 s)."""
    seconds = _whole(os.environ if environ is None else environ, TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S)
    if seconds < 1:
        raise FakdError(f"{TIMEOUT_VARIABLE} must be a whole number of seconds ≥ 1, got {seconds}")
    return seconds


def rank_device(ranks: Ranks, device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:<LOCAL_RANK>`` for a CUDA run under torchrun, else ``device``."""
    if not ranks.distributed or device.type != "cuda":
        return device
    if device.index is not None:
        raise FakdError(f"under torchrun each rank uses the GPU of its LOCAL_RANK; --device {device} names "
                        f"one GPU for all of them: use --device cuda (or auto)")
    if ranks.local_rank >= torch.cuda.device_count():
        raise FakdError(f"{ranks} needs GPU {ranks.local_rank} of its node, which has "
                        f"{torch.cuda.device_count()}: start at most that many processes per node")
    torch.cuda.set_device(ranks.local_rank)
    return torch.device("cuda", ranks.local_rank)


def check_batch_split(ranks: Ranks, batch_size: int) -> None:
    """The global batch must split into equal shares (the equivalence with one process needs them)."""
    if batch_size % ranks.world_size:
        raise FakdError(f"the global batch data.batch_size={batch_size} does not split into {ranks.world_size} "
                        f"equal shares (one per process): use a multiple of {ranks.world_size}")


def start_process_group(ranks: Ranks, device: torch.device) -> None:
    """Join the job's process group (NCCL on CUDA, gloo on CPU) with the timeout; nothing for one process."""
    if not ranks.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=ranks.rank, world_size=ranks.world_size,
                            timeout=timedelta(seconds=timeout_seconds()),
                            device_id=device if device.type == "cuda" else None)


def end_process_group(ranks: Ranks, *, wait: bool) -> None:
    """Leave the process group; ``wait``: after every rank got here (a finished run ends together)."""
    if not ranks.distributed or not dist.is_initialized():
        return
    try:
        if wait:
            dist.barrier()
    finally:
        dist.destroy_process_group()


def on_rank_zero(ranks: Ranks, action: Callable[[], Result]) -> Result:
    """Run ``action`` on rank 0 only and return its (picklable) result on every rank; a ``FakdError``
    there is raised on every rank with the same message."""
    if not ranks.distributed:
        return action()
    outcome: list[Any] = [None, None]
    if ranks.is_main:
        try:
            outcome = [action(), None]
        except FakdError as error:
            outcome = [None, str(error)]
    dist.broadcast_object_list(outcome, src=0)
    if outcome[1] is not None:
        raise FakdError(outcome[1])
    return outcome[0]


def average(ranks: Ranks, values: list[torch.Tensor]) -> list[torch.Tensor]:
    """The mean over the ranks of each scalar in ``values`` (detached; unchanged for one process)."""
    if not ranks.distributed:
        return values
    stacked = torch.stack([value.detach().float().reshape(()) for value in values])
    dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
    return list((stacked / ranks.world_size).unbind())


def wrap_for_gradients(ranks: Ranks, module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel (its gradients averaged over the ranks), or itself."""
    if not ranks.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def is_lost_rank(ranks: Ranks, error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed — another rank gone, or silent past the timeout:
    torch's ``DistError``, or the ``RuntimeError`` gloo raises from inside DDP (``Connection reset by
    peer``, ``Timed out waiting``), which names gloo's source. Any other error is left as it is."""
    if not ranks.distributed:
        return False
    return isinstance(error, dist.DistError) or (isinstance(error, RuntimeError) and "gloo" in str(error).lower())


def lost_rank_error(ranks: Ranks, error: Exception, *, kept: str) -> FakdError:
    """The one line for a collective that failed: another rank died, or did not answer in time."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return FakdError(f"{ranks}: the job lost another rank or it did not answer within "
                     f"{TIMEOUT_VARIABLE}={timeout_seconds()} s ({detail[:200]}); training stopped, {kept}; "
                     f"start the job again with --resume")
