"""The frozen teacher's outputs per training batch, kept on disk for the next run that needs them.

A distilled student's batch ``i`` is a pure function of (data, seed, i), and its teacher is frozen:
every run of a study with the same teacher checkpoint, data settings and seed asks the teacher the
same question at every iteration (output KD, FAKD at any weight, the ablations). The first such run
stores the answers — the teacher's SR and its features at the run's teacher taps plus the teacher's
default taps (``stored_taps``: so output KD, which taps nothing, and FAKD at the default taps share
entries), as computed — and the others read them instead of running the teacher forward (~40% of
a FAKD step's FLOPs at the cpu profile). Nothing computed changes: the stored tensors are the ones the forward gave, strides
included, and the first hit of every run is checked against a live forward (a mismatch turns the
cache off for that run and says so).

Layout: ``FOLDER/<key digest>/key.json`` (what the entries depend on) and ``chunk-<n>.pt`` holding
iterations ``[n·CHUNK, (n+1)·CHUNK)``, each written atomically once complete (a run resumed in
the middle of a chunk leaves it to another run). Size: batch × (SR + taps) floats per iteration,
~2.7 MB at the cpu profile (8 GB per 3000-iteration seed and tap set). Bounded: storing stops, with
one warning, before the whole cache folder (every key) would exceed its cap (config ``teacher_cache_gb``),
before the disk would have less than ``MIN_FREE_BYTES`` free, or when a write fails; the run itself never
stops for the cache. ``fakd study`` deletes a seed's entries (``prune_seeds``) once every run of that seed
has finished, so a study holds about one seed's worth at a time.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fakd.atomic import write_bytes_atomically, write_json_atomically
from fakd.errors import FakdError

CHUNK = 25  # iterations per file: ~66 MB at the cpu profile
CHUNK_GLOB = "chunk-*.pt"
MIN_FREE_BYTES = 5 << 30  # storing stops rather than leave less than this free on the cache's disk
KEY_FILE = "key.json"
VERIFY_TOLERANCE = 1e-5  # relative: a stored answer must match a live forward this closely


@dataclass
class TeacherOutputs:
    """What the objective reads from the teacher for one batch: its SR and its tapped features."""

    sr: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)


def run_teacher(teacher, lr_batch: torch.Tensor, taps) -> TeacherOutputs:
    """A live teacher forward without autograd; ``taps`` (a ``FeatureTaps`` or None) record the features."""
    with torch.no_grad():
        sr = teacher(lr_batch)
    return TeacherOutputs(sr=sr, features=dict(taps.features) if taps is not None else {})


def stored_taps(objective_taps: list[str], teacher) -> list[str]:
    """The teacher taps a cache entry holds: the objective's, then the teacher's default taps."""
    return list(objective_taps) + [name for name in getattr(teacher, "default_taps", []) if name not in objective_taps]


def cache_key(*, teacher_sha256: str, teacher_taps: list[str], config, patches, device: torch.device,
              autocast: torch.dtype | None = None) -> dict[str, Any]:
    """Everything the teacher's answers depend on besides the iteration: entries are shared only
    between runs whose keys are equal. The training images count by content (names and HR pixels),
    not by where they lie, so a study's cache stays valid when its data root moves. ``amp`` is the
    autocast dtype the teacher ran in (``fakd.device.autocast_dtype``), false for float32 — also for
    ``--amp`` on a CPU without bfloat16, whose forwards are float32 ones (and float32 keys are the
    ones written before ``--amp`` ran on CPUs)."""
    data = config.data
    return {
        "teacher_sha256": teacher_sha256,
        "teacher_taps": sorted(teacher_taps),
        "scale": config.scale,
        "seed": config.seed,
        "train_images": patches_digest(patches),
        "patch_size": data.patch_size,
        "batch_size": data.batch_size,
        "augment": data.augment,
        "channels_last": config.channels_last,
        "amp": str(autocast).removeprefix("torch.") if autocast is not None else False,
        "device": device.type,
        "torch": torch.__version__,
    }


def patches_digest(patches) -> str:
    """SHA-256 of the training pool: each image's name, HR and LR pixels, in pool order."""
    digest = hashlib.sha256()
    for index, name in enumerate(patches.train_names):
        image = patches.training_image(index)
        digest.update(name.encode())
        digest.update(image.hr.numpy().tobytes())
        digest.update(image.lr.numpy().tobytes())
    return digest.hexdigest()


def cache_usage(root: str | Path) -> int:
    """Bytes the cache folder ``root`` holds in its entries (every key's chunks)."""
    root = Path(root)
    return sum(path.stat().st_size for path in root.glob(f"*/{CHUNK_GLOB}")) if root.is_dir() else 0


def prune_seeds(root: str | Path, seeds) -> int:
    """Delete the entries of training ``seeds`` from the cache folder ``root`` (fakd's own files only: each key's
    chunks and key.json, then its folder if that left it empty); returns the bytes freed."""
    freed, seeds = 0, {int(seed) for seed in seeds}
    for key_file in sorted(Path(root).glob(f"*/{KEY_FILE}")) if Path(root).is_dir() else []:
        try:
            if int(json.loads(key_file.read_text())["seed"]) not in seeds:
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours, or damaged: left alone
        for chunk in key_file.parent.glob(CHUNK_GLOB):
            freed += chunk.stat().st_size
            chunk.unlink(missing_ok=True)
        key_file.unlink(missing_ok=True)
        try:
            key_file.parent.rmdir()
        except OSError:
            pass  # something else lies there: kept
    return freed


