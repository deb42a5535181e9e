"""Ship a finished training run as a model of the zoo (``fakd:<name>``, ``fakd.zoo.pretrained``).

The run's ``best.pt`` is copied as a weights-only checkpoint under a content-addressed name
``<name>-<sha256[:8]>.pt``, evaluated on Set5 when a data root holds it (``recorded_set5``), and its
manifest entry (how it was trained, from the run's config, job and summary) is added or replaced.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from fakd.data.benchmark import open_benchmark_set
from fakd.data.roots import resolve_data_root
from fakd.device import resolve_device
from fakd.distill import METHODS, resolve_taps
from fakd.errors import FakdError
from fakd.metrics import evaluate_model
from fakd.models import build_model_from_config
from fakd.train.config import load_run_config
from fakd.train.rundir import RunDirectory, git_commit
from fakd.zoo.checkpoint import load_checkpoint, load_model_from_checkpoint, save_checkpoint
from fakd.zoo.pretrained import file_sha256, package_pretrained_dir, pretrained_dir, write_entry

RECORDED_SET = "Set5"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# What a manifest entry's feature weight means (fakd.distill.objective: official units).
WEIGHT_UNITS = "official: against L1 terms on 0-255 pixels"


def export_pretrained(run_dir: str | Path, *, name: str, data_root: str | Path | None = None,
                      out_dir: str | Path | None = None, device: str | torch.device | None = None) -> dict[str, Any]:
    """Ship a finished run's ``best.pt`` as ``fakd:<name>``; returns the manifest entry written.

    ``run_dir`` is an engine run (``RUN/checkpoints/best.pt``) or a notebook run (``RUN/train/...``).
    The weights-only checkpoint is evaluated on Set5 of ``data_root`` (default ``$FAKD_DATA_ROOT``);
    without a Set5 there the entry says why in ``recorded_set5_note`` and ``recorded_set5`` is null.
    ``out_dir`` defaults to :func:`pretrained_dir`. Smoke-profile runs are refused for the package
    folder (they are test fixtures, not results).
    """
    if not NAME_PATTERN.match(name or ""):
        raise FakdError(f"pretrained name {name!r}: use lower-case letters, digits, '.', '_' and '-'")
    folder = pretrained_dir(out_dir)
    if folder.exists() and not folder.is_dir():
        raise FakdError(f"pretrained folder {str(folder)!r} exists and is not a folder")
    run, summary, job, config = _finished_run(Path(run_dir))
    if config.profile == "smoke" and folder.resolve() == package_pretrained_dir().resolve():
        raise FakdError("smoke-profile runs are test fixtures, not results: export them only to another "
                        "folder (--out-dir or $FAKD_PRETRAINED_DIR)")
    source = load_checkpoint(run.best_checkpoint)
    target, digest = _write_shipped_checkpoint(source, folder=folder, name=name)
    recorded, note = _recorded_set5(target, scale=config.scale, data_root=data_root, device=device)
    entry = _entry(name=name, target=target, digest=digest, source=source, config=config, summary=summary,
                   job=job, run=run, recorded=recorded, note=note)
    write_entry(folder, entry)
    return entry


def _finished_run(path: Path) -> tuple[RunDirectory, dict[str, Any], dict[str, Any], Any]:
    """(run folder, summary, job, config) of a finished run; FakdError when it was stopped early."""
    run = _engine_run(path)
    if not run.summary_path.is_file():
        raise FakdError(f"run {str(run.path)!r} is not finished (no summary.json: it was stopped before its "
                        f"end); resume it with --resume before exporting")
    summary = _read_json(run.summary_path)
    job = _read_json(run.job_path)
    if summary.get("status") != "finished":
        raise FakdError(f"run {str(run.path)!r} is not finished (status {summary.get('status')!r}); "
                        f"finish or resume it before exporting")
    return run, summary, job, load_run_config(run.config_path)


def _write_shipped_checkpoint(source: dict[str, Any], *, folder: Path, name: str) -> tuple[Path, str]:
    """The weights-only copy of ``source`` as ``<name>-<sha256[:8]>.pt`` in ``folder``; (path, sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {key: source[key] for key in ("model_config", "model_state", "iteration", "role", "run_config",
                                            "best_val_psnr", "best_iteration") if key in source}
    payload["model_name"] = name
    payload["source_model_name"] = source.get("model_name")
    staging = save_checkpoint(payload, folder / f".{name}.export.pt")
    try:
        digest = file_sha256(staging)
        target = folder / f"{name}-{digest[:8]}.pt"
        os.chmod(staging, 0o644)  # package data: readable by everyone (mkstemp makes it 0600)
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return target, digest


def _recorded_set5(target: Path, *, scale: int, data_root, device) -> tuple[dict[str, Any] | None, str | None]:
    """(Set5 scores of the shipped file, None) when the data root holds Set5, else (None, why not)."""
    root = resolve_data_root(data_root)
    if root is None:
        return None, "not evaluated: no data root given (--data-root or FAKD_DATA_ROOT) to find Set5 in"
    try:
        dataset = open_benchmark_set(RECORDED_SET, scale=scale, data_root=root)
    except FakdError as error:
        return None, f"not evaluated: {error}"
    model = load_model_from_checkpoint(target, resolve_device(device))
    table = evaluate_model(model, dataset, scale=scale, progress=False)
    return {"dataset": RECORDED_SET, "data_root": Path(root).resolve().name, "images": len(table),
            "lr_source": "bicubic", "psnr": float(table["psnr"].mean()), "ssim": float(table["ssim"].mean())}, None


def run_best_checkpoint(path: str | Path) -> Path:
    """The ``best.pt`` of an engine run (``RUN/checkpoints``) or a notebook run (``RUN/train/checkpoints``)."""
    return _engine_run(Path(path)).best_checkpoint


def _engine_run(path: Path) -> RunDirectory:
    for candidate in (path, path / "train"):
        run = RunDirectory(candidate)
        if run.best_checkpoint.is_file() and run.config_path.is_file():
            return run
    raise FakdError(f"{str(path)!r} holds no finished run: neither checkpoints/best.pt nor "
                    f"train/checkpoints/best.pt (with config.yaml) is there")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FakdError(f"cannot read {str(path)!r} ({error})") from None
    if not isinstance(content, dict):
        raise FakdError(f"{str(path)!r} is damaged: it holds no JSON object")
    return content


def _entry(*, name, target, digest, source, config, summary, job, run, recorded, note) -> dict[str, Any]:
    role = str(source.get("role") or job.get("role"))
    model_config = dict(source["model_config"])
    methods = list(config.distill.methods) if role == "distill" else ["none" if role == "student" else "teacher"]
    method = "+".join(methods)
    feature_methods = [item for item in methods if item in METHODS and METHODS[item].has_feature_term]
    student_taps = list(config.distill.student_taps) if feature_methods else []
    taps_used = (resolve_taps(build_model_from_config(dict(model_config)), student_taps or None)
                 if feature_methods else [])
    single = methods[0] if len(methods) == 1 else None
    weight = config.distill.weights.get(single, METHODS[single].default_weight) if single in feature_methods else None
    p = int(config.distill.options.get("fakd", {}).get("p", 1)) if "fakd" in methods else None
    entry: dict[str, Any] = {
        "name": name,
        "file": target.name,
        "sha256": digest,
        "size_bytes": target.stat().st_size,
        "model_name": source.get("model_name"),
        "preset": model_config.get("preset", model_config.get("arch")),
        "model_config": model_config,
        "scale": int(config.scale),
        "parameters": summary.get("parameters"),
        "role": "teacher" if role == "teacher" else "student",
        "method": method,
        "weight": weight,
        "weight_units": None if weight is None else WEIGHT_UNITS,
        "alpha": float(config.distill.alpha) if role == "distill" else None,
        "p": p,
        "taps": student_taps,
        "taps_used": taps_used,
        "seed": int(config.seed),
        "profile": config.profile,
        "training_data": {"train_sets": list(config.data.train_sets),
                          "validation_images": config.data.validation_images,
                          "patch_size": config.data.patch_size, "batch_size": config.data.batch_size},
        "iterations": summary.get("final_iteration"),
        "best_iteration": source.get("best_iteration"),
        "validation_psnr": source.get("best_val_psnr"),
        "teacher_sha256": job.get("teacher_sha256"),
        "recorded_set5": recorded,
        "git_commit": summary.get("git_commit"),
        "export_git_commit": git_commit(),
        "torch_version": torch.__version__,
        "source_run": run_label(run.path),
    }
    if note:
        entry["recorded_set5_note"] = note
    return entry


def run_label(path: Path) -> str:
    """A run's name without the machine's folders: its study folder's name (a sweep point's key, or the
    step, e.g. ``teacher``) when the engine run is that folder's ``train``, else the run folder's own name."""
    path = Path(path)
    return path.parent.name if path.name == "train" else path.name

