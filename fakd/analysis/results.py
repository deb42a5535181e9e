"""A notebook run's results: scores on the test sets, the files a notebook leaves in its run folder,
and their gathering into one table.

Contract: a notebook writes ``<run_dir>/results.json`` holding either one flat object of scalars
(one row: ``{"psnr": 31.2, "ssim": 0.88}``) or ``{"rows": [{...}, ...]}`` (several rows, e.g. one per
data set). Values should be numbers, strings, booleans or null; lists/objects are kept as JSON text.
Training notebooks also write ``per_image.csv`` (dataset, name, psnr, ssim of their best model on
every test image) and their ``results.json`` rows carry the run's training summary (``result_rows``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from fakd.atomic import write_json_atomically
from fakd.data import open_benchmark_set, resolve_data_root, resolve_set
from fakd.device import resolve_device
from fakd.errors import FakdError
from fakd.metrics import evaluate_model

RESULTS_FILE = "results.json"
PER_IMAGE_FILE = "per_image.csv"
PAPER_TEST_SETS = ("Set5", "Set14", "B100")
EMBEDDED_TEST_SET = "skimage-test"


def _cell(value):
    """A value as it goes into a table cell: scalars as they are, lists/mappings as JSON text."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=isinstance(value, dict))
    return value


def read_results(run_dir: Path) -> list[dict]:
    """The result rows of one run (FakdError when the file is missing or breaks the contract)."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FakdError(f"the notebook wrote no {RESULTS_FILE} into {run_dir}")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise FakdError(f"{path} is not valid JSON: {error}") from None
    rows = content.get("rows") if isinstance(content, dict) and set(content) == {"rows"} else content
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise FakdError(f"{path} must hold one JSON object or {{\"rows\": [objects]}}")
    return [{str(key): _cell(value) for key, value in row.items()} for row in rows]


def gather_results(runs: list[tuple], *, base: Path | None = None) -> tuple[pd.DataFrame, list[tuple]]:
    """One table over runs given as (point, run_dir) pairs (a point has ``key`` and ``parameters``).

    Every row carries ``run``, ``run_dir`` (relative to ``base`` when given), the point's parameters and
    the result keys. A run whose results are missing or contradict its parameters (same key, other
    value) is left out and returned in the problem list as (point, message).
    """
    rows, problems = [], []
    for point, run_dir in runs:
        try:
            result_rows = read_results(run_dir)
        except FakdError as error:
            problems.append((point, str(error)))
            continue
        parameters = {name: _cell(value) for name, value in point.parameters.items()}
        clash = sorted(name for row in result_rows for name in row
                       if name in parameters and row[name] != parameters[name])
        if clash:
            problems.append((point, f"results.json contradicts the run's parameters for {', '.join(set(clash))}"))
            continue
        location = Path(run_dir).relative_to(base) if base is not None else Path(run_dir)
        for row in result_rows:
            rows.append({"run": point.key, "run_dir": str(location), **parameters, **row})
    return pd.DataFrame(rows, columns=None if rows else ["run", "run_dir"]), problems


def default_test_sets(data_root: str | Path | None = None) -> list[str]:
    """Set5 / Set14 / B100 when the data root holds them (those it holds), else the embedded skimage-test."""
    if resolve_data_root(data_root) is None:
        return [EMBEDDED_TEST_SET]
    found = []
    for name in PAPER_TEST_SETS:
        try:
            resolve_set(name, data_root=data_root)
        except FakdError:
            continue
        found.append(name)
    return found or [EMBEDDED_TEST_SET]


def evaluate_on_sets(model: nn.Module | object, test_sets: Sequence[str], *, scale: int, data_root=None,
                     device: str | torch.device | None = None) -> pd.DataFrame:
    """Per-image PSNR/SSIM (columns dataset, name, psnr, ssim) of ``model`` over each test set."""
    if not test_sets:
        raise FakdError("no test sets to evaluate on")
    target = resolve_device(device) if isinstance(model, nn.Module) else None
    tables = []
    for name in test_sets:
        dataset = open_benchmark_set(name, scale=scale, data_root=resolve_data_root(data_root))
        table = evaluate_model(model, dataset, scale=scale, device=target, progress=False)
        tables.append(table.assign(dataset=dataset.name)[["dataset", "name", "psnr", "ssim"]])
    return pd.concat(tables, ignore_index=True)


def result_rows(summary: dict, per_image: pd.DataFrame, **extra) -> list[dict]:
    """One row per test set: mean PSNR/SSIM over its images plus the run's training summary and ``extra``."""
    rows = []
    for dataset, group in per_image.groupby("dataset", sort=False):
        rows.append({
            "dataset": dataset, "scale": summary["scale"], "psnr": float(group["psnr"].mean()),
            "ssim": float(group["ssim"].mean()), "images": int(len(group)),
            "val_psnr": summary["best_val_psnr"], "best_iteration": summary["best_iteration"],
            "iterations": summary["final_iteration"], "wall_time_s": summary["wall_time_seconds"],
            "params": summary["parameters"], "model": summary["model"], **extra,
        })
    return rows


def write_run_results(run_dir: str | Path, rows: list[dict], per_image: pd.DataFrame | None = None) -> Path:
    """``results.json`` ({"rows": rows}) and, when given, ``per_image.csv`` in ``run_dir``. A row's
    ``teacher_run`` folder is written relative to ``run_dir`` (a record holds no path of this machine;
    ``fakd.analysis.ablation.read_sweep`` resolves it against the run's folder)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if per_image is not None:
        per_image.to_csv(run_dir / PER_IMAGE_FILE, index=False)
    rows = [{**row, "teacher_run": os.path.relpath(row["teacher_run"], run_dir.resolve())}
            if isinstance(row.get("teacher_run"), str) and os.path.isabs(row["teacher_run"]) else row for row in rows]
    return write_json_atomically(run_dir / RESULTS_FILE, {"rows": [_json_row(row) for row in rows]})


def _json_row(row: dict) -> dict:
    """A row with NaN as null and numpy scalars as plain numbers (results.json holds strict JSON)."""
    plain = {}
    for key, value in row.items():
        if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        plain[str(key)] = value
    return plain


def read_run_rows(run_dir: str | Path) -> pd.DataFrame:
    """The rows a notebook wrote to ``results.json``, as a table (FakdError when it wrote none)."""
    return pd.DataFrame(read_results(Path(run_dir)))
