"""Does a distillation gain survive when students train to convergence?

The convergence runs are the study's arms trained longer than the profile's length (same schedule
shape). From their metrics logs: the validation PSNR curve of each arm (mean over seeds) and the share
of the teacher–student gap it closes on the validation images at every validation point,
(val(arm) − val(no KD)) / (val(teacher) − val(no KD)). On the test sets: each arm's per-image gain
over a reference (no KD, output KD) in the long runs against the same gain in the standard runs of the
same seeds, paired per image — the gain *grows* or *shrinks* when that change is significant
(paired t-test p < 0.05), else it *holds* — and the long runs in the paper's table layout, their gap
closed against the long run without KD (the paper's students were trained to convergence).
"""

from __future__ import annotations

import pandas as pd

from fakd.analysis.ablation import ablation_table, configuration_label
from fakd.analysis.fair_comparison import baseline_order, comparison_table
from fakd.analysis.figures import plt
from fakd.analysis.results import read_run_rows
from fakd.analysis.stats import paired_differences, paired_test
from fakd.analysis.student_settings import setting_of
from fakd.errors import FakdError
from fakd.train.runs import training_metrics


def long_runs(sweep: pd.DataFrame) -> pd.DataFrame:
    """One row per run longer than its profile's length, with ``short_label``: the same setting at the
    profile's length."""
    runs = sweep.drop_duplicates("run")
    longer = runs[[_longer(row.iterations, row.default_iterations) for row in runs.itertuples()]].copy()
    longer["short_label"] = [configuration_label(row.method, weight=row.weight, p=row.p, taps=row.taps,
                                                 alpha=row.alpha, setting=setting_of(row))
                             for row in longer.itertuples()]
    return longer


def _longer(iterations, default) -> bool:
    try:
        return int(iterations) > int(default)
    except (TypeError, ValueError):
        return False


