"""The lesson's live mini-experiment: three students of the shipped cpu teacher, trained for a minute.

Arms (``ARMS``), all the cpu student (RCAN 10×2×32) on the embedded photographs (the ``demo``
profile's data: 4 for training, 1 held out for validation), same seed and batches:

- no KD — L1 to HR alone, from random weights;
- FAKD — the paper's loss (output KD + affinity, weight 1 in official units) from random weights;
- no KD, from the teacher's weights — L1 to HR alone, starting from the teacher's head, tail and the
  first blocks of each group (``student.init: teacher``, ``fakd.models.inherit``).

A few dozen iterations show how each starts, not where it ends: the study's answer comes from
3000-iteration runs on 291 images (reports/cpu). Each arm is an ordinary training run
(``fakd.train.trainer.train_run``) in ``OUT/<arm>/train``, so it resumes like any other.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import torch

from fakd.analysis.compare import StudyModel, visual_comparison
from fakd.analysis.figures import crops_figure, pick_crop_box, plt
from fakd.analysis.results import evaluate_on_sets
from fakd.data import open_benchmark_set
from fakd.train.runs import TRAIN_FOLDER, load_best_model, run_config, training_metrics
from fakd.train.trainer import train_run
from fakd.zoo.named_models import model_from_spec

SHIPPED_TEACHER = "fakd:rcan-cpu-teacher-x4"
PROFILE = "demo"
TEST_SET = "skimage-test"
# label -> (folder, method, init)
ARMS = {
    "no KD": ("no-kd", "none", "scratch"),
    "FAKD (w = 1)": ("fakd", "fakd", "scratch"),
    "no KD, from the teacher's weights": ("no-kd-from-teacher", "none", "teacher"),
}


def experiment_config(*, method: str, init: str, iterations: int, seed: int, validate_every: int):
    """The ``demo`` profile's student run, ``iterations`` long, validated every ``validate_every``."""
    config = run_config(profile=PROFILE, seed=seed, method=method, student_iterations=iterations, init=init)
    return dataclasses.replace(config, validate_every=int(validate_every), checkpoint_every=int(iterations),
                               log_every=max(1, int(validate_every) // 4))


def run_mini_experiment(out_dir: str | Path, *, iterations: int, seed: int = 0, validate_every: int = 10,
                        teacher: str = SHIPPED_TEACHER) -> dict[str, dict]:
    """Train (or resume) every arm into ``OUT/<folder>/train``; ``{label: summary}`` (wall time, best
    validation PSNR, ...)."""
    summaries = {}
    for label, (folder, method, init) in ARMS.items():
        config = experiment_config(method=method, init=init, iterations=iterations, seed=seed,
                                   validate_every=validate_every)
        needs_teacher = method != "none" or init != "scratch"
        summaries[label] = train_run(config, role="distill" if method != "none" else "student",
                                     out=Path(out_dir) / folder / TRAIN_FOLDER,
                                     teacher_checkpoint=teacher if needs_teacher else None, resume=True,
                                     progress=False)
    return summaries


def experiment_metrics(out_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Each arm's metrics log (one row per logged iteration)."""
    return {label: training_metrics(Path(out_dir) / folder) for label, (folder, _, _) in ARMS.items()}


def experiment_models(out_dir: str | Path, *, teacher: str = SHIPPED_TEACHER) -> dict[str, torch.nn.Module]:
    """The teacher and each arm's best checkpoint (chosen on the validation image), in eval mode."""
    models = {"teacher": model_from_spec(teacher, scale=4)[1]}
    for label, (folder, _, _) in ARMS.items():
        models[label] = load_best_model(Path(out_dir) / folder, scale=4)
    return models


def experiment_table(summaries: dict[str, dict], models: dict[str, torch.nn.Module]) -> pd.DataFrame:
    """One row per model (the index): wall time, best validation PSNR and PSNR on the embedded test
    photographs, rounded for reading; "—" where a value does not apply (the shipped teacher's training)."""
    rows = []
    for label, model in models.items():
        per_image = evaluate_on_sets(model, [TEST_SET], scale=4)
        summary = summaries.get(label)
        rows.append({"model": label,
                     "train seconds": round(summary["wall_time_seconds"], 1) if summary else "—",
                     "best validation PSNR (dB)": round(summary["best_val_psnr"], 2) if summary else "—",
                     f"{TEST_SET} PSNR (dB)": round(float(per_image["psnr"].mean()), 2)})
    return pd.DataFrame(rows).set_index("model")


def curves_figure(metrics: dict[str, pd.DataFrame], *, title: str) -> plt.Figure:
    """L1 to HR (the term every arm has) and validation PSNR against the iteration, one line per arm."""
    figure, (losses, psnr_axis) = plt.subplots(1, 2, figsize=(12, 4.2))
    for label, table in metrics.items():
        logged = table[["iteration", "l1_hr"]].dropna()
        losses.plot(logged["iteration"], logged["l1_hr"] * 255, label=label)
        validation = table[["iteration", "val_psnr"]].dropna() if "val_psnr" in table else pd.DataFrame()
        if not validation.empty:
            psnr_axis.plot(validation["iteration"], validation["val_psnr"], marker="o", label=label)
    losses.set_yscale("log")
    losses.set_xlabel("iteration")
    losses.set_ylabel("L1(SR_s, HR), grey levels (log)")
    losses.set_title("training loss: the term all three share")
    psnr_axis.set_xlabel("iteration")
    psnr_axis.set_ylabel("validation PSNR on Y (dB)")
    psnr_axis.set_title("validation PSNR (the held-out photograph)")
    for axis in (losses, psnr_axis):
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    return figure


def side_by_side_figure(models: dict[str, torch.nn.Module], *, image: int = 0, crop: int = 48) -> plt.Figure:
    """One test photograph: HR, bicubic, the teacher and every arm's SR, a detailed ``crop`` (HR px) zoomed,
    PSNR each (``fakd.analysis.compare.visual_comparison``, as in the study's comparison)."""
    pair = open_benchmark_set(TEST_SET, scale=4)[image]
    entries = [StudyModel(label, "teacher" if label == "teacher" else "student", model, True)
               for label, model in models.items()]
    images, scores = visual_comparison(entries, pair.lr, pair.hr, scale=4, students=tuple(ARMS))
    return crops_figure(images, box=pick_crop_box(images["HR"], size=crop), scores=scores,
                        title=f"{TEST_SET}/{pair.name}, ×4: the three students after the mini-experiment")
