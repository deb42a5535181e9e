"""The statistics of the ablation report: spread over seeds, paired per-image tests, share of the gap closed.

- ``mean_ci``: mean and the half-width of its two-sided confidence interval from Student's t with
  n − 1 degrees of freedom (n = seeds). One seed gives no interval (NaN), never a made-up one.
- ``paired_test``: per-image differences (method − baseline on the same image, seed and data set)
  with their mean ± CI, the paired t-test and the Wilcoxon signed-rank test (two-sided).
- ``gap_closed``: (student − baseline) / (teacher − baseline), the paper's "share of the teacher–
  student gap closed" (FAKD ×4 Set5: (32.462 − 32.321) / (32.638 − 32.321) = 44%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from fakd.errors import FakdError


def mean_ci(values: Sequence[float], *, confidence: float = 0.95) -> tuple[float, float, int]:
    """(mean, CI half-width, n) of ``values`` (NaNs dropped); half-width NaN for fewer than 2 values."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    array = np.asarray(list(values), dtype=np.float64)
    array = array[~np.isnan(array)]
    count = int(array.size)
    if count == 0:
        return float("nan"), float("nan"), 0
    mean = float(array.mean())
    if count < 2:
        return mean, float("nan"), count
    standard_error = float(array.std(ddof=1)) / math.sqrt(count)
    quantile = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=count - 1))
    return mean, quantile * standard_error, count


def format_mean_ci(mean: float, half_width: float, *, decimals: int = 2) -> str:
    """"32.46 ± 0.05" (or just "32.46" when there is no interval)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if half_width is None or math.isnan(half_width):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {half_width:.{decimals}f}"


def summarize_over_seeds(table: pd.DataFrame, *, by: Sequence[str], value: str,
                         confidence: float = 0.95) -> pd.DataFrame:
    """One row per group ``by``: ``mean``, ``ci`` (half-width), ``n`` of column ``value``, groups in order."""
    missing = [name for name in [*by, value] if name not in table.columns]
    if missing:
        raise ValueError(f"the table has no column(s) {missing} (columns: {', '.join(map(str, table.columns))})")
    rows = []
    for key, group in table.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, half_width, count = mean_ci(group[value], confidence=confidence)
        rows.append({**dict(zip(by, key)), "mean": mean, "ci": half_width, "n": count})
    return pd.DataFrame(rows, columns=[*by, "mean", "ci", "n"])


def paired_test(differences: Sequence[float], *, confidence: float = 0.95) -> dict:
    """Mean ± CI of paired differences, the paired t-test and the Wilcoxon signed-rank p-values.

    A p-value is NaN where the test is undefined (fewer than 2 differences, or all of them zero).
    """
    array = np.asarray(list(differences), dtype=np.float64)
    array = array[~np.isnan(array)]
    mean, half_width, count = mean_ci(array, confidence=confidence)
    t_p = wilcoxon_p = float("nan")
    if count >= 2 and np.any(array != 0):
        if np.std(array) > 0:
            t_p = float(scipy_stats.ttest_1samp(array, 0.0).pvalue)
        wilcoxon_p = float(scipy_stats.wilcoxon(array, zero_method="wilcox").pvalue)
    return {"mean": mean, "ci": half_width, "n": count, "wins": int(np.sum(array > 0)),
            "t_p": t_p, "wilcoxon_p": wilcoxon_p}


def paired_differences(per_image: pd.DataFrame, *, group: str, baseline: str, value: str = "psnr",
                       match: Sequence[str] = ("seed", "dataset", "name")) -> pd.DataFrame:
    """Per image: ``value`` of every non-baseline group minus the baseline's on the same ``match`` keys.

    ``per_image`` has one row per (group, seed, dataset, image). Returns rows (group, *match,
    ``difference``); images the baseline lacks are dropped.
    """
    needed = [group, value, *match]
    missing = [name for name in needed if name not in per_image.columns]
    if missing:
        raise ValueError(f"per-image table has no column(s) {missing}")
    if baseline not in set(per_image[group]):
        raise FakdError(f"baseline {baseline!r} not among {sorted(set(per_image[group]))}")
    keys = list(match)
    reference = per_image[per_image[group] == baseline][[*keys, value]].rename(columns={value: "baseline"})
    others = per_image[per_image[group] != baseline][[group, *keys, value]]
    merged = others.merge(reference, on=keys, how="inner")
    merged["difference"] = merged[value] - merged["baseline"]
    return merged[[group, *keys, "difference"]].reset_index(drop=True)


def gap_closed(student: float, *, baseline: float, teacher: float) -> float:
    """Share of the teacher–baseline gap closed by ``student`` (NaN when the teacher is not better)."""
    gap = teacher - baseline
    if not gap > 0:
        return float("nan")
    return (student - baseline) / gap
