"""Environment of the kernels fakd starts: thread counts shared out between parallel workers, and the
tuned allocator of ``fakd.malloc`` (kernels train models, and the settings only take effect in a
process started with them)."""

from fakd.malloc import TUNED_MALLOC_VARIABLES
from fakd.threads import choose_threads

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def kernel_environment(*, threads: int | None = None) -> dict[str, str]:
    """Variables to add to a kernel's environment: thread limits (None: ``fakd.threads.choose_threads``
    for one process — $OMP_NUM_THREADS, else the cores other processes leave free now) and the tuned
    allocator settings."""
    environment = dict(TUNED_MALLOC_VARIABLES)
    threads = choose_threads().threads if threads is None else threads
    environment.update({name: str(threads) for name in THREAD_VARIABLES})
    return environment
