"""Environment of the kernels fakd starts: thread counts shared out between parallel workers, and the
tuned allocator of ``fakd.engine.malloc`` (kernels train models, and the settings only take effect in a
process started with them)."""

import os

from fakd.engine.malloc import TUNED_MALLOC_VARIABLES

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Cores shared evenly between ``workers`` parallel kernels, at least one each."""
    return max(1, available_cores() // max(1, workers))


def kernel_environment(*, threads: int | None = None) -> dict[str, str]:
    """Variables to add to a kernel's environment: thread limits (None: leave torch's default) and the
    tuned allocator settings."""
    environment = dict(TUNED_MALLOC_VARIABLES)
    if threads is not None:
        environment.update({name: str(threads) for name in THREAD_VARIABLES})
    return environment
