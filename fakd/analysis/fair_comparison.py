"""The paper's question: FAKD against the KD methods it was published against, each tuned fairly.

Rows in the paper's layout — teacher, student without KD, each KD method at its validation-chosen
weight (``fakd.analysis.selection``), FAKD as run for the paper (w = 1) and FAKD at its chosen weight —
with PSNR / SSIM mean ± 95% CI over seeds per test set, the share of the teacher–student gap each
closes next to the paper's published shares, paired per-image tests against the strongest baseline of
the table, and a verdict written from those numbers that names the best recipe.

A sweep that trains students in several settings (``fakd.analysis.student_settings``: initialised from
the teacher's weights, a narrower student) gets one such table per setting, its weights chosen within the
setting, gap closed against the same student model trained from scratch without KD.
"""

from __future__ import annotations

import math

import pandas as pd

from fakd.analysis.selection import chosen_labels
from fakd.analysis.stats import format_mean_ci, paired_differences, paired_test
from fakd.analysis.student_settings import StudentSetting
from fakd.distill.methods import METHODS

# Share of the teacher–student gap FAKD closes in the paper (He et al. 2020, RCAN teacher → student,
# PSNR): (FAKD − student) / (teacher − student) on Set5 / Set14 / B100.
PUBLISHED_FAKD_SHARES = {4: {"Set5": 0.44, "Set14": 0.37, "B100": 0.39},
                         2: {"Set5": 0.46, "Set14": 0.38, "B100": 0.39}}
def baseline_order() -> tuple[str, ...]:
    """The KD baselines in the registry's order (every method but no KD and FAKD), read when called."""
    return tuple(name for name in METHODS if name not in ("none", "fakd"))
STUDENT_ROW = "student (no KD)"
PAPER_FAKD_ROW = "FAKD w=1 (as run for the paper)"


def comparison_rows(candidates: pd.DataFrame, *, setting: StudentSetting = StudentSetting()) -> list[tuple[str, str, str]]:
    """(row name, configuration label, method) in the paper's order; chosen weights named in the row, a choice
    made before the method's weight search finished marked provisional, one made at another scale
    (``fixed_choices``) named for it. For a ``setting`` other than its reference (a student initialised from
    the teacher), the reference student without KD comes first, then the setting's own student without KD."""
    chosen = chosen_labels(candidates)
    final = candidates.groupby("method")["complete"].all().to_dict() if not candidates.empty else {}
    elsewhere = candidates["chosen_at"].iloc[0] if "chosen_at" in candidates and not candidates.empty else None

    def name(method: str) -> str:
        if elsewhere is not None:
            return f"{chosen[method]} (chosen at {elsewhere})"
        return f"{chosen[method]} ({'chosen' if final.get(method) else 'provisional choice'})"

    reference_label = "no KD" + setting.reference.suffix
    rows = [(STUDENT_ROW + setting.reference.suffix, reference_label, "none")]
    if setting != setting.reference:
        rows.append((f"no KD{setting.suffix}", f"no KD{setting.suffix}", "none"))
    rows += [(name(method), chosen[method], method) for method in baseline_order() if method in chosen]
    paper_label = "FAKD" + setting.suffix
    if set(candidates.get("label", [])) & {paper_label}:
        rows.append((PAPER_FAKD_ROW + setting.suffix, paper_label, "fakd"))
    if "fakd" in chosen and chosen["fakd"] != paper_label:
        rows.append((name("fakd"), chosen["fakd"], "fakd"))
    return rows


def strongest_baseline(table: pd.DataFrame, rows: list[tuple[str, str, str]]) -> str | None:
    """The label of the non-FAKD row with the highest PSNR averaged over the test sets (None without one)."""
    labels = [label for _, label, method in rows if method != "fakd"]
    shown = table[table["label"].isin(labels)]
    return None if shown.empty else shown.groupby("label")["psnr"].mean().idxmax()


