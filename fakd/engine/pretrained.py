"""Shipped models: the manifest of ``fakd/pretrained/``, ``fakd:<name>`` specs, and export from a run.

The package folder ``fakd/pretrained/`` holds weights-only checkpoints and ``manifest.json``
(``{"models": [entry, ...]}``); each entry names its file, sha256 and size, the model and how it
was trained, and its Set5 PSNR/SSIM measured on the exported file at export time
(``recorded_set5``). Anywhere a checkpoint path is accepted, ``fakd:<name>`` names a shipped model;
its file is checked against the manifest's sha256 before it is used.

The folder is ``$FAKD_PRETRAINED_DIR`` when that is set (tests, or models kept outside the
package), else the package's own. Exports write the checkpoint first, under a content-addressed
name ``<name>-<sha256[:8]>.pt``, then replace the manifest atomically, then delete the file the
entry replaced — a crash leaves at most an unlisted file, never a listed entry that does not match.
One export at a time per folder (the manifest is read, changed and replaced without a lock).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from fakd.atomic import write_json_atomically
from fakd.engine.checkpoint import load_checkpoint, load_model_from_checkpoint, save_checkpoint
from fakd.engine.config import load_run_config
from fakd.engine.distillation import DEFAULT_WEIGHTS
from fakd.engine.rundir import RunDirectory, file_sha256, git_commit
from fakd.errors import FakdError

PRETRAINED_PREFIX = "fakd:"
PRETRAINED_DIR_ENV = "FAKD_PRETRAINED_DIR"
MANIFEST_FILE = "manifest.json"
RECORDED_SET = "Set5"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# Methods without feature taps: their entries record no taps.
TAPLESS_METHODS = ("none", "kd")


# What a manifest entry's feature weight means (fakd.distill.objective: official units).
WEIGHT_UNITS = "official: against L1 terms on 0-255 pixels"


def package_pretrained_dir() -> Path:
    """The folder shipped inside the package (``fakd/pretrained``), whatever the environment says."""
    return Path(__file__).resolve().parents[1] / "pretrained"


def pretrained_dir(directory: str | Path | None = None) -> Path:
    """``directory`` if given, else ``$FAKD_PRETRAINED_DIR``, else the package folder."""
    if directory is not None:
        return Path(directory)
    return Path(os.environ[PRETRAINED_DIR_ENV]) if os.environ.get(PRETRAINED_DIR_ENV) else package_pretrained_dir()


def is_pretrained_spec(spec: str | Path) -> bool:
    """True for ``fakd:<name>``."""
    return str(spec).startswith(PRETRAINED_PREFIX)


def list_pretrained(directory: str | Path | None = None) -> list[dict[str, Any]]:
    """The manifest's entries (an empty list when nothing is shipped)."""
    folder = pretrained_dir(directory)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return []
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise FakdError(f"pretrained manifest {str(path)!r} is unreadable ({error})") from None
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, list) or not all(isinstance(entry, dict) for entry in models):
        raise FakdError(f"pretrained manifest {str(path)!r} is not {{\"models\": [entry, ...]}}")
    for index, entry in enumerate(models):
        _check_entry_types(entry, where=f"pretrained manifest {str(path)!r}, entry {index}")
    return models


# The fields fakd reads from a manifest entry, with the types they must have (None: may be null).
ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "file": (str,), "sha256": (str,), "size_bytes": (int,), "scale": (int,),
    "role": (str,), "method": (str,), "seed": (int, type(None)), "recorded_set5": (dict, type(None)),
}


def _check_entry_types(entry: dict[str, Any], *, where: str) -> None:
    """Every field in ``ENTRY_TYPES`` present with its type; recorded scores are numbers."""
    for key, types in ENTRY_TYPES.items():
        value = entry.get(key)
        if key not in entry or isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join("null" if kind is type(None) else kind.__name__ for kind in types)
            raise FakdError(f"{where}: field {key!r} must be {wanted}, got {value!r}"[:300])
    recorded = entry["recorded_set5"] or {}
    for key in ("psnr", "ssim"):
        if key in recorded and (isinstance(recorded[key], bool) or not isinstance(recorded[key], (int, float))):
            raise FakdError(f"{where}: recorded_set5.{key} must be a number, got {recorded[key]!r}"[:300])


def pretrained_entry(name: str, directory: str | Path | None = None) -> dict[str, Any]:
    """The manifest entry called ``name``; an unknown name → FakdError listing the shipped ones."""
    entries = list_pretrained(directory)
    for entry in entries:
        if entry.get("name") == name:
            return entry
    folder = pretrained_dir(directory)
    if not entries:
        raise FakdError(f"no shipped model {name!r}: no models are shipped yet ({folder / MANIFEST_FILE} lists none)")
    names = ", ".join(str(entry.get("name")) for entry in entries)
    raise FakdError(f"no shipped model {name!r}; shipped: {names}")


def pretrained_path(name: str, directory: str | Path | None = None) -> Path:
    """The checkpoint file of shipped model ``name``, after checking its size and sha256."""
    name = str(name)
    if is_pretrained_spec(name):
        name = name[len(PRETRAINED_PREFIX):]
    entry = pretrained_entry(name, directory)
    file_name = str(entry.get("file", ""))
    if not file_name or Path(file_name).name != file_name:
        raise FakdError(f"shipped model {name!r}: manifest entry has an invalid file {file_name!r}")
    path = pretrained_dir(directory) / file_name
    if not path.is_file():
        raise FakdError(f"shipped model {name!r}: its file {str(path)!r} is missing")
    if path.stat().st_size != entry.get("size_bytes") or file_sha256(path) != entry.get("sha256"):
        raise FakdError(f"shipped model {name!r}: {str(path)!r} does not match the manifest's sha256/size "
                        f"(damaged or replaced; reinstall fakd or export it again)")
    return path


