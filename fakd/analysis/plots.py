"""Charts of the study: training curves, loss terms, per-image differences, ablation plots, cost.

Like ``fakd.analysis.figures``: each function returns a titled, labelled ``Figure``; save it with
``fakd.analysis.figures.save_figure``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fakd.analysis.figures import plt
from fakd.errors import FakdError

LOSS_COLUMNS_SKIPPED = ("iteration", "lr", "val_psnr", "elapsed_seconds")
SHARE_PREFIX = "share_"
SHARE_LABELS = {"l1_hr": "(1 − α)·L1 to HR", "l1_teacher": "α·L1 to teacher SR"}


def _seaborn():
    import seaborn  # imported when used; its style is applied per figure, never globally

    return seaborn


def training_curves_figure(metrics: pd.DataFrame, *, title: str) -> plt.Figure:
    """Loss terms vs iteration (log scale) and validation PSNR vs iteration, from an engine metrics log."""
    if metrics.empty or "iteration" not in metrics.columns:
        raise FakdError("the metrics log is empty: nothing to plot")
    figure, (losses, psnr) = plt.subplots(1, 2, figsize=(12, 4.2))
    terms = [column for column in metrics.columns
             if column not in LOSS_COLUMNS_SKIPPED and not column.startswith(SHARE_PREFIX)]
    for term in terms:
        logged = metrics[["iteration", term]].dropna()
        if not logged.empty:
            losses.plot(logged["iteration"], logged[term], marker="." if len(logged) < 30 else None,
                        label=term, linewidth=2.0 if term == "loss" else 1.2)
    if any((metrics[term].dropna() > 0).all() for term in terms if term in metrics):
        losses.set_yscale("log")
    losses.set_xlabel("iteration")
    losses.set_ylabel("loss (per term; 'loss' = weighted total)")
    losses.set_title("training loss")
    losses.legend(fontsize=8)
    validation = metrics[["iteration", "val_psnr"]].dropna() if "val_psnr" in metrics else pd.DataFrame()
    if not validation.empty:
        psnr.plot(validation["iteration"], validation["val_psnr"], marker="o", color="tab:green")
        best = validation.loc[validation["val_psnr"].idxmax()]
        psnr.annotate(f"best {best['val_psnr']:.2f} dB", (best["iteration"], best["val_psnr"]),
                      textcoords="offset points", xytext=(-40, -16), fontsize=8)
    psnr.set_xlabel("iteration")
    psnr.set_ylabel("validation PSNR on Y (dB)")
    psnr.set_title("validation PSNR (held-out training images)")
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    return figure


def share_columns(metrics: pd.DataFrame) -> list[str]:
    """The ``share_<term>`` columns of a metrics log (each term's fraction of the weighted total)."""
    return [column for column in metrics.columns if column.startswith(SHARE_PREFIX)]


def _share_label(column: str) -> str:
    term = column[len(SHARE_PREFIX):]
    return SHARE_LABELS.get(term, f"w·{term}")


def loss_shares_figure(panels: dict[str, pd.DataFrame], *, title: str) -> plt.Figure:
    """Stacked shares of the weighted loss over training, one panel per run or configuration.

    ``panels``: name → metrics with ``iteration`` and ``share_<term>`` columns (e.g. averaged over
    seeds). This is the picture of what a weight does: how much of the objective each term is.
    """
    panels = {name: frame for name, frame in panels.items() if share_columns(frame)}
    if not panels:
        raise FakdError("no share_<term> columns in the metrics: nothing to plot")
    columns = min(len(panels), 4)
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns + 1.2, 2.9 * rows + 0.6),
                                squeeze=False, sharey=True)
    palette = {}
    for axis, (name, frame) in zip(axes.flat, panels.items()):
        shares = frame[["iteration", *share_columns(frame)]].dropna().sort_values("iteration")
        labels = [_share_label(column) for column in share_columns(frame)]
        for label in labels:
            palette.setdefault(label, plt.cm.tab10(len(palette) % 10))
        axis.stackplot(shares["iteration"], *(shares[column] for column in share_columns(frame)),
                       labels=labels, colors=[palette[label] for label in labels], alpha=0.85)
        axis.set_ylim(0, 1)
        axis.set_xlim(shares["iteration"].min(), shares["iteration"].max())
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("iteration")
    for axis in axes[:, 0]:
        axis.set_ylabel("share of the weighted loss")
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=color, alpha=0.85) for color in palette.values()]
    figure.legend(handles, list(palette), loc="lower center", ncol=min(len(palette), 4), fontsize=9,
                  frameon=False)
    figure.suptitle(title, fontsize=12)
    figure.tight_layout(rect=(0, 0.07 if rows == 1 else 0.04, 1, 1))
    return figure


