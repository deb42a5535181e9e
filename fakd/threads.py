"""How many torch CPU threads a process uses, so that the machine is not oversubscribed.

torch starts one thread per core. When other work already keeps the cores busy (a second training
run, parallel sweep workers, a test suite), more threads than free cores make every step slower, not
faster: on a 2-core machine with another job running, a training step took 2–4 s with torch's two
threads and about 1 s with one. So fakd picks the count, in this order:

1. ``--threads N`` (the user's word);
2. the run config's ``threads`` (a profile may fix it, e.g. ``smoke``: 1);
3. ``OMP_NUM_THREADS`` when set (fakd's sweep workers get cores / workers this way);
4. the cores this process may use, shared between ``workers`` parallel processes, and no more than
   the cores left free by the machine's current load (the 1-minute load average), at least one.

The choice is printed (on stdout: stderr is kept for the one-line error of a user mistake) with the
reason and how to override it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from fakd.errors import FakdError


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why it was chosen."""

    threads: int
    reason: str

    def __str__(self) -> str:
        plural = "" if self.threads == 1 else "s"
        return f"{self.threads} torch thread{plural} ({self.reason}; --threads N overrides)"


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def machine_load() -> float | None:
    """The 1-minute load average (runnable processes), or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def threads_per_worker(workers: int, *, cores: int | None = None) -> int:
    """Cores shared evenly between ``workers`` parallel processes, at least one each."""
    return max(1, (available_cores() if cores is None else cores) // max(1, workers))


def _environment_threads(environ: Mapping[str, str]) -> int | None:
    try:
        value = int(environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def choose_threads(requested: int | None = None, *, configured: int = 0, workers: int = 1,
                   environ: Mapping[str, str] | None = None, cores: int | None = None,
                   load: float | None = None) -> ThreadChoice:
    """The thread count for one of ``workers`` parallel processes (see the module's order of rules).

    ``cores``/``load`` default to this machine's; pass them to decide for another situation (tests).
    """
    if requested is not None:
        if requested < 1:
            raise FakdError(f"--threads must be a whole number ≥ 1, got {requested}")
        return ThreadChoice(requested, "--threads")
    if configured:
        return ThreadChoice(int(configured), "the run config's threads setting")
    from_environment = _environment_threads(os.environ if environ is None else environ)
    if from_environment:
        return ThreadChoice(from_environment, "OMP_NUM_THREADS")
    cores = available_cores() if cores is None else cores
    share = threads_per_worker(workers, cores=cores)
    load = machine_load() if load is None else load
    workers_text = "" if workers == 1 else f" shared by {workers} workers"
    if load is None:
        return ThreadChoice(share, f"{cores} cores{workers_text}")
    free = max(1, round(cores - load))
    threads = max(1, min(share, free // max(1, workers)))
    return ThreadChoice(threads, f"{cores} cores{workers_text}, 1-minute load {load:.1f}")


def use_threads(requested: int | None = None, *, configured: int = 0, workers: int = 1,
                command: str = "fakd", quiet: bool = False) -> ThreadChoice:
    """Choose the count (``choose_threads``), apply it to torch in this process, and say so."""
    import torch

    choice = choose_threads(requested, configured=configured, workers=workers)
    torch.set_num_threads(choice.threads)
    if not quiet:
        print(f"{command}: {choice}", flush=True)
    return choice