def resolve_checkpoint_spec(spec: str | Path) -> Path:
    """A checkpoint path as given, or the verified file of ``fakd:<name>``."""
    return pretrained_path(spec) if is_pretrained_spec(spec) else Path(spec)


# ---------------------------------------------------------------------------------------------
# Export


def export_pretrained(run_dir: str | Path, *, name: str, data_root: str | Path | None = None,
                      out_dir: str | Path | None = None, device: str | torch.device | None = None) -> dict[str, Any]:
    """Ship a finished run's ``best.pt`` as ``fakd:<name>``; returns the manifest entry written.

    ``run_dir`` is an engine run (``RUN/checkpoints/best.pt``) or a notebook run (``RUN/train/...``).
    The weights-only checkpoint is evaluated on Set5 of ``data_root`` (default ``$FAKD_DATA_ROOT``);
    without a Set5 there the entry says why in ``recorded_set5_note`` and ``recorded_set5`` is null.
    ``out_dir`` defaults to :func:`pretrained_dir`. Smoke-profile runs are refused for the package
    folder (they are test fixtures, not results).
    """
    from fakd.data.benchmark import open_benchmark_set
    from fakd.data.roots import resolve_data_root
    from fakd.device import resolve_device
    from fakd.metrics import evaluate_model

    if not NAME_PATTERN.match(name or ""):
        raise FakdError(f"pretrained name {name!r}: use lower-case letters, digits, '.', '_' and '-'")
    folder = pretrained_dir(out_dir)
    if folder.exists() and not folder.is_dir():
        raise FakdError(f"pretrained folder {str(folder)!r} exists and is not a folder")
    run = _engine_run(Path(run_dir))
    if not run.summary_path.is_file():
        raise FakdError(f"run {str(run.path)!r} is not finished (no summary.json: it was stopped before its "
                        f"end); resume it with --resume before exporting")
    summary = _read_json(run.summary_path)
    job = _read_json(run.job_path)
    if summary.get("status") != "finished":
        raise FakdError(f"run {str(run.path)!r} is not finished (status {summary.get('status')!r}); "
                        f"finish or resume it before exporting")
    config = load_run_config(run.config_path)
    if config.profile == "smoke" and folder.resolve() == package_pretrained_dir().resolve():
        raise FakdError("smoke-profile runs are test fixtures, not results: export them only to another "
                        "folder (--out-dir or $FAKD_PRETRAINED_DIR)")
    source = load_checkpoint(run.best_checkpoint)

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

    recorded, note = None, None
    root = resolve_data_root(data_root)
    if root is None:
        note = "not evaluated: no data root given (--data-root or FAKD_DATA_ROOT) to find Set5 in"
    else:
        try:
            dataset = open_benchmark_set(RECORDED_SET, scale=config.scale, data_root=root)
        except FakdError as error:
            note = f"not evaluated: {error}"
        else:
            model = load_model_from_checkpoint(target, resolve_device(device))
            table = evaluate_model(model, dataset, scale=config.scale, progress=False)
            recorded = {"dataset": RECORDED_SET, "data_root": Path(root).resolve().name, "images": len(table),
                        "lr_source": "bicubic", "psnr": float(table["psnr"].mean()),
                        "ssim": float(table["ssim"].mean())}

    entry = _entry(name=name, target=target, digest=digest, source=source, config=config, summary=summary,
                   job=job, run=run, recorded=recorded, note=note)
    _write_entry(folder, entry)
    return entry


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
    from fakd.models import build_model_from_config, resolve_taps

    role = str(source.get("role") or job.get("role"))
    model_config = dict(source["model_config"])
    methods = list(config.distill.methods) if role == "distill" else ["none" if role == "student" else "teacher"]
    method = "+".join(methods)
    feature_methods = [item for item in methods if item not in (*TAPLESS_METHODS, "teacher")]
    student_taps = list(config.distill.student_taps) if feature_methods else []
    taps_used = (resolve_taps(build_model_from_config(dict(model_config)), student_taps or None)
                 if feature_methods else [])
    single = methods[0] if len(methods) == 1 else None
    weight = config.distill.weights.get(single, DEFAULT_WEIGHTS.get(single)) if single in feature_methods else None
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
        "source_run": str(run.path.resolve()),
    }
    if note:
        entry["recorded_set5_note"] = note
    return entry


def _write_entry(folder: Path, entry: dict[str, Any]) -> None:
    """Add or replace ``entry`` in the folder's manifest atomically, then drop the file it replaced."""
    models = list_pretrained(folder)
    replaced = [old for old in models if old.get("name") == entry["name"]]
    if replaced:
        models = [entry if old.get("name") == entry["name"] else old for old in models]
    else:
        models.append(entry)
    write_json_atomically(folder / MANIFEST_FILE, {"models": models})
    still_listed = {str(item.get("file")) for item in models}
    for old in replaced:
        if old.get("file") and old["file"] not in still_listed:
            (folder / Path(str(old["file"])).name).unlink(missing_ok=True)