def loss_terms_figure(terms: dict[str, float], *, title: str) -> plt.Figure:
    """Bar chart of the weighted loss terms that add up to the training loss."""
    figure, axis = plt.subplots(figsize=(7, 3.8))
    names, values = list(terms), [float(value) for value in terms.values()]
    bars = axis.bar(names, values, color=plt.cm.tab10(np.arange(len(names))))
    axis.bar_label(bars, labels=[f"{value:.4f}" for value in values], fontsize=8)
    axis.set_ylabel("weighted contribution to the loss")
    axis.set_xlabel("term")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def per_image_differences_figure(differences: pd.DataFrame, *, value: str = "difference", group: str = "label",
                                 title: str, reference: str) -> plt.Figure:
    """Per-image PSNR differences to ``reference`` by model/configuration and data set (strip + box)."""
    if differences.empty:
        raise FakdError("no per-image differences to plot")
    seaborn = _seaborn()
    height = max(3.5, 0.55 * differences[group].nunique() + 1.5)
    with seaborn.axes_style("whitegrid"):
        figure, axis = plt.subplots(figsize=(9, height))
    seaborn.boxplot(data=differences, x=value, y=group, hue="dataset", ax=axis, fliersize=0,
                    boxprops={"alpha": 0.35})
    seaborn.stripplot(data=differences, x=value, y=group, hue="dataset", ax=axis, dodge=True, size=4,
                      legend=False)
    axis.axvline(0.0, color="black", linewidth=1)
    axis.set_xlabel(f"PSNR − PSNR of {reference} on the same image (dB)")
    axis.set_ylabel("")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def psnr_vs_weight_figure(sweep: pd.DataFrame, *, method_label: str = "FAKD", title: str) -> plt.Figure | None:
    """PSNR vs the feature-term weight (log x) for the default-tap runs of one method, per data set;
    None when the sweep has fewer than two weights."""
    runs = sweep[sweep["label"].str.match(rf"^{method_label}( w=[0-9.e+-]+)?$")]
    runs = runs[runs["weight_used"].notna()]
    if runs["weight_used"].nunique() < 2:
        return None
    seaborn = _seaborn()
    with seaborn.axes_style("whitegrid"):
        figure, axis = plt.subplots(figsize=(7, 4.2))
    seaborn.lineplot(data=runs, x="weight_used", y="psnr", hue="dataset", marker="o", errorbar=("ci", 95), ax=axis)
    axis.set_xscale("log")
    axis.set_xlabel(f"{method_label} loss weight w (log scale)")
    axis.set_ylabel("test PSNR on Y (dB), mean ± 95% CI over seeds")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def gain_per_dataset_figure(table: pd.DataFrame, *, baseline: str, title: str) -> plt.Figure:
    """Mean PSNR gain over the baseline per configuration, one panel per data set (configurations as
    rows, so the figure stays readable at page width however many there are), with the seeds' 95% CI."""
    shown = table[table["label"] != baseline]
    if shown.empty:
        raise FakdError("only the baseline was run: no gain to plot")
    labels, datasets = list(dict.fromkeys(shown["label"])), list(dict.fromkeys(shown["dataset"]))
    figure, axes = plt.subplots(1, len(datasets), figsize=(2.6 * len(datasets) + 2.4, 0.36 * len(labels) + 1.7),
                                sharex=True, sharey=True, squeeze=False)  # one dB scale: panels compare
    rows = np.arange(len(labels))
    for index, (axis, dataset) in enumerate(zip(axes[0], datasets)):
        part = shown[shown["dataset"] == dataset].set_index("label").reindex(labels)
        errors = [0 if math.isnan(value) else value for value in part["psnr_ci"]]
        gains = part["gain"].to_numpy(dtype=float)
        colours = ["tab:green" if gain > 0 else "tab:red" for gain in np.nan_to_num(gains)]
        axis.barh(rows, gains, xerr=errors, capsize=3, color=colours, alpha=0.8, height=0.65)
        axis.axvline(0, color="black", linewidth=1)
        axis.set_title(dataset, fontsize=11)
        axis.set_xlabel("gain (dB)")
        axis.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(rows, labels)
    axes[0, 0].invert_yaxis()  # the first configuration on top
    figure.suptitle(f"{title}\n(PSNR − PSNR of {baseline}; error bars: 95% CI over seeds)", fontsize=11)
    figure.tight_layout()
    return figure