class TeacherOutputCache:
    """Read and write the teacher's outputs of one key; ``hits``/``misses``/``stored`` count them."""

    def __init__(self, folder: str | Path, *, key: dict[str, Any], cap_bytes: int | None = None):
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.root = Path(folder)
        self.cap_bytes = cap_bytes  # for the whole folder (every key); None: no cap
        self.folder = Path(folder) / digest
        self.key = key
        self.taps: list[str] = list(key["teacher_taps"])  # what the live forwards record (order: irrelevant)
        self.hits = self.misses = self.stored = 0
        self.storing = True
        self.checked = False  # the first hit is compared with a live forward (``check``)
        self.rejected: str | None = None
        self._chunk_index: int | None = None
        self._chunk: dict[int, dict] = {}
        self._pending: dict[int, dict] = {}
        self._open_folder()
        stored = len(list(self.folder.glob("chunk-*.pt"))) if self.folder.is_dir() else 0
        note(f"{self.folder} ({stored} chunk(s) of {CHUNK} iterations stored)")

    def _open_folder(self) -> None:
        key_file = self.folder / KEY_FILE
        try:
            if not key_file.is_file():
                write_json_atomically(key_file, self.key)
        except (FakdError, OSError) as error:  # read-only, full, not a folder: read what is there, store nothing
            self._stop_storing(str(error))

    def lookup(self, iteration: int, device: torch.device) -> TeacherOutputs | None:
        """The stored outputs of ``iteration`` (on ``device``), or None when no run stored them yet."""
        if self.rejected:
            return None
        index = iteration // CHUNK
        if index != self._chunk_index:
            self._chunk_index, self._chunk = index, self._read_chunk(index)
        entry = self._chunk.get(iteration)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        return TeacherOutputs(sr=entry["sr"].to(device), features={name: value.to(device) for name, value in
                                                                   entry["features"].items()})

    def _read_chunk(self, index: int) -> dict[int, dict]:
        path = self._chunk_path(index)
        try:
            if not path.is_file():
                return {}
            payload = torch.load(path, map_location="cpu", weights_only=True)
            chunk = {int(iteration): entry for iteration, entry in zip(payload["iterations"], payload["entries"])}
            if not all(isinstance(entry["sr"], torch.Tensor) and set(self.taps) <= set(entry["features"])
                       for entry in chunk.values()):
                return {}
            return chunk
        except Exception:  # unreadable (foreign, damaged or unreachable file): compute instead, never fail the run
            return {}

    def store(self, iteration: int, outputs: TeacherOutputs) -> None:
        """Keep ``iteration``'s outputs; a chunk is written once all its iterations are kept."""
        index = iteration // CHUNK
        try:
            if not self.storing or self.rejected or self._chunk_path(index).is_file():
                return
        except OSError:
            return
        self._pending = {i: entry for i, entry in self._pending.items() if i // CHUNK == index}
        self._pending[iteration] = {"sr": outputs.sr.detach().cpu(),
                                    "features": {name: value.detach().cpu() for name, value in outputs.features.items()}}
        if len(self._pending) == CHUNK:
            self._write_chunk(index)

    def _write_chunk(self, index: int) -> None:
        iterations = sorted(self._pending)
        buffer = io.BytesIO()
        torch.save({"iterations": iterations, "entries": [self._pending[i] for i in iterations]}, buffer)
        self._pending = {}
        try:
            free = shutil.disk_usage(self.folder).free
            if free - buffer.tell() < MIN_FREE_BYTES:
                self._stop_storing(f"{free / 2**30:.1f} GiB free on its disk; it keeps {MIN_FREE_BYTES / 2**30:.0f} GiB free")
                return
            if self.cap_bytes is not None and cache_usage(self.root) + buffer.tell() > self.cap_bytes:
                self._stop_storing(f"the cache holds {cache_usage(self.root) / 1e9:.1f} GB, its cap is "
                                   f"{self.cap_bytes / 1e9:g} GB (teacher_cache_gb)")
                return
            write_bytes_atomically(self._chunk_path(index), buffer.getvalue())
            self.stored += len(iterations)
        except (FakdError, OSError) as error:
            self._stop_storing(str(error))

    def _stop_storing(self, reason: str) -> None:
        self.storing = False
        warnings.warn(f"teacher cache {self.folder}: storing stopped ({reason}); training goes on "
                      "with live teacher forwards", RuntimeWarning, stacklevel=3)

    def check(self, iteration: int, stored: TeacherOutputs, live: TeacherOutputs) -> bool:
        """Compare the first hit with a live forward; on disagreement the cache is off for this run."""
        self.checked = True
        if outputs_match(stored, live):
            return True
        self.rejected = f"disagrees with this run's teacher at iteration {iteration + 1}"
        note(f"{self.folder} {self.rejected}; not used by this run")
        return False

    def _chunk_path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.pt"

    def summary(self) -> dict[str, Any]:
        """Counts for the run's summary: where, hits, misses, iterations stored by this run, rejection."""
        return {"folder": str(self.folder), "hits": self.hits, "misses": self.misses, "stored": self.stored,
                "rejected": self.rejected}


def outputs_match(stored: TeacherOutputs, live: TeacherOutputs) -> bool:
    """Stored and live outputs agree within ``VERIFY_TOLERANCE`` (relative to each tensor's scale)."""
    pairs = [(stored.sr, live.sr)] + [(stored.features.get(name), value) for name, value in live.features.items()]
    for cached, computed in pairs:
        if cached is None or cached.shape != computed.shape:
            return False
        scale = computed.abs().max().clamp_min(1e-12)
        if ((cached - computed).abs().max() / scale).item() > VERIFY_TOLERANCE:
            return False
    return True


def note(message: str) -> None:
    """One line to stderr (the run's log), for what the cache did."""
    print(f"teacher cache: {message}", file=sys.stderr, flush=True)
