"""Where a sweep's points run: a Dask cluster embedded in this process, or an existing one.

Without a scheduler address, ``open_cluster`` starts worker *processes* on this machine (one point at
a time each; with GPUs, each worker owns ``gpus_per_point`` of this machine's GPUs through
``CUDA_VISIBLE_DEVICES`` and advertises them as the Dask resource ``GPU``) and closes them at the end.
With an address (``--scheduler``, or ``$FAKD_SCHEDULER``) it connects to that cluster and starts
nothing. Either way the caller gets a ``distributed.Client``. Run folders must lie on storage every
worker shares: ``check_shared_storage`` makes each worker prove it sees the output folder and the
notebook before any point runs.

Dask spawns its worker processes: a script that runs a sweep must call it under
``if __name__ == "__main__":`` (the ``fakd`` command and notebooks need nothing).
"""

import asyncio
import importlib.util
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fakd.errors import FakdError

SCHEDULER_ENV = "FAKD_SCHEDULER"
CONNECT_TIMEOUT_S = 5.0
WORKER_WAIT_S = 120.0
PROBE_PREFIX = ".fakd-probe-"


@dataclass(frozen=True)
class ClusterOptions:
    """How to fan points out: ``workers`` local processes, or the cluster at ``scheduler``;
    ``gpus_per_point`` GPUs (Dask resource ``GPU``) per point; ``threads`` torch threads per point
    (None: one)."""

    workers: int = 1
    scheduler: str | None = None
    gpus_per_point: int = 0
    threads: int | None = None

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {self.workers}")
        if self.gpus_per_point < 0:
            raise ValueError(f"gpus per point must be ≥ 0, got {self.gpus_per_point}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be ≥ 1, got {self.threads}")


def scheduler_address(option: str | None) -> str | None:
    """The scheduler to use: the option if given, else ``$FAKD_SCHEDULER``, else None (embedded)."""
    address = option if option else os.environ.get(SCHEDULER_ENV, "")
    return address.strip() or None


