"""Each method's weight chosen on the validation split, the same way for every method.

A fair comparison of distillation methods tunes each one equally: the same relative grid of weights
around its source's default (``RELATIVE_GRID`` × the default, in official units), the same seeds
(``SELECTION_SEEDS``), and the choice made on the validation images held out from the training set
(the run's best validation PSNR) — never on Set5/Set14/B100. Output KD has no feature weight: its
weight is the teacher term's weight relative to the HR term, α / (1 − α) (1 at the default α = 0.5),
so its grid is α ∈ {0.0909, 0.5, 0.9091, 0.9901}. Adam is invariant to a constant factor on the loss,
so this ratio, not α itself, is what changes training.

Only standard runs compete: the profile's length, the default taps and p. A candidate counts when it
has every selection seed; a method whose grid is not complete yet is chosen among what is there and
marked ``complete=False``.
"""

from __future__ import annotations

import math

import pandas as pd

from fakd.analysis.ablation import DEFAULT_ALPHA, default_weight

RELATIVE_GRID = (0.1, 1.0, 10.0, 100.0)
SELECTION_SEEDS = (0, 1)
_TOLERANCE = 0.01  # relative: 0.9091 / (1 - 0.9091) = 10.001 counts as 10


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def relative_weight(method: str, *, weight=None, alpha=None) -> float | None:
    """A run's weight as a multiple of its method's default (output KD: α / (1 − α)); None for no KD."""
    if method == "kd":
        share = _number(alpha)
        share = DEFAULT_ALPHA if share is None else share
        return share / (1.0 - share) if share < 1.0 else math.inf
    default = default_weight(method)
    if default is None:
        return None
    used = _number(weight)
    return (default if used is None else used) / default


def _on_grid(value: float | None, grid) -> float | None:
    """The grid value ``value`` stands for (within 1%), or None."""
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return next((point for point in grid if abs(value / point - 1.0) <= _TOLERANCE), None)


def _standard_runs(sweep: pd.DataFrame) -> pd.DataFrame:
    """One row per run of the profile's length with the default taps and p (the runs that compete)."""
    runs = sweep.drop_duplicates("run")
    default_length = [_number(row.iterations) in (None, _number(row.default_iterations))
                      for row in runs.itertuples()]
    default_taps = [not isinstance(taps, str) or taps in ("", "[]") for taps in runs["taps"]]
    default_p = [_number(p) in (None, 1.0) for p in runs["p"]]
    keep = [a and b and c for a, b, c in zip(default_length, default_taps, default_p)]
    return runs[keep]


def weight_candidates(sweep: pd.DataFrame, *, grid=RELATIVE_GRID, seeds=SELECTION_SEEDS) -> pd.DataFrame:
    """Per method and grid weight: the mean validation PSNR over ``seeds`` and whether it was chosen.

    Columns: method, label, relative_weight, seeds (how many of ``seeds`` finished), val_psnr, chosen,
    complete (every grid weight of the method has every seed).
    """
    runs = _standard_runs(sweep)
    runs = runs[runs["seed"].isin(seeds) & (runs["method"] != "none")].copy()
    runs["relative_weight"] = [_on_grid(relative_weight(row.method, weight=row.weight, alpha=row.alpha), grid)
                               for row in runs.itertuples()]
    runs = runs.dropna(subset=["relative_weight"])
    rows = []
    for (method, relative), group in runs.groupby(["method", "relative_weight"], sort=False):
        rows.append({"method": method, "label": group["label"].iloc[0], "relative_weight": relative,
                     "seeds": int(group["seed"].nunique()), "val_psnr": float(group["val_psnr"].mean())})
    table = pd.DataFrame(rows, columns=["method", "label", "relative_weight", "seeds", "val_psnr"])
    table["eligible"] = table["seeds"] == len(seeds)
    table["chosen"] = False
    table["complete"] = False
    for method, group in table.groupby("method", sort=False):
        eligible = group[group["eligible"]]
        if not eligible.empty:
            table.loc[eligible["val_psnr"].idxmax(), "chosen"] = True
        table.loc[group.index, "complete"] = len(eligible) == len(grid)
    return table.sort_values(["method", "relative_weight"], kind="stable").reset_index(drop=True)


def chosen_labels(candidates: pd.DataFrame) -> dict[str, str]:
    """Method name → the label of its validation-chosen configuration."""
    chosen = candidates[candidates["chosen"]]
    return dict(zip(chosen["method"], chosen["label"]))


def selection_markdown(candidates: pd.DataFrame) -> str:
    """The validation PSNR of every method at every grid weight, the chosen one in bold; a method whose
    grid is not complete yet is marked provisional."""
    grid = sorted(candidates["relative_weight"].unique())
    header = "| method | " + " | ".join(f"{weight:g}× default" for weight in grid) + " | chosen |"
    lines = [header, "|" + "---|" * (len(grid) + 2)]
    for method, group in candidates.groupby("method", sort=False):
        values = group.set_index("relative_weight")
        cells = []
        for weight in grid:
            if weight not in values.index:
                cells.append("–")
                continue
            row = values.loc[weight]
            text = f"{row['val_psnr']:.3f}" + ("" if row["eligible"] else f" ({row['seeds']} seed)")
            cells.append(f"**{text}**" if row["chosen"] else text)
        chosen = group[group["chosen"]]["label"]
        note = chosen.iloc[0] if not chosen.empty else "–"
        note += "" if group["complete"].iloc[0] else " (provisional: grid not complete)"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {note} |")
    return "Validation PSNR (dB, mean over seeds 0–1) per weight; bold: chosen.\n\n" + "\n".join(lines) + "\n"
