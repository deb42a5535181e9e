"""How many torch CPU threads a process uses, so that the machine is not oversubscribed.

torch starts one thread per core. When other work already keeps the cores busy (a second training
run, parallel sweep workers, a test suite), more threads than free cores make every step slower, not
faster: on a 2-core machine with another job running, a training step took 2–4 s with torch's two
threads and about 1 s with one. So fakd picks the count, in this order:

1. ``--threads N`` (the user's word);
2. the run config's ``threads`` (a profile may fix it, e.g. ``smoke``: 1);
3. ``OMP_NUM_THREADS`` when set (fakd's sweep workers get cores / workers this way);
4. the cores this process may use, shared between ``workers`` parallel processes, and no more than
   the cores other processes leave free *now*: the CPU time they used over the last
   ``SAMPLE_SECONDS`` (``/proc/stat``, this process's own time left out), at least one.

Why not the load average: the 1-minute load average still counts a job that ended a minute ago (it
decays over minutes), so a run started right after another one on an idle machine got one thread
instead of two — 1.4–1.6x slower steps (issue 24). A job that keeps a core busy shows in a short
sample as well as in the load average. Where ``/proc/stat`` is missing (not Linux) the 1-minute load
average stands in.

The choice is printed (on stdout: stderr is kept for the one-line error of a user mistake) with the
reason and how to override it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fakd.errors import FakdError

SAMPLE_SECONDS = 0.25  # long enough for ~25 scheduler ticks per core, short enough not to slow a command's start
PROC_STAT = "/proc/stat"
REQUESTED = "--threads"  # the reason of a count the user gave on the command line


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why it was chosen."""

    threads: int
    reason: str

    def __str__(self) -> str:
        plural = "" if self.threads == 1 else "s"
        if self.reason == REQUESTED:
            return f"{self.threads} torch thread{plural} (as {REQUESTED} asked)"
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


def _busy_ticks(cpus: set[int] | None) -> int | None:
    """Busy clock ticks since boot summed over ``cpus`` (None: all), from /proc/stat; None without it."""
    try:
        with open(PROC_STAT) as stat:
            lines = [line.split() for line in stat if line.startswith("cpu") and line[3:4].isdigit()]
    except OSError:
        return None
    total = 0
    for fields in lines:
        if cpus is None or int(fields[0][3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[1:9])
            total += user + nice + system + irq + softirq + steal  # guest time is inside user
    return total


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def busy_cores(*, interval: float = SAMPLE_SECONDS) -> float | None:
    """Cores other processes keep busy now: their CPU time over ``interval`` seconds on the cores this
    process may use, in cores (this process's own time left out); None where /proc/stat is missing."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    before, own_before, started = _busy_ticks(cpus), _own_cpu_seconds(), time.monotonic()
    if before is None:
        return None
    time.sleep(interval)
    after, own_after, elapsed = _busy_ticks(cpus), _own_cpu_seconds(), time.monotonic() - started
    if after is None or elapsed <= 0:
        return None
    others = (after - before) / os.sysconf("SC_CLK_TCK") - (own_after - own_before)
    return max(0.0, others / elapsed)


def threads_per_worker(workers: int, *, cores: int | None = None) -> int:
    """Cores shared evenly between ``workers`` parallel processes, at least one each."""
    return max(1, (available_cores() if cores is None else cores) // max(1, workers))


def _environment_threads(environ: Mapping[str, str]) -> int | None:
    try:
        value = int(environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def _machine_business() -> tuple[float | None, str]:
    """Cores busy with other work and how that was measured: a short sample, else the load average."""
    busy = busy_cores()
    if busy is not None:
        return busy, f"{busy:.1f} of them busy with other work now"
    load = machine_load()
    return load, "" if load is None else f"1-minute load {load:.1f}"


def choose_threads(requested: int | None = None, *, configured: int = 0, workers: int = 1,
                   environ: Mapping[str, str] | None = None, cores: int | None = None,
                   busy: float | None = None) -> ThreadChoice:
    """The thread count for one of ``workers`` parallel processes (see the module's order of rules).

    ``cores``/``busy`` (cores busy with other work) default to this machine's now; pass them to
    decide for another situation (tests).
    """
    if requested is not None:
        if requested < 1:
            raise FakdError(f"--threads must be a whole number ≥ 1, got {requested}")
        return ThreadChoice(requested, REQUESTED)
    if configured:
        return ThreadChoice(int(configured), "the run config's threads setting")
    from_environment = _environment_threads(os.environ if environ is None else environ)
    if from_environment:
        return ThreadChoice(from_environment, "OMP_NUM_THREADS")
    cores = available_cores() if cores is None else cores
    share = threads_per_worker(workers, cores=cores)
    busy, measured = _machine_business() if busy is None else (busy, f"{busy:.1f} of them busy with other work")
    workers_text = "" if workers == 1 else f" shared by {workers} workers"
    if busy is None:
        return ThreadChoice(share, f"{cores} cores{workers_text}")
    free = max(1, round(cores - busy))
    threads = max(1, min(share, free // max(1, workers)))
    return ThreadChoice(threads, f"{cores} cores{workers_text}, {measured}")


def use_threads(requested: int | None = None, *, configured: int = 0, workers: int = 1,
                command: str = "fakd", quiet: bool = False) -> ThreadChoice:
    """Choose the count (``choose_threads``), apply it to torch in this process, and say so."""
    import torch

    choice = choose_threads(requested, configured=configured, workers=workers)
    torch.set_num_threads(choice.threads)
    if not quiet:
        print(f"{command}: {choice}", flush=True)
    return choice
