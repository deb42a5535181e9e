"""Teacher vs students of a study: which models, the headline rows, bicubic, and the cost table.

Models come from a teacher run folder (``02_train_teacher``) and a student sweep folder (``fakd sweep``
of ``03_distill_student``); of each student configuration the run with the lowest seed stands for it
in pictures. Without them the shipped models of the profile and scale are used (``fakd/pretrained``,
``fakd:<name>``; of each student configuration the lowest seed), and when none are shipped (e.g. the
explorer before anything is trained) the profile's teacher and student presets are built with
fresh random weights and named "(untrained)", so the mechanics can still be shown without training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from fakd.analysis.ablation import configuration_label, read_per_image, read_sweep
from fakd.analysis.results import PER_IMAGE_FILE, evaluate_on_sets, read_run_rows
from fakd.data import imresize
from fakd.device import resolve_device
from fakd.metrics import psnr, quantize_to_uint8
from fakd.models import build_model
from fakd.train.config import load_run_config
from fakd.train.runs import load_best_model
from fakd.zoo.checkpoint import load_model_from_checkpoint
from fakd.zoo.cost import cost_ratios, model_cost
from fakd.zoo.pretrained import PRETRAINED_PREFIX, list_pretrained

# Latency settings per profile: a small LR image for smoke, the 1280x720 output's LR otherwise.
LATENCY = {"smoke": {"lr_size": 32, "warmup": 1, "repeats": 3},
           "cpu": {"lr_size": 180, "warmup": 1, "repeats": 3},
           "paper": {"lr_size": 180, "warmup": 2, "repeats": 5}}


@dataclass
class StudyModel:
    """A model of the comparison: table name, role (teacher / student / bicubic), the network."""

    name: str
    role: str
    model: nn.Module | None
    trained: bool
    run_dir: Path | None = None
    source: str = ""  # fakd:<name> for a shipped model


def study_models(*, profile: str, teacher_run_dir: str | Path = "", sweep_dir: str | Path = "",
                 device=None) -> list[StudyModel]:
    """The teacher and one student per sweep configuration (lowest seed); without run folders the
    shipped models of this profile and scale, else untrained presets."""
    config = load_run_config(profile)
    device = resolve_device(device)
    shipped = [] if str(teacher_run_dir) and str(sweep_dir) else shipped_models(config, device=device)
    models = []
    if str(teacher_run_dir):
        teacher = load_best_model(teacher_run_dir, scale=config.scale, device=device)
        models.append(StudyModel("teacher", "teacher", teacher, True, Path(teacher_run_dir)))
    elif any(entry.role == "teacher" for entry in shipped):
        models.append(next(entry for entry in shipped if entry.role == "teacher"))
    else:
        teacher = _fresh(config, "teacher", device)
        models.append(StudyModel("teacher (untrained)", "teacher", teacher, False))
    if str(sweep_dir):
        sweep = read_sweep(sweep_dir).sort_values("seed", kind="stable").drop_duplicates("label")
        for run in sweep.itertuples():
            student = load_best_model(run.run_path, scale=config.scale, device=device)
            models.append(StudyModel(run.label, "student", student, True, Path(run.run_path)))
    elif any(entry.role == "student" for entry in shipped):
        models += [entry for entry in shipped if entry.role == "student"]
    else:
        models.append(StudyModel("student (untrained)", "student", _fresh(config, "student", device), False))
    return models


def shipped_models(config, *, device=None) -> list[StudyModel]:
    """The shipped teacher (first listed) and one student per configuration (lowest seed) trained
    with ``config``'s profile at its scale; empty when the manifest lists none."""
    entries = [entry for entry in list_pretrained()
               if entry.get("profile") == config.profile and entry.get("scale") == config.scale]
    chosen: dict[str, dict] = {}
    for entry in sorted(entries, key=lambda item: int(item.get("seed") or 0)):
        if entry.get("role") == "teacher":
            label = "teacher"
        else:
            label = configuration_label(str(entry.get("method")), weight=entry.get("weight"), p=entry.get("p"),
                                        taps=entry.get("taps") or None)
        chosen.setdefault(label, entry)
    models = []
    for label, entry in chosen.items():
        spec = PRETRAINED_PREFIX + str(entry["name"])
        model = load_model_from_checkpoint(spec, device, scale=config.scale)
        models.append(StudyModel(label, str(entry.get("role")), model, True, None, spec))
    return models


def _fresh(config, role: str, device) -> nn.Module:
    settings = config.role(role)
    torch.manual_seed(config.seed)
    return build_model(settings.model.preset, scale=config.scale, **settings.model.overrides).eval().to(device)


def bicubic_upscaler(scale: int):
    """A callable like a model: MATLAB-bicubic upscaling of a float (1, 3, h, w) batch."""
    def upscale(lr: torch.Tensor) -> torch.Tensor:
        return imresize(lr.cpu(), scale=float(scale))
    return upscale