def _text_colour_on(rgba) -> str:
    """Black on light colours (e.g. viridis' yellow), white on dark ones: readable either way."""
    red, green, blue = rgba[:3]
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


def agreement_figure(agreement: pd.DataFrame, *, value: str = "correlation", title: str) -> plt.Figure:
    """Heat map of the affinity agreement (models × taps) with the numbers written in."""
    pivot = agreement.pivot_table(index="model", columns="tap", values=value, sort=False)
    figure, axis = plt.subplots(figsize=(1.8 * pivot.shape[1] + 3, 0.6 * pivot.shape[0] + 1.8))
    picture = axis.imshow(pivot.to_numpy(), cmap="viridis", aspect="auto",
                          vmin=min(0.0, float(np.nanmin(pivot.to_numpy()))), vmax=1.0)
    for (row, column), number in np.ndenumerate(pivot.to_numpy()):
        if not math.isnan(number):
            axis.text(column, row, f"{number:.3f}", ha="center", va="center", fontsize=9,
                      color=_text_colour_on(picture.cmap(picture.norm(number))))
    axis.set_xticks(range(pivot.shape[1]), pivot.columns)
    axis.set_yticks(range(pivot.shape[0]), pivot.index)
    axis.set_xlabel("tap")
    axis.set_ylabel("model")
    axis.set_title(title)
    figure.colorbar(picture, ax=axis, label=f"affinity {value} with the teacher")
    figure.tight_layout()
    return figure


def cost_figure(cost: pd.DataFrame, *, title: str) -> plt.Figure:
    """Params, Multi-Adds and latency of each model as three bar charts."""
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    measures = [("params", 1e6, "parameters (millions)"), ("multi_adds", 1e9, "Multi-Adds for 1280×720 (G)"),
                ("latency_s", 1e-3, "median latency (ms)")]
    for axis, (column, unit, label) in zip(axes, measures):
        values = cost[column].astype(float) / unit
        names = [str(name).replace(" (", "\n(") for name in cost["model"]]  # "teacher\n(preset)"
        bars = axis.bar(names, values, color=["tab:blue", "tab:orange", "tab:green"][: len(cost)])
        axis.bar_label(bars, labels=[f"{value:.3g}" for value in values], fontsize=9, padding=2)
        axis.margins(y=0.15)  # room above the tallest bar for its label
        axis.set_ylabel(label)
        axis.set_xlabel("model")
    latency_size = cost["latency_lr_size"].iloc[0]
    figure.suptitle(f"{title} (latency: {latency_size}² LR input)", fontsize=12)
    figure.tight_layout()
    return figure


def weight_selection_figure(candidates: pd.DataFrame, *, title: str) -> plt.Figure:
    """Validation PSNR (mean over the selection seeds) vs weight / the method's default, one line per
    method, the chosen weight ringed: how each method was tuned."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for method, group in candidates.groupby("method", sort=False):
        line, = axis.plot(group["relative_weight"], group["val_psnr"], marker="o", label=method)
        chosen = group[group["chosen"]]
        axis.scatter(chosen["relative_weight"], chosen["val_psnr"], s=160, facecolors="none",
                     edgecolors=line.get_color(), linewidths=1.5)
    axis.set_xscale("log")
    axis.set_xlabel("weight / the method's default (output KD: α / (1 − α))")
    axis.set_ylabel("validation PSNR on Y (dB), mean over seeds")
    axis.legend(title="method (ring: chosen)", fontsize=8)
    axis.set_title(title)
    figure.tight_layout()
    return figure
