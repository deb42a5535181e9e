"""Hand-made sweeps for the analysis tests: per-run results, per-image scores and metrics logs written the way
`fakd study` writes them, with PSNRs set here so each test knows the answer (shared by the fair-comparison
and notebook tests)."""

import json

import numpy as np
import pandas as pd

from fakd.analysis.ablation import read_sweep

IMAGES = ["baby", "bird", "butterfly", "head", "woman"]
TEACHER_PSNR = 31.0

def make_run(root, rows, *, name, method, seed, psnr, val_psnr, teacher, weight=None, alpha=None, iterations=None,
         curve=None, init=None, student_model=None):
    """One finished run: per-image Set5 scores, a metrics log (the validation curve) and its results row."""
    folder = root / "runs" / name
    (folder / "train").mkdir(parents=True)
    pd.DataFrame({"dataset": "Set5", "name": IMAGES, "psnr": psnr, "ssim": 0.8}).to_csv(
        folder / "per_image.csv", index=False)
    log = curve if curve is not None else [(3000, val_psnr)]
    (folder / "train" / "metrics.jsonl").write_text(
        "".join(json.dumps({"iteration": it, "loss": 0.1, "val_psnr": value}) + "\n" for it, value in log))
    rows.append({"run": name, "run_dir": f"runs/{name}", "profile": "cpu", "method": method, "weight": weight,
                 "alpha": alpha, "iterations": iterations or 3000, "seed": seed, "dataset": "Set5", "scale": 4,
                 "psnr": float(np.mean(psnr)), "ssim": 0.8, "val_psnr": val_psnr, "teacher_run": str(teacher),
                 **({"init": init} if init else {}), **({"student_model": student_model} if student_model else {})})


def make_teacher(tmp_path):
    """A teacher run with Set5 PSNR TEACHER_PSNR, for the gap-closed shares."""
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "results.json").write_text(json.dumps({"rows": [
        {"dataset": "Set5", "scale": 4, "psnr": TEACHER_PSNR, "ssim": 0.88, "val_psnr": 29.0}]}))
    return teacher


def make_fair_sweep(tmp_path):
    """no KD, output KD over alpha, FitNet over its grid, FAKD w 1 and 100; the validation and test sets
    disagree for FitNet (test prefers w=100, validation w=10), so a test-set choice would be visible."""
    teacher = make_teacher(tmp_path)
    root, rows = tmp_path / "sweep", []
    base = 30.0 + np.random.default_rng(0).normal(0, 1, len(IMAGES))
    noise = np.random.default_rng(3)
    arms = [("none", None, None, 0.0, 27.0), ("kd", None, None, 0.10, 27.10), ("kd", None, 0.0909, 0.02, 27.02),
            ("kd", None, 0.9091, 0.20, 27.20), ("kd", None, 0.9901, 0.05, 27.05),
            ("fitnet", 0.1, None, 0.01, 27.01), ("fitnet", 1.0, None, 0.05, 27.05),
            ("fitnet", 10.0, None, 0.10, 27.30), ("fitnet", 100.0, None, 0.40, 27.15),
            ("fakd", None, None, 0.15, 27.15), ("fakd", 100.0, None, 0.50, 27.50)]
    for method, weight, alpha, offset, val in arms:
        for seed in (0, 1):
            name = f"{method}-w{weight}-a{alpha}-s{seed}"
            make_run(root, rows, name=name, method=method, weight=weight, alpha=alpha, seed=seed, teacher=teacher,
                 psnr=base + offset + 0.01 * seed + noise.normal(0, 0.002, len(IMAGES)), val_psnr=val + 0.001 * seed)
    # a third seed outside the selection seeds, very good on validation: it must not change the choice
    make_run(root, rows, name="fitnet-w1-s2", method="fitnet", weight=1.0, seed=2, teacher=teacher,
         psnr=base + 0.05, val_psnr=40.0)
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return root