def validation_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """(label, iteration, val_psnr, seeds): each label's validation PSNR averaged over its seeds, at the
    iterations every seed has logged."""
    frames = []
    for label, group in runs.groupby("label", sort=False):
        logs = [training_metrics(path)[["iteration", "val_psnr"]].dropna() for path in group["run_path"]]
        merged = pd.concat(logs).groupby("iteration")["val_psnr"].agg(["mean", "count"]).reset_index()
        merged = merged[merged["count"] == len(logs)]
        frames.append(pd.DataFrame({"label": label, "iteration": merged["iteration"],
                                    "val_psnr": merged["mean"], "seeds": len(logs)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["label", "iteration", "val_psnr", "seeds"])


def teacher_validation_psnr(sweep: pd.DataFrame) -> float | None:
    """The teacher's validation PSNR (its best checkpoint's), from the run the students name."""
    folders = sweep["teacher_run"].dropna().unique() if "teacher_run" in sweep.columns else []
    for folder in folders:
        try:
            rows = read_run_rows(folder)
        except FakdError:
            continue
        if "val_psnr" in rows.columns:
            return float(rows["val_psnr"].iloc[0])
    return None


def gap_closed_curves(curves: pd.DataFrame, *, baseline: str, teacher_val: float) -> pd.DataFrame:
    """(label, iteration, gap_closed) for every label but ``baseline``, at the iterations both logged."""
    base = curves[curves["label"] == baseline].set_index("iteration")["val_psnr"]
    others = curves[curves["label"] != baseline]
    others = others[others["iteration"].isin(base.index)].copy()
    reference = base.loc[others["iteration"]].to_numpy()
    others["gap_closed"] = (others["val_psnr"].to_numpy() - reference) / (teacher_val - reference)
    return others[["label", "iteration", "gap_closed"]].reset_index(drop=True)


def gain_change(per_image: pd.DataFrame, *, arm: tuple[str, str], reference: tuple[str, str]) -> pd.DataFrame:
    """Per test set: the arm's mean per-image gain over the reference in the standard runs and in the long
    runs (same seeds), and the paired test of the change. ``arm``/``reference``: (short label, long label)."""
    gains = []
    for arm_label, reference_label in zip(arm, reference):
        shown = per_image[per_image["label"].isin([arm_label, reference_label])]
        gains.append(paired_differences(shown, group="label", baseline=reference_label)
                     .drop(columns="label"))
    merged = gains[0].merge(gains[1], on=["seed", "dataset", "name"], suffixes=("_short", "_long"))
    rows = []
    for dataset, group in merged.groupby("dataset", sort=False):
        change = paired_test(group["difference_long"] - group["difference_short"])
        long = paired_test(group["difference_long"])
        rows.append({"arm": arm[1], "reference": reference[1], "dataset": dataset,
                     "gain_short": group["difference_short"].mean(), "gain_long": group["difference_long"].mean(),
                     "change": change["mean"], "change_ci": change["ci"], "n": change["n"], "t_p": change["t_p"],
                     "trend": _trend(change), "long_wins": long["wins"], "long_t_p": long["t_p"]})
    return pd.DataFrame(rows)


def _trend(change: dict) -> str:
    if not change["t_p"] < 0.05:
        return "holds"
    return "grows" if change["mean"] > 0 else "shrinks"


def convergence_figure(curves: pd.DataFrame, gaps: pd.DataFrame, *, teacher_val: float | None,
                       title: str) -> plt.Figure:
    """Validation PSNR vs iteration per arm (teacher as a line) and gap closed vs iteration; an arm keeps
    its colour in both panels."""
    figure, (psnr, gap) = plt.subplots(1, 2, figsize=(12, 4.2))
    labels = list(dict.fromkeys([*curves["label"], *gaps["label"]]))
    colours = {label: f"C{index % 10}" for index, label in enumerate(labels)}
    for label, curve in curves.groupby("label", sort=False):
        psnr.plot(curve["iteration"], curve["val_psnr"], label=label, color=colours[label])
    if teacher_val is not None:
        psnr.axhline(teacher_val, color="black", linestyle="--", linewidth=1, label="teacher")
    psnr.set_xlabel("iteration")
    psnr.set_ylabel("validation PSNR on Y (dB), mean over seeds")
    psnr.legend(fontsize=8)
    for label, curve in gaps.groupby("label", sort=False):
        gap.plot(curve["iteration"], 100 * curve["gap_closed"], label=label, color=colours[label])
    gap.axhline(0, color="grey", linewidth=0.8)
    gap.set_xlabel("iteration")
    gap.set_ylabel("teacher–student gap closed on validation (%)")
    gap.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def convergence_verdict(changes: pd.DataFrame) -> str:
    """Sentences from ``gain_change`` tables: per arm and reference, the gain at the profile's length and
    after long training on each test set, and whether it grows, holds or shrinks."""
    if changes.empty:
        return "No convergence runs have finished yet.\n"
    lines = ["### Does the gain survive convergence?", ""]
    for (arm, reference), group in changes.groupby(["arm", "reference"], sort=False):
        trends = group["trend"].value_counts().to_dict()
        summary = ", ".join(f"{trend} on {count} test set{'s' if count != 1 else ''}"
                            for trend, count in trends.items())
        cells = "; ".join(f"{row.dataset} {row.gain_short:+.3f} → {row.gain_long:+.3f} dB "
                          f"({row.trend}, p {row.t_p:.2g}; long runs ahead on {row.long_wins} of {row.n} "
                          f"images, p {row.long_t_p:.2g})" for row in group.itertuples())
        lines.append(f"- **{arm}** over {reference}: {summary} — {cells}.")
    return "\n".join(lines) + "\n"


def gain_changes(per_image: pd.DataFrame, longer: pd.DataFrame, *, references: list[str]) -> pd.DataFrame:
    """``gain_change`` of every long distilled arm over every long reference arm (methods ``references``),
    where the standard-length runs of both exist."""
    pairs = longer.drop_duplicates("label")
    shown = set(per_image["label"])
    tables = [gain_change(per_image, arm=(arm.short_label, arm.label), reference=(ref.short_label, ref.label))
              for arm in pairs.itertuples() if arm.method != "none"
              for ref in pairs[pairs["method"].isin(references)].itertuples()
              if arm.label != ref.label and {arm.short_label, ref.short_label} <= shown]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def baseline_gaps(curves: pd.DataFrame, longer: pd.DataFrame, *, baseline: str,
                  teacher_val: float | None) -> pd.DataFrame:
    """``gap_closed_curves`` against the long run of method ``baseline`` (empty without it or a teacher)."""
    base = longer[longer["method"] == baseline]["label"]
    if base.empty or teacher_val is None:
        return pd.DataFrame(columns=["label", "iteration", "gap_closed"])
    return gap_closed_curves(curves, baseline=base.iloc[0], teacher_val=teacher_val)


def convergence_table(sweep: pd.DataFrame, longer: pd.DataFrame, *, teacher: pd.DataFrame | None, scale: int,
                      baseline: str = "none") -> pd.DataFrame:
    """The long runs in the paper's layout (``comparison_table``): teacher, the long run of method
    ``baseline``, the long KD baselines, then FAKD by weight; gap closed against that long baseline run, so
    it reads like the paper's shares, which come from converged students. Empty without the long baseline."""
    arms = longer.drop_duplicates("label")
    if not (arms["method"] == baseline).any():
        return pd.DataFrame()
    base_label = arms.loc[arms["method"] == baseline, "label"].iloc[0]
    table = ablation_table(sweep[sweep["label"].isin(arms["label"])], teacher, baseline=base_label)
    order = {method: rank for rank, method in enumerate([baseline, *baseline_order(), "fakd"])}
    arms = arms.assign(rank=arms["method"].map(order).fillna(len(order)),
                       effective=pd.to_numeric(arms["weight"], errors="coerce").fillna(1.0))
    rows = [(row.label, row.label, row.method) for row in arms.sort_values(["rank", "effective"]).itertuples()]
    return comparison_table(table, rows, teacher=teacher, scale=scale)


def convergence_markdown(sweep: pd.DataFrame, per_image: pd.DataFrame, *, teacher: pd.DataFrame | None, scale: int,
                         baseline: str, references: list[str], run_dir, slug: str = "", title: str = "") -> str:
    """The convergence section of one student setting's runs (``sweep``): its curves, gap closed and gain
    changes saved in ``run_dir`` (file names end in ``slug``), and the verdict with the long runs' table;
    "" when the setting has no long runs."""
    from fakd.analysis.figures import save_figure
    from fakd.analysis.tables import to_markdown

    longer = long_runs(sweep)
    if longer.empty:
        return ""
    curves = validation_curves(longer)
    teacher_val = teacher_validation_psnr(sweep)
    gaps = baseline_gaps(curves, longer, baseline=baseline, teacher_val=teacher_val)
    curves.to_csv(run_dir / f"convergence_curves{slug}.csv", index=False)
    gaps.to_csv(run_dir / f"convergence_gap_closed{slug}.csv", index=False)
    save_figure(convergence_figure(curves, gaps, teacher_val=teacher_val,
                                   title=f"Long runs{f' ({title})' if title else ''}: validation PSNR and gap closed "
                                         "vs iteration"),
                run_dir / f"convergence{slug}.png")
    changes = gain_changes(per_image, longer, references=references)
    changes.to_csv(run_dir / f"convergence_gains{slug}.csv", index=False)
    text = (f"## Convergence: {title}\n\n" if title else "") + convergence_verdict(changes)
    long_table = convergence_table(sweep, longer, teacher=teacher, scale=scale, baseline=baseline)
    if not long_table.empty:
        (run_dir / f"convergence_table{slug}.md").write_text(to_markdown(long_table) + "\n")
        text += ("\nThe long runs in the paper's layout (gap closed against the long run without KD):\n\n"
                 + to_markdown(long_table) + "\n")
    return text

