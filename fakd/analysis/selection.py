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
marked ``complete=False``; until its base grid has every seed, the provisional pick compares like with
like: the mean over the seeds that every weight run so far has.

A best weight at the edge of the grid is not a choice, only a bound: the method then also gets the next
decade beyond that edge (``next_weight``: 1000×, or 0.01× at the lower edge), and runs of any whole
decade compete. The choice is final (``complete``) when the whole base grid has every seed and the best
weight has a weight on each side of it (or sits at 0.01×/1000×, where the search stops).
"""

from __future__ import annotations

import math

import pandas as pd

from fakd.analysis.ablation import DEFAULT_ALPHA, default_weight
from fakd.errors import FakdError

RELATIVE_GRID = (0.1, 1.0, 10.0, 100.0)  # every method's base grid (× its default)
DECADES = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)  # where an edge extends to: one decade past the base grid
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
    """Per method and weight (the base ``grid`` and any run decade in ``DECADES``): the mean validation PSNR
    over ``seeds`` and whether it was chosen.

    Columns: method, label, relative_weight, seeds (how many of ``seeds`` finished), val_psnr, chosen,
    complete (the base grid has every seed and the best is not at an edge), next_weight (the decade to run
    because the best is at an edge; NaN when none).
    """
    runs = _standard_runs(sweep)
    runs = runs[runs["seed"].isin(seeds) & (runs["method"] != "none")].copy()
    decades = sorted(set(grid) | set(DECADES))
    runs["relative_weight"] = [_on_grid(relative_weight(row.method, weight=row.weight, alpha=row.alpha), decades)
                               for row in runs.itertuples()]
    runs = runs.dropna(subset=["relative_weight"])
    per_seed = runs.pivot_table(index=["method", "relative_weight"], columns="seed", values="val_psnr")
    table = _per_weight(runs)
    table["eligible"] = table["seeds"] == len(seeds)
    table["chosen"] = False
    table["complete"] = False
    table["next_weight"] = math.nan
    for method, group in table.groupby("method", sort=False):
        eligible = group[group["eligible"]]
        base_done = set(grid) <= set(eligible["relative_weight"])
        if base_done:
            best = eligible["val_psnr"].idxmax()
        else:
            weight = _provisional_pick(per_seed.loc[method])
            best = group.index[group["relative_weight"] == weight][0]
        table.loc[best, "chosen"] = True
        beyond = _beyond_edge(float(table.loc[best, "relative_weight"]), run=set(eligible["relative_weight"])) \
            if base_done else None
        table.loc[group.index, "next_weight"] = math.nan if beyond is None else beyond
        table.loc[group.index, "complete"] = base_done and beyond is None
    return table.sort_values(["method", "relative_weight"], kind="stable").reset_index(drop=True)


def fixed_choices(sweep: pd.DataFrame, *, chosen_at: str) -> pd.DataFrame:
    """The choices of a sweep that runs weights chosen elsewhere (``chosen_at``, e.g. "×4"): each method's one
    standard weight is chosen; FAKD may also have w = 1, the paper's own row, which is shown but not chosen.

    The columns of ``weight_candidates`` (val_psnr: mean over every seed here, for reference only; complete
    True) plus ``chosen_at``. A method with several weights is an error: this sweep would be tuning it.
    """
    runs = _standard_runs(sweep)
    runs = runs[runs["method"] != "none"].copy()
    weights = [relative_weight(row.method, weight=row.weight, alpha=row.alpha) for row in runs.itertuples()]
    runs["relative_weight"] = [_on_grid(weight, DECADES) or weight for weight in weights]
    table = _per_weight(runs)
    paper_row = (table["method"] == "fakd") & (table["relative_weight"] == 1.0) & ((table["method"] == "fakd").sum() > 1)
    table["chosen"] = ~paper_row
    counts = table[table["chosen"]]["method"].value_counts()
    several = sorted(counts[counts > 1].index)
    if several:
        raise FakdError(f"weights chosen at {chosen_at}: the sweep runs several weights of {', '.join(several)}; "
                        "it may run one weight per method (FAKD: one besides w = 1)")
    table["eligible"] = True
    table["complete"] = True
    table["next_weight"] = math.nan
    table["chosen_at"] = chosen_at
    return table.sort_values(["method", "relative_weight"], kind="stable").reset_index(drop=True)


def _per_weight(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per method and relative weight: its label, how many seeds ran, the mean validation PSNR."""
    return (runs.groupby(["method", "relative_weight"], sort=False)
            .agg(label=("label", "first"), seeds=("seed", "nunique"), val_psnr=("val_psnr", "mean"))
            .reset_index()[["method", "label", "relative_weight", "seeds", "val_psnr"]])


def _provisional_pick(per_seed: pd.DataFrame) -> float:
    """The best weight (index) of a method whose base grid is not done, from its validation PSNR per weight
    and seed (columns): like with like, the mean over the seeds every weight has (else over what each has)."""
    shared = per_seed.dropna(axis="columns")
    return (shared if not shared.empty else per_seed).mean(axis="columns").idxmax()


def _beyond_edge(best: float, *, run: set[float]) -> float | None:
    """The decade past ``best`` when no finished weight lies beyond it on that side (None: it is bracketed,
    or the search reached the last decade)."""
    if not any(weight > best for weight in run) and best < DECADES[-1]:
        return best * 10.0
    if not any(weight < best for weight in run) and best > DECADES[0]:
        return best / 10.0
    return None


def chosen_labels(candidates: pd.DataFrame) -> dict[str, str]:
    """Method name → the label of its validation-chosen configuration."""
    chosen = candidates[candidates["chosen"]]
    return dict(zip(chosen["method"], chosen["label"]))


def selection_markdown(candidates: pd.DataFrame) -> str:
    """The validation PSNR of every method at every grid weight, the chosen one in bold; a method whose
    grid is not complete yet is marked provisional."""
    if "chosen_at" in candidates:
        return _fixed_markdown(candidates)
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
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {_choice_note(group)} |")
    return ("Validation PSNR (dB, mean over seeds 0–1) per weight; bold: chosen. A best weight at the grid's edge "
            "gets the next decade too.\n\n" + "\n".join(lines) + "\n")


def _choice_note(group: pd.DataFrame) -> str:
    """The chosen label, with why it is provisional when it is."""
    chosen = group[group["chosen"]]["label"]
    note = chosen.iloc[0] if not chosen.empty else "–"
    if group["complete"].iloc[0]:
        return note
    beyond = group["next_weight"].iloc[0]
    if pd.notna(beyond):
        return note + f" (provisional: best at the grid's edge; {beyond:g}× default to run)"
    return note + " (provisional: grid not complete)"


def _fixed_markdown(candidates: pd.DataFrame) -> str:
    """The weights a sweep ran as chosen elsewhere, with this sweep's validation PSNR for reference."""
    chosen_at = candidates["chosen_at"].iloc[0]
    lines = ["| method | weight / default | seeds | validation PSNR here | |", "|---|---|---|---|---|"]
    for row in candidates.itertuples():
        note = f"chosen on the {chosen_at} validation split" if row.chosen else "the paper's setting"
        lines.append(f"| {row.label} | {row.relative_weight:g}× | {row.seeds} | {row.val_psnr:.3f} | {note} |")
    return (f"Weights chosen on the {chosen_at} validation split, not tuned on this sweep; the validation PSNR "
            "here (mean over seeds) is for reference only.\n\n" + "\n".join(lines) + "\n")