def make_fitnet_sweep(tmp_path, validation: dict[float, float]):
    """FitNet alone at the given weights (weight -> validation PSNR), seeds 0-1, equal test scores."""
    tmp_path.mkdir()
    teacher = make_teacher(tmp_path)
    root, rows = tmp_path / "sweep", []
    for weight, val in validation.items():
        for seed in (0, 1):
            make_run(root, rows, name=f"fitnet-w{weight}-s{seed}", method="fitnet", weight=weight, seed=seed,
                 teacher=teacher, psnr=[30.0] * len(IMAGES), val_psnr=val + 0.001 * seed)
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return read_sweep(root)


def make_fixed_sweep(tmp_path, arms):
    """A sweep that runs weights chosen elsewhere (as the x2 sweep runs the x4 choices), seeds 0-2."""
    teacher = make_teacher(tmp_path)
    root, rows = tmp_path / "sweep", []
    for method, weight, alpha, offset, val in arms:
        for seed in (0, 1, 2):
            make_run(root, rows, name=f"{method}-w{weight}-a{alpha}-s{seed}", method=method, weight=weight, alpha=alpha,
                 seed=seed, teacher=teacher, psnr=[30.0 + offset] * len(IMAGES), val_psnr=val + 0.01 * seed)
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return read_sweep(root)


def make_long_sweep(tmp_path, *, long_gain: float):
    """No KD and FAKD w 100 at 3000 and 12000 iterations, seeds 0-1; FAKD's test gain over no KD is 0.3 dB
    short and long_gain dB long, so it shrinks, holds or grows as long_gain is below, at or above 0.3."""
    teacher = make_teacher(tmp_path)
    root, rows = tmp_path / "sweep", []
    base = 30.0 + np.random.default_rng(1).normal(0, 1, len(IMAGES))
    noise = np.random.default_rng(2)
    for method, weight, iterations, gain, val in (("none", None, None, 0.0, 27.0), ("fakd", 100.0, None, 0.3, 27.3),
                                                  ("none", None, 12000, 0.2, 27.5),
                                                  ("fakd", 100.0, 12000, 0.2 + long_gain, 27.9)):
        for seed in (0, 1):
            curve = [(it, val - (12000 - it) / 12000 + 0.01 * seed) for it in range(3000, 12001, 3000)]
            make_run(root, rows, name=f"{method}-{iterations}-s{seed}", method=method, weight=weight, seed=seed,
                 iterations=iterations, teacher=teacher, val_psnr=val, curve=curve if iterations else None,
                 psnr=base + gain + noise.normal(0, 0.005, len(IMAGES)))
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return read_sweep(root)


SETTING_ARMS = [  # (method, weight, init, student_model, test offset, validation PSNR)
    ("none", None, None, None, 0.0, 27.0), ("kd", None, None, None, 0.1, 27.1), ("fakd", 100.0, None, None, 0.5, 27.5),
    ("none", None, "teacher", None, 1.0, 27.9), ("none", None, "teacher-spaced", None, 0.8, 27.8),
    ("kd", None, "teacher", None, 0.9, 27.85), ("fakd", None, "teacher", None, 0.95, 27.92),
    ("fakd", 100.0, "teacher", None, 1.05, 27.95),
    ("none", None, None, "rcan-cpu-student-narrow", -0.5, 26.5),
    ("fitnet", 1.0, None, "rcan-cpu-student-narrow", -0.4, 26.6),
    ("fakd", 100.0, None, "rcan-cpu-student-narrow", -0.2, 26.8)]


def make_settings_sweep(tmp_path):
    """The paper's student from scratch, the same student initialised from the teacher (first or spaced blocks)
    and a narrower student, seeds 0-1 (``SETTING_ARMS``: each arm's test offset and validation PSNR)."""
    teacher = make_teacher(tmp_path)
    root, rows = tmp_path / "sweep", []
    base = 28.0 + np.random.default_rng(4).normal(0, 1, len(IMAGES))
    noise = np.random.default_rng(5)
    for method, weight, init, student_model, offset, val in SETTING_ARMS:
        for seed in (0, 1):
            make_run(root, rows, name=f"{method}-w{weight}-{init}-{student_model}-s{seed}", method=method,
                     weight=weight, seed=seed, teacher=teacher, init=init, student_model=student_model,
                     psnr=base + offset + noise.normal(0, 0.01, len(IMAGES)), val_psnr=val + 0.001 * seed)
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return read_sweep(root)
