"""The picture a report leads with: how much of the teacher–student gap each recipe closes, with its 95% CI.

One panel per test set; one bar per row of every setting's paper-format table (``fakd.analysis.comparison_report``)
but its reference (the student from scratch without KD, 0% by definition); the error bar is the 95% CI over
seeds of the mean PSNR, divided by the gap (the share is linear in the mean); the paper's published FAKD
share is a dashed line. A bar past 100% would beat the teacher.
"""

from __future__ import annotations

import pandas as pd

from fakd.analysis.fair_comparison import PUBLISHED_FAKD_SHARES
from fakd.analysis.figures import plt
from fakd.distill.methods import METHODS

_COLOURS = {name: f"C{index}" for index, name in enumerate(METHODS)}


def gap_bars(sections) -> pd.DataFrame:
    """(row, setting, method, dataset, gap, gap_ci) in percent for every non-reference row of every section, in order."""
    bars = []
    for section in sections:
        table = section.absolute
        reference = section.rows[0][1]
        for name, label, method in section.rows[1:]:
            for row in table[table["label"] == label].itertuples():
                base = table[(table["label"] == reference) & (table["dataset"] == row.dataset)]["psnr"]
                gap = row.teacher_psnr - base.iloc[0] if not base.empty else float("nan")
                if not gap > 0:
                    continue
                bars.append({"row": name, "setting": section.setting.title, "method": method, "dataset": row.dataset, "gap": 100 * row.gap_closed,
                             "gap_ci": 100 * row.psnr_ci / gap if row.psnr_ci == row.psnr_ci else 0.0})
    return pd.DataFrame(bars, columns=["row", "setting", "method", "dataset", "gap", "gap_ci"])


def gap_closed_figure(sections, *, scale: int, title: str) -> plt.Figure | None:
    """Horizontal bars of gap closed (%) per recipe, one panel per test set (None when there is nothing to show)."""
    bars = gap_bars(sections)
    if bars.empty:
        return None
    rows = list(dict.fromkeys(bars["row"]))
    settings = bars.drop_duplicates("row").set_index("row")["setting"].reindex(rows).tolist()
    boundaries = [index - 0.5 for index in range(1, len(rows)) if settings[index] != settings[index - 1]]
    datasets = list(dict.fromkeys(bars["dataset"]))
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets) + 3.2, 0.36 * len(rows) + 1.6),
                                sharey=True, squeeze=False)
    published = PUBLISHED_FAKD_SHARES.get(int(scale), {})
    for axis, dataset in zip(axes[0], datasets):
        mine = bars[bars["dataset"] == dataset].set_index("row").reindex(rows)
        positions = range(len(rows))
        axis.barh(positions, mine["gap"], xerr=mine["gap_ci"], capsize=2,
                  color=[_COLOURS.get(method, "grey") for method in mine["method"]], alpha=0.85)
        if dataset in published:
            axis.axvline(100 * published[dataset], color="black", linestyle="--", linewidth=1,
                         label=f"paper's FAKD ({100 * published[dataset]:.0f}%)")
            axis.legend(loc="lower right", fontsize=8)
        axis.axvline(0, color="grey", linewidth=0.8)
        for boundary in boundaries:  # a line between the settings (from scratch, from the teacher, ...)
            axis.axhline(boundary, color="grey", linestyle=":", linewidth=1)
        axis.set_title(dataset)
        axis.set_xlabel("teacher–student gap closed (%)")
        axis.set_yticks(list(positions), rows, fontsize=8)
        axis.invert_yaxis()
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