def headline_rows(*, teacher_run_dir: str | Path, sweep_dir: str | Path, test_sets: list[str], scale: int,
                  data_root=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows model/dataset/scale/psnr/ssim/seeds, bicubic per-image table) for the paper table.

    Bicubic is evaluated here; the teacher's rows come from its run's results.json; each student
    configuration's cells are the means over its seeds from the sweep's results.csv.
    """
    bicubic = evaluate_on_sets(bicubic_upscaler(scale), test_sets, scale=scale, data_root=data_root)
    rows = [{"model": "bicubic", "dataset": dataset, "scale": scale, "psnr": group["psnr"].mean(),
             "ssim": group["ssim"].mean(), "seeds": 0} for dataset, group in bicubic.groupby("dataset", sort=False)]
    if str(teacher_run_dir):
        for row in read_run_rows(teacher_run_dir).itertuples():
            rows.append({"model": "teacher", "dataset": row.dataset, "scale": int(row.scale),
                         "psnr": row.psnr, "ssim": row.ssim, "seeds": 1})
    if str(sweep_dir):
        sweep = read_sweep(sweep_dir)
        for (label, dataset), group in sweep.groupby(["label", "dataset"], sort=False):
            rows.append({"model": f"student: {label}", "dataset": dataset, "scale": int(group["scale"].iloc[0]),
                         "psnr": group["psnr"].mean(), "ssim": group["ssim"].mean(),
                         "seeds": int(group["seed"].nunique())})
    table = pd.DataFrame(rows)
    table["psnr"], table["ssim"] = table["psnr"].astype(float), table["ssim"].astype(float)
    return table, bicubic


def cost_table(models: list[StudyModel], *, scale: int, profile: str, device=None) -> tuple[pd.DataFrame, dict]:
    """Params, Multi-Adds (1280x720 output) and median latency of the teacher and one student per
    distinct architecture, plus the teacher/student ratios."""
    settings = LATENCY.get(profile, LATENCY["cpu"])
    seen, rows = set(), []
    for entry in models:
        architecture = tuple(sorted((key, str(value)) for key, value in entry.model.config.items()))
        if architecture in seen:
            continue
        seen.add(architecture)
        preset = entry.model.config.get("preset", entry.model.config.get("arch"))
        rows.append(model_cost(entry.model, name=f"{entry.role} ({preset})", scale=scale,
                               device=resolve_device(device), **settings))
    ratios = cost_ratios(rows[0], rows[1]) if len(rows) > 1 else {}
    return pd.DataFrame(rows), ratios


def study_per_image(*, teacher_run_dir: str | Path, sweep_dir: str | Path, bicubic: pd.DataFrame) -> pd.DataFrame:
    """Per-image PSNR/SSIM (model, dataset, name, psnr, ssim) from the runs' per_image.csv files —
    nothing is evaluated again; a student configuration's value is its mean over seeds per image."""
    tables = [bicubic.assign(model="bicubic")]
    if str(teacher_run_dir) and (Path(teacher_run_dir) / PER_IMAGE_FILE).is_file():
        tables.append(pd.read_csv(Path(teacher_run_dir) / PER_IMAGE_FILE).assign(model="teacher"))
    if str(sweep_dir):
        students = read_per_image(read_sweep(sweep_dir))
        students = students.groupby(["label", "dataset", "name"], sort=False, as_index=False)[["psnr", "ssim"]].mean()
        tables.append(students.assign(model="student: " + students["label"]).drop(columns="label"))
    return pd.concat(tables, ignore_index=True)[["model", "dataset", "name", "psnr", "ssim"]]


def visual_comparison(models: list[StudyModel], lr: torch.Tensor, hr: torch.Tensor, *, scale: int, device=None,
                      students: tuple[str, ...] = ("no KD", "FAKD")) -> tuple[dict, dict]:
    """({label: RGB uint8 (H, W, 3)}, {label: "PSNR … dB"}) for HR, bicubic, the chosen students
    (all when none of ``students`` exist) and the teacher, on one LR/HR pair (uint8 (3, h, w) / (3, H, W))."""
    device = resolve_device(device)
    batch = lr.float().div(255.0).unsqueeze(0)
    chosen = [entry for entry in models if entry.role == "student" and entry.name in students]
    chosen = chosen or [entry for entry in models if entry.role == "student"]
    teacher = [entry for entry in models if entry.role == "teacher"]
    outputs = {"bicubic": bicubic_upscaler(scale)(batch)[0]}
    for entry in [*chosen, *teacher]:
        with torch.no_grad():
            outputs[entry.name] = entry.model.eval()(batch.to(device))[0].cpu()
    images = {"HR": hr.permute(1, 2, 0).numpy()}
    scores = {"HR": "ground truth"}
    for name, output in outputs.items():
        sr = quantize_to_uint8(output)
        images[name] = sr.permute(1, 2, 0).numpy()
        scores[name] = f"PSNR {psnr(sr, hr, scale=scale):.2f} dB"
    return images, scores