def _cell(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "–"
    row = frame.iloc[0]
    return f"{format_mean_ci(row.psnr, row.psnr_ci)} / {format_mean_ci(row.ssim, row.ssim_ci, decimals=4)}"


def _share_text(share: float, published: float | None) -> str:
    text = "–" if share is None or math.isnan(share) else f"{100 * share:.0f}%"
    return text + (f" (paper {100 * published:.0f}%)" if published is not None else "")


def comparison_table(table: pd.DataFrame, rows: list[tuple[str, str, str]], *, teacher: pd.DataFrame | None,
                     scale: int) -> pd.DataFrame:
    """The paper-format table: one row per entry of ``rows`` (plus the teacher first), "PSNR / SSIM" per test
    set, seeds, and "gap closed" per test set (every row but the first, the no-KD reference it is measured
    from) with the paper's share beside FAKD's rows.

    ``table``: ``fakd.analysis.ablation.ablation_table`` against no KD (label, dataset, psnr, psnr_ci, ssim,
    ssim_ci, seeds, gap_closed).
    """
    datasets = list(dict.fromkeys(table["dataset"]))
    lines = []
    if teacher is not None:
        cells = teacher.set_index("dataset")
        lines.append({"method": "teacher", "seeds": 1, **{
            dataset: f"{cells.loc[dataset, 'psnr']:.2f} / {cells.loc[dataset, 'ssim']:.4f}"
            for dataset in datasets if dataset in cells.index}})
    published = PUBLISHED_FAKD_SHARES.get(int(scale), {})
    reference = rows[0][1] if rows and rows[0][2] == "none" else None  # the row the gap is measured from
    for name, label, method in rows:
        mine = table[table["label"] == label]
        line = {"method": name, "seeds": int(mine["seeds"].min()) if not mine.empty else 0}
        for dataset in datasets:
            here = mine[mine["dataset"] == dataset]
            line[dataset] = _cell(here)
            if label != reference:
                share = float(here["gap_closed"].iloc[0]) if not here.empty else float("nan")
                line[f"gap {dataset}"] = _share_text(share, published.get(dataset) if method == "fakd" else None)
        lines.append(line)
    return pd.DataFrame(lines).set_index("method").fillna("")


def paired_against(per_image: pd.DataFrame, *, reference: str, labels: list[str]) -> pd.DataFrame:
    """Paired per-image tests of each configuration in ``labels`` against ``reference`` (same image and seed)."""
    shown = per_image[per_image["label"].isin([reference, *labels])]
    differences = paired_differences(shown, group="label", baseline=reference)
    rows = [{"label": label, "dataset": dataset, **paired_test(group["difference"])}
            for (label, dataset), group in differences.groupby(["label", "dataset"], sort=False)]
    return pd.DataFrame(rows, columns=["label", "dataset", "mean", "ci", "n", "wins", "t_p", "wilcoxon_p"])


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else (f"{value:.2g}" if value >= 0.001 else "< 0.001")


def best_per_dataset(table: pd.DataFrame, labels: list[str]) -> dict[str, str]:
    """Test set → the label with the highest mean PSNR among ``labels``."""
    shown = table[table["label"].isin(labels)]
    return {dataset: group.loc[group["psnr"].idxmax(), "label"]
            for dataset, group in shown.groupby("dataset", sort=False)}


def comparison_verdict(table: pd.DataFrame, tests: pd.DataFrame, rows: list[tuple[str, str, str]], *,
                       scale: int, reference: str, title: str = "") -> str:
    """Sentences from the numbers: the best recipe per test set (every row of the table competes, no KD
    included), the chosen FAKD against ``reference`` — the table's strongest baseline — paired per image, and
    FAKD's gap share next to the paper's."""
    labels = [label for _, label, _ in rows]
    fakd_rows = [label for _, label, method in rows if method == "fakd"]
    best = best_per_dataset(table, labels)
    lines = [f"### ×{scale}{f', {title}' if title else ''}: which recipe wins?", ""]
    winners = sorted(set(best.values()))
    if len(winners) == 1:
        lines.append(f"**{winners[0]}** has the highest PSNR of all students on every test set ({', '.join(best)}).")
    else:
        lines.append("Highest PSNR per test set: " + "; ".join(f"{d}: **{w}**" for d, w in best.items()) + ".")
    if not fakd_rows:
        return "\n".join(lines) + "\n"
    fakd = fakd_rows[-1]
    lines.append(f"The strongest baseline of this table (highest PSNR averaged over the test sets) is **{reference}**.")
    for dataset in best:
        here = table[table["dataset"] == dataset].set_index("label")
        if fakd not in here.index:
            lines.append(f"- {dataset}: –")
            continue
        text = f"- {dataset}: {fakd} {here.loc[fakd, 'psnr']:.3f} dB"
        test = tests[(tests["label"] == fakd) & (tests["dataset"] == dataset)]
        if not test.empty:
            t = test.iloc[0]
            text += (f"; vs {reference} {t['mean']:+.3f} dB per image, ahead on {t['wins']} of {t['n']} "
                     f"(paired t-test p {_p(t['t_p'])}, Wilcoxon p {_p(t['wilcoxon_p'])})")
        lines.append(text + ".")
    lines += ["", _share_sentence(table, fakd=fakd, scale=scale)]
    return "\n".join(lines) + "\n"


def _share_sentence(table: pd.DataFrame, *, fakd: str, scale: int) -> str:
    published = PUBLISHED_FAKD_SHARES.get(int(scale), {})
    mine = table[table["label"] == fakd].set_index("dataset")["gap_closed"]
    parts = [f"{dataset} {100 * mine[dataset]:.0f}%" + (f" (paper {100 * published[dataset]:.0f}%)"
                                                         if dataset in published else "")
             for dataset in mine.index if not math.isnan(mine[dataset])]
    return f"Share of the teacher–student gap {fakd} closes: " + ", ".join(parts) + "." if parts else ""
