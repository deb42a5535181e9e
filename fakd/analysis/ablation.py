"""A student sweep's results as the ablation report: tables over seeds, paired tests, the summary text.

Input: a ``fakd sweep`` folder of ``03_distill_student`` runs (``results.csv``: one row per run and
test set, with the run's parameters; each run folder's ``per_image.csv``) and the teacher run the
students were distilled from (its ``results.json``). A *configuration* is a method with its weight,
distance p and taps (``fakd``, ``fakd w=1``, ``fakd p=2``, ``fakd taps=body.2``) and the student's setting
(its initialisation and model, ``fakd.analysis.student_settings``: "FAKD w=100, from teacher"); its seeds
are repeats. The baseline is the student trained without distillation (``none``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
import json
import math
from pathlib import Path

import pandas as pd

from fakd.analysis.plots import share_columns
from fakd.analysis.results import PER_IMAGE_FILE, read_run_rows
from fakd.analysis.student_settings import StudentSetting, setting_columns, setting_of
from fakd.analysis.stats import format_mean_ci, gap_closed, paired_differences, paired_test, summarize_over_seeds
from fakd.distill import METHODS
from fakd.errors import FakdError
from fakd.train.config import DistillSettings, load_run_config
from fakd.train.runs import TRAIN_FOLDER, training_metrics

BASELINE = "none"
DEFAULT_ALPHA = DistillSettings().alpha  # output KD's share when a run does not set it
class _MethodLabels(Mapping):
    """Method name → display label, read from the registry at each lookup (a method registered later counts)."""

    def __getitem__(self, name: str) -> str:
        return METHODS[name].label

    def __iter__(self):
        return iter(METHODS)

    def __len__(self) -> int:
        return len(METHODS)


METHOD_NAMES = _MethodLabels()


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _taps(value) -> list[str]:
    if not _present(value):
        return []
    if isinstance(value, str):
        value = json.loads(value) if value.startswith("[") else [value]
    return [str(tap) for tap in value]


def configuration_label(method: str, *, weight=None, p=None, taps=None, alpha=None, iterations=None,
                        default_iterations=None, setting: StudentSetting | None = None) -> str:
    """A short name of a student configuration: "FAKD", "FAKD w=1", "FAKD p=2", "FAKD taps=body.2",
    "output KD α=0.909" (α other than the default 0.5), "FAKD w=100, 12000 it." (a run longer or shorter
    than ``default_iterations``), "no KD, from teacher" (a student ``setting`` other than the paper's)."""
    label = METHOD_NAMES.get(method, method)
    if _present(weight) and float(weight) != default_weight(method):
        label += f" w={float(weight):g}"
    if _present(alpha) and float(alpha) != DEFAULT_ALPHA:
        label += f" α={float(alpha):.3g}"
    if method == "fakd" and _present(p) and int(p) != 1:
        label += f" p={int(p)}"
    if _taps(taps):
        label += " taps=" + "+".join(_taps(taps))
    if _present(iterations) and _present(default_iterations) and int(iterations) != int(default_iterations):
        label += f", {int(iterations)} it."
    return label + (setting.suffix if setting is not None else "")


def effective_weight(method: str, weight) -> float | None:
    """The weight a run used: the given one, else the method's default (None for none/kd)."""
    if _present(weight):
        return float(weight)
    return default_weight(method)


def default_weight(method: str) -> float | None:
    """The registry's default weight of ``method`` (None for none/kd and names it does not know)."""
    return METHODS[method].default_weight if method in METHODS else None


@functools.lru_cache(maxsize=None)
def _profile_iterations(profile) -> int | None:
    """The student iterations of a profile (None for an unknown or missing profile)."""
    try:
        return load_run_config(str(profile)).student.iterations if _present(profile) else None
    except FakdError:
        return None


def read_sweep(sweep_dir: str | Path) -> pd.DataFrame:
    """``results.csv`` of a student sweep with ``label``, ``weight_used`` and absolute ``run_path`` added."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / "results.csv"
    if not path.is_file():
        raise FakdError(f"{sweep_dir} has no results.csv: is it a `fakd sweep` folder?")
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        table = pd.DataFrame()
    needed = {"run", "run_dir", "method", "seed", "dataset", "psnr", "ssim"}
    if table.empty or not needed <= set(table.columns):
        raise FakdError(f"{path} holds no student results (columns {sorted(needed)} needed; "
                        f"did every run fail? see {sweep_dir / 'failures.json'})")
    for name in ("weight", "p", "taps", "alpha", "iterations"):
        if name not in table.columns:
            table[name] = None
    table = setting_columns(table)
    table["default_iterations"] = [_profile_iterations(profile) for profile in table.get("profile", [None] * len(table))]
    table["label"] = [configuration_label(row.method, weight=row.weight, p=row.p, taps=row.taps, alpha=row.alpha,
                                          iterations=row.iterations, default_iterations=row.default_iterations,
                                          setting=setting_of(row))
                      for row in table.itertuples()]
    table["weight_used"] = [effective_weight(row.method, row.weight) for row in table.itertuples()]
    table["run_path"] = [str((sweep_dir / run_dir).resolve()) for run_dir in table["run_dir"]]
    if "teacher_run" in table.columns:  # recorded relative to the run's folder (older runs: absolute)
        table["teacher_run"] = [str((Path(run_path) / teacher).resolve()) if _present(teacher) else teacher
                                for run_path, teacher in zip(table["run_path"], table["teacher_run"])]
    return table


def read_per_image(sweep: pd.DataFrame) -> pd.DataFrame:
    """Every run's ``per_image.csv`` with its ``label`` and ``seed`` (runs without one are skipped)."""
    tables = []
    for run in sweep.drop_duplicates("run").itertuples():
        path = Path(run.run_path) / PER_IMAGE_FILE
        if path.is_file():
            tables.append(pd.read_csv(path).assign(label=run.label, seed=run.seed, run=run.run))
    if not tables:
        raise FakdError("no run of the sweep has a per_image.csv")
    return pd.concat(tables, ignore_index=True)


def mean_shares(sweep: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per configuration (label, in sweep order), its runs' ``share_<term>`` logs averaged over seeds.

    Configurations whose runs logged no shares (no metrics log, or one from before shares were
    logged) are left out.
    """
    shares = {}
    for label, runs in sweep.drop_duplicates("run").groupby("label", sort=False):
        logs = []
        for run in runs.itertuples():
            logged = (Path(run.run_path) / TRAIN_FOLDER / "metrics.jsonl").is_file()
            metrics = training_metrics(run.run_path) if logged else pd.DataFrame()
            columns = share_columns(metrics)
            if columns:
                logs.append(metrics[["iteration", *columns]].dropna())
        if logs:
            shares[label] = pd.concat(logs).groupby("iteration", as_index=False).mean()
    return shares


def teacher_rows(sweep: pd.DataFrame) -> pd.DataFrame | None:
    """The teacher's test rows (dataset, psnr, ssim) from the run the students name, or None."""
    column = "teacher_run" if "teacher_run" in sweep.columns else None
    if column is None:
        return None
    folders = [value for value in sweep[column].dropna().unique() if _present(value)]
    if not folders:
        return None
    try:
        return read_run_rows(folders[0])[["dataset", "psnr", "ssim"]]
    except (FakdError, KeyError):
        return None


def ablation_table(sweep: pd.DataFrame, teacher: pd.DataFrame | None = None, *,
                   baseline: str = BASELINE) -> pd.DataFrame:
    """Per configuration and test set: PSNR/SSIM mean ± 95% CI over seeds, gain over the baseline's
    mean, and the share of the teacher–baseline gap closed (when the teacher's numbers are known)."""
    psnr = summarize_over_seeds(sweep, by=["label", "dataset"], value="psnr")
    ssim = summarize_over_seeds(sweep, by=["label", "dataset"], value="ssim")
    table = psnr.rename(columns={"mean": "psnr", "ci": "psnr_ci", "n": "seeds"}).merge(
        ssim.rename(columns={"mean": "ssim", "ci": "ssim_ci"}).drop(columns="n"), on=["label", "dataset"])
    base_label = METHOD_NAMES.get(baseline, baseline)
    base = table[table["label"] == base_label].set_index("dataset")["psnr"]
    table["gain"] = [row.psnr - base[row.dataset] if row.dataset in base.index else float("nan")
                     for row in table.itertuples()]
    teacher_psnr = teacher.set_index("dataset")["psnr"] if teacher is not None else pd.Series(dtype=float)
    table["teacher_psnr"] = [teacher_psnr.get(row.dataset, float("nan")) for row in table.itertuples()]
    table["gap_closed"] = [
        gap_closed(row.psnr, baseline=base[row.dataset], teacher=row.teacher_psnr)
        if row.dataset in base.index and not math.isnan(row.teacher_psnr) else float("nan")
        for row in table.itertuples()]
    return table


def paired_table(per_image: pd.DataFrame, *, baseline: str = BASELINE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-image differences vs the baseline, one test row per configuration and data set)."""
    base_label = METHOD_NAMES.get(baseline, baseline)
    differences = paired_differences(per_image, group="label", baseline=base_label)
    rows = []
    for (label, dataset), group in differences.groupby(["label", "dataset"], sort=False):
        rows.append({"label": label, "dataset": dataset, **paired_test(group["difference"])})
    return differences, pd.DataFrame(rows, columns=["label", "dataset", "mean", "ci", "n", "wins", "t_p",
                                                    "wilcoxon_p"])


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The ablation table with "mean ± CI" text cells, for Markdown."""
    shown = pd.DataFrame({
        "configuration": table["label"], "data set": table["dataset"], "seeds": table["seeds"],
        "PSNR (dB)": [format_mean_ci(m, c) for m, c in zip(table["psnr"], table["psnr_ci"])],
        "SSIM": [format_mean_ci(m, c, decimals=4) for m, c in zip(table["ssim"], table["ssim_ci"])],
        "gain (dB)": [f"{g:+.3f}" if not math.isnan(g) else "–" for g in table["gain"]],
        "gap closed": [f"{100 * g:.0f}%" if not math.isnan(g) else "–" for g in table["gap_closed"]],
    })
    return shown.set_index(["configuration", "data set"])


def _p_text(value: float) -> str:
    return "n/a" if math.isnan(value) else (f"{value:.2g}" if value >= 0.001 else "<0.001")


def summary_markdown(table: pd.DataFrame, tests: pd.DataFrame, *, method: str = "fakd",
                     baseline: str = BASELINE) -> str:
    """A few sentences stating whether ``method`` (default configuration) beat the baseline, from numbers."""
    label, base_label = METHOD_NAMES.get(method, method), METHOD_NAMES.get(baseline, baseline)
    lines = [f"## Does {label} beat the {base_label} baseline?", ""]
    mine = table[table["label"] == label]
    if mine.empty or base_label not in set(table["label"]):
        lines.append(f"The sweep has no runs of both {label} and {base_label}, so they cannot be compared.")
        return "\n".join(lines) + "\n"
    verdicts = []
    for row in mine.itertuples():
        base = table[(table["label"] == base_label) & (table["dataset"] == row.dataset)].iloc[0]
        test = tests[(tests["label"] == label) & (tests["dataset"] == row.dataset)]
        test = test.iloc[0] if not test.empty else None
        clear = test is not None and not math.isnan(test["t_p"]) and test["t_p"] < 0.05
        if row.gain > 0:
            verdict = "better" if clear else "higher, but not significantly"
        elif row.gain < 0:
            verdict = "worse" if clear else "lower, but not significantly"
        else:
            verdict = "the same"
        verdicts.append(verdict)
        text = (f"- **{row.dataset}**: {label} {format_mean_ci(row.psnr, row.psnr_ci, decimals=3)} dB vs "
                f"{base_label} {format_mean_ci(base['psnr'], base['psnr_ci'], decimals=3)} dB "
                f"({row.seeds} seed{'s' if row.seeds != 1 else ''}): {row.gain:+.3f} dB, {verdict}")
        if test is not None:
            text += (f"; per image {test['mean']:+.3f} dB on average, {label} ahead on {test['wins']} of "
                     f"{test['n']} (paired t-test p = {_p_text(test['t_p'])}, Wilcoxon p = "
                     f"{_p_text(test['wilcoxon_p'])})")
        if baseline == BASELINE and not math.isnan(row.gap_closed):  # the gap is teacher vs the student alone
            text += f"; {100 * row.gap_closed:.0f}% of the teacher–student gap closed"
        lines.append(text + ".")
    better = sum(verdict == "better" for verdict in verdicts)
    worse = sum(verdict == "worse" for verdict in verdicts)
    seeds = int(mine["seeds"].min())
    if better == len(verdicts):
        headline = f"Yes: {label} beat {base_label} on every test set, each difference significant (p < 0.05)."
    elif worse == len(verdicts):
        headline = f"No: {label} was significantly worse than {base_label} on every test set."
    elif better:
        headline = f"Partly: {label} was significantly better on {better} of {len(verdicts)} test sets."
    else:
        headline = (f"Not shown: no test set has a significant gain of {label} over {base_label} "
                    f"(paired t-test over images, p < 0.05).")
    lines[2:2] = [headline, ""]
    if seeds < 2:
        lines += ["", f"Only {seeds} seed per configuration: no confidence interval over seeds; the "
                      f"per-image tests cover image-to-image spread, not training noise."]
    return "\n".join(lines) + "\n"


def training_time_markdown(sweep: pd.DataFrame) -> str:
    """How much training the sweep's runs took: runs, summed wall time of their training (hours) and the
    longest run, from the results' ``wall_time_s``."""
    runs = sweep.drop_duplicates("run")
    if "wall_time_s" not in runs.columns or runs["wall_time_s"].isna().all():
        return ""
    seconds = runs["wall_time_s"].dropna()
    return (f"Training time: {len(runs)} student runs, {seconds.sum() / 3600:.1f} h of training wall time in all "
            f"(one torch thread each; runs in parallel overlap), {seconds.median() / 60:.0f} min median, "
            f"{seconds.max() / 60:.0f} min longest.\n")