def _local_gpu_blocks(workers: int, gpus_per_point: int) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` of each local worker: disjoint blocks of ``gpus_per_point`` GPUs."""
    import torch

    count = torch.cuda.device_count()
    if count < gpus_per_point:
        raise FakdError(f"{gpus_per_point} GPU(s) per point asked for, but this machine has {count}; "
                        "use --scheduler for a cluster with GPU workers")
    blocks = min(workers, count // gpus_per_point)
    return [",".join(str(block * gpus_per_point + index) for index in range(gpus_per_point))
            for block in range(blocks)]


def _embedded_cluster(options: ClusterOptions):
    """A LocalCluster-like SpecCluster on 127.0.0.1: one Nanny-managed process per worker, one
    point at a time each, no memory limit (the kernels are children of the workers, not in them)."""
    from distributed import Nanny, Scheduler, SpecCluster

    gpu_blocks = _local_gpu_blocks(options.workers, options.gpus_per_point) if options.gpus_per_point else None
    count = len(gpu_blocks) if gpu_blocks else options.workers
    workers = {}
    for index in range(count):
        worker = {"nthreads": 1, "memory_limit": 0, "host": "127.0.0.1", "silence_logs": logging.ERROR}
        if gpu_blocks:
            worker.update(resources={"GPU": options.gpus_per_point}, env={"CUDA_VISIBLE_DEVICES": gpu_blocks[index]})
        workers[f"local-{index}"] = {"cls": Nanny, "options": worker}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "port": 0,
                                               "dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR, name="fakd")


async def _identity(address: str) -> dict:
    from distributed.core import rpc

    async with rpc(address) as scheduler:
        return await scheduler.identity()


def _connect(address: str):
    """A Client of the scheduler at ``address``; one FakdError when it does not answer in time.

    The scheduler is asked who it is first, under a deadline of our own: a ``Client`` alone waits
    forever on an address that accepts connections and never answers.
    """
    from distributed import Client

    try:
        asyncio.run(asyncio.wait_for(_identity(address), CONNECT_TIMEOUT_S))
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error).strip() else "no answer"
        raise FakdError(f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S:.0f} s "
                        f"({reason}); is `dask scheduler` running there?") from None


@contextmanager
def open_cluster(options: ClusterOptions) -> Iterator:
    """A Client of the embedded cluster (started here, closed at exit) or of ``options.scheduler``."""
    from distributed import Client

    if options.scheduler is not None:
        client = _connect(options.scheduler)
        try:
            _wait_for_workers(client, address=options.scheduler)
            yield client
        finally:
            client.close()
        return
    with _embedded_cluster(options) as cluster, Client(cluster, set_as_default=False) as client:
        yield client


def _wait_for_workers(client, *, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except TimeoutError:
        raise FakdError(f"no Dask worker joined the scheduler at {address} within {WORKER_WAIT_S:.0f} s") from None


def dashboard_link(client, *, embedded: bool) -> str | None:
    """The dashboard's address when the scheduler serves one (the embedded one has its pages only
    where bokeh is installed; an existing cluster's scheduler says for itself)."""
    if embedded and importlib.util.find_spec("bokeh") is None:
        return None
    services = client.scheduler_info().get("services", {})
    return client.dashboard_link if "dashboard" in services else None


def point_slots(client, *, gpus_per_point: int) -> int:
    """Points the cluster can run at once now: its worker threads, or its GPUs in blocks of
    ``gpus_per_point`` (asked again as workers come and go, e.g. an adaptive SLURM cluster)."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if gpus_per_point == 0:
        return sum(info["nthreads"] for info in workers)
    return sum(min(info["nthreads"], int(info.get("resources", {}).get("GPU", 0) // gpus_per_point))
               for info in workers)


def check_gpu_workers(client, *, gpus_per_point: int) -> None:
    """FakdError when no worker advertises enough of the resource ``GPU`` for one point."""
    if gpus_per_point == 0:
        return
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if not any(info.get("resources", {}).get("GPU", 0) >= gpus_per_point for info in workers):
        raise FakdError(f"no Dask worker advertises GPU ≥ {gpus_per_point}: start the workers with "
                        f"`dask worker ... --resources GPU=1` (see docs/distributed.md)")


def _probe(out_dir: str, notebook: str, digest: str, token: str, dask_worker=None) -> str | None:
    """On a worker (``client.run`` passes it as ``dask_worker``): None when it sees the notebook (same
    code) and can write into ``out_dir``."""
    import socket

    from fakd.study.parameters import notebook_digest

    if not Path(notebook).is_file():
        return f"does not see the notebook {notebook}"
    if notebook_digest(Path(notebook)) != digest:
        return f"sees another version of the notebook {notebook}"
    probe = Path(out_dir) / f"{PROBE_PREFIX}{token}-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_text(f"{dask_worker.address} {socket.gethostname()}\n")
    except OSError as error:
        return f"cannot write into {out_dir}: {error.strerror or error}"
    return None


def check_shared_storage(client, *, out_dir: Path, notebook: Path) -> None:
    """Every worker must see ``notebook`` (same code) and write files that this process then sees in
    ``out_dir`` (the same storage, not a same-named local folder); FakdError naming a worker if not."""
    from fakd.study.parameters import notebook_digest

    out_dir, notebook = Path(out_dir).resolve(), Path(notebook).resolve()
    token = uuid.uuid4().hex[:12]
    try:
        answers = client.run(_probe, str(out_dir), str(notebook), notebook_digest(notebook), token)
        probes = list(out_dir.glob(f"{PROBE_PREFIX}{token}-*"))
    finally:
        for probe in out_dir.glob(f"{PROBE_PREFIX}{token}-*"):
            probe.unlink(missing_ok=True)
    for worker, problem in sorted(answers.items()):
        if problem is not None:
            raise FakdError(f"Dask worker {worker} {problem}: run folders and notebooks must be on storage "
                            "every worker shares")
    if len(probes) < len(answers):
        raise FakdError(f"{len(answers) - len(probes)} Dask worker(s) wrote into another folder named {out_dir}: "
                        "--out must be on storage shared with every worker")
