"""Result tables in the format SR papers use: rows = method, columns = data sets, cells "PSNR / SSIM"."""

import pandas as pd

# Column order of the papers; other data sets follow in the order they first appear.
PAPER_DATASET_ORDER = ["Set5", "Set14", "B100", "BSD100", "Urban100", "Manga109"]


def _dataset_order(names: list[str]) -> list[str]:
    known = [name for name in PAPER_DATASET_ORDER if name in names]
    return known + [name for name in dict.fromkeys(names) if name not in known]


def paper_table(rows: pd.DataFrame, *, psnr_decimals: int = 2, ssim_decimals: int = 4) -> pd.DataFrame:
    """Pivot rows (model, dataset, scale, psnr, ssim) into one "PSNR / SSIM" cell per model and data set.

    The index is (scale, model) in the order the models first appear; missing cells are "–".
    """
    missing = {"model", "dataset", "scale", "psnr", "ssim"} - set(rows.columns)
    if missing:
        raise ValueError(f"result rows lack the columns {sorted(missing)}")
    cells = rows.assign(
        cell=[f"{p:.{psnr_decimals}f} / {s:.{ssim_decimals}f}" for p, s in zip(rows["psnr"], rows["ssim"])]
    )
    table = cells.pivot_table(index=["scale", "model"], columns="dataset", values="cell", aggfunc="first", sort=False)
    table = table.reindex(columns=_dataset_order(list(rows["dataset"])))
    model_order = list(dict.fromkeys(rows["model"]))
    table = table.reindex(sorted(table.index, key=lambda key: (key[0], model_order.index(key[1]))))
    table.columns.name = None
    return table.fillna("–")


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown rendering (index levels become the first columns)."""
    flat = table.reset_index()
    header = "| " + " | ".join(str(column) for column in flat.columns) + " |"
    rule = "|" + "|".join("---" for _ in flat.columns) + "|"
    body = ["| " + " | ".join(str(value) for value in row) + " |" for row in flat.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def to_text(table: pd.DataFrame) -> str:
    """A plain-text rendering for the terminal."""
    return table.reset_index().to_string(index=False)
