"""A study's training step whose model ships with fakd: the shipped checkpoint adopted as a finished run.

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
from fakd.zoo.pretrained import pretrained_entry, pretrained_path

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
    model = load_best_model(run_dir, scale=int(entry["scale"]), device=device)
    per_image = evaluate_on_sets(model, test_sets, scale=int(entry["scale"]), data_root=data_root, device=device)
    summary = {"scale": entry["scale"], "best_val_psnr": entry.get("validation_psnr"),
               "best_iteration": entry.get("best_iteration"), "final_iteration": entry.get("iterations"),
               "wall_time_seconds": None, "parameters": entry.get("parameters"), "model": entry.get("model_name")}
    write_run_results(run_dir, result_rows(summary, per_image, source=f"fakd:{name}"), per_image)
    write_json_atomically(run_dir / ADOPTED_FILE, record)  # last: its presence means the folder is complete
    return AdoptedRun(run_dir=run_dir, reused=False, seconds=time.monotonic() - started)


def _read_record(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / ADOPTED_FILE).read_text())
    except (OSError, ValueError):
        return None
