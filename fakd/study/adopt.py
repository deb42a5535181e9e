"""A study's training step whose model ships with fakd, or that the user gives (``fakd study --teacher FILE``):
the checkpoint adopted as a finished run.

The demo profile's teacher is the cpu profile's shipped teacher. Instead of training one (an hour),
the study lays the shipped model out as a finished ``02_train_teacher`` run folder — the checkpoint
at ``train/checkpoints/best.pt``, its scores on the test sets in ``results.json`` and ``per_image.csv``
— so the later steps (students, explorer, compare) read it exactly like a trained one. The folder's
``adopted.json`` names the model and its sha256; a second study with the same model and test sets
reuses the folder.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

from fakd.atomic import write_bytes_atomically, write_json_atomically
from fakd.analysis.results import RESULTS_FILE, default_test_sets, evaluate_on_sets, result_rows, write_run_results
from fakd.train.rundir import RunDirectory
from fakd.train.runs import TRAIN_FOLDER, load_best_model
from fakd.models.registry import check_model_size, count_parameters
from fakd.models.spandrel_adapter import SPANDREL_ARCH
from fakd.zoo.checkpoint import build_model_from_checkpoint, read_model_payload, save_checkpoint
from fakd.zoo.pretrained import file_sha256, pretrained_entry, pretrained_path

ADOPTED_FILE = "adopted.json"


@dataclass(frozen=True)
class AdoptedRun:
    """The run folder holding the adopted model, and whether an earlier study had laid it out already."""

    run_dir: Path
    reused: bool
    seconds: float


def adopt_shipped_model(name: str, run_dir: Path, *, data_root=None, device=None) -> AdoptedRun:
    """Lay shipped model ``name`` out as a finished training run in ``run_dir`` (or reuse that folder)."""
    started = time.monotonic()
    entry = pretrained_entry(name)
    test_sets = default_test_sets(data_root)
    record = {"model": name, "sha256": entry["sha256"], "test_sets": test_sets}
    if _read_record(run_dir) == record and (run_dir / RESULTS_FILE).is_file():
        return AdoptedRun(run_dir=run_dir, reused=True, seconds=0.0)
    # atomic: a half-copied checkpoint never sits where a model is looked for
    write_bytes_atomically(RunDirectory(run_dir / TRAIN_FOLDER).best_checkpoint, pretrained_path(name).read_bytes())
    summary = {"scale": entry["scale"], "best_val_psnr": entry.get("validation_psnr"),
               "best_iteration": entry.get("best_iteration"), "final_iteration": entry.get("iterations"),
               "wall_time_seconds": None, "parameters": entry.get("parameters"), "model": entry.get("model_name")}
    _evaluate_and_record(run_dir, record=record, summary=summary, source=f"fakd:{name}", data_root=data_root,
                         device=device)
    return AdoptedRun(run_dir=run_dir, reused=False, seconds=time.monotonic() - started)


def adopt_model_file(path: Path, run_dir: Path, *, scale: int, data_root=None, device=None) -> AdoptedRun:
    """Lay a model file (``fakd study --teacher FILE``: a fakd checkpoint, official RCAN/EDSR weights, a
    BasicSR checkpoint, .safetensors) out as a finished training run in ``run_dir``, converted to a fakd
    checkpoint; a model of another scale → FakdError."""
    started = time.monotonic()
    path = Path(path)
    test_sets = default_test_sets(data_root)
    record = {"model": path.name, "sha256": file_sha256(path), "test_sets": test_sets}
    if _read_record(run_dir) == record and (run_dir / RESULTS_FILE).is_file():
        return AdoptedRun(run_dir=run_dir, reused=True, seconds=0.0)
    payload = read_model_payload(path, scale=scale, quiet=True)  # the study's preflight printed what it holds
    kept = {key: payload[key] for key in ("model_config", "model_state", "model_name", "role", "source", "iteration",
                                           "best_val_psnr", "best_iteration") if key in payload}
    save_checkpoint(kept, RunDirectory(run_dir / TRAIN_FOLDER).best_checkpoint)  # atomic
    summary = {"scale": scale, "best_val_psnr": payload.get("best_val_psnr"),
               "best_iteration": payload.get("best_iteration"), "final_iteration": payload.get("iteration"),
               "wall_time_seconds": None, "parameters": _parameters(payload, where=path.name),
               "model": payload.get("model_name") or path.stem}
    _evaluate_and_record(run_dir, record=record, summary=summary, data_root=data_root, device=device,
                         source=f"{path.name} (sha256 {record['sha256'][:12]})")
    return AdoptedRun(run_dir=run_dir, reused=False, seconds=time.monotonic() - started)


def _parameters(payload: dict, *, where: str) -> int:
    """The parameter count of a payload's network (spandrel networks are built to count them)."""
    if payload["model_config"].get("arch") == SPANDREL_ARCH:
        return count_parameters(build_model_from_checkpoint(payload, source=where))
    return check_model_size(dict(payload["model_config"]), where=where)


def _evaluate_and_record(run_dir: Path, *, record: dict, summary: dict, source: str, data_root, device) -> None:
    """The adopted model's scores on the test sets as the run's results, then ``adopted.json``."""
    scale = int(summary["scale"])
    model = load_best_model(run_dir, scale=scale, device=device)
    per_image = evaluate_on_sets(model, record["test_sets"], scale=scale, data_root=data_root, device=device)
    write_run_results(run_dir, result_rows(summary, per_image, source=source), per_image)
    write_json_atomically(run_dir / ADOPTED_FILE, record)  # last: its presence means the folder is complete


def _read_record(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / ADOPTED_FILE).read_text())
    except (OSError, ValueError):
        return None
