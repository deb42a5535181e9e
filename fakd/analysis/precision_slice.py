"""Issue 37's accuracy answer: bfloat16-trained students against the float32 runs of the same arm, per image.

Each bfloat16 run (profile cpu-bf16, ``notebooks/grids/cpu_bf16.yaml``) is paired with the float32 run of the
same method, weight and seed (the archived cpu grid): per test image, PSNR(bf16) − PSNR(fp32). Per arm and
test set: the mean difference over all paired images and seeds with its 95% confidence interval, against the
**seed spread** — the largest difference between two float32 seeds' mean PSNRs of that arm on that set (every
archived seed). bfloat16 is *within the spread* when the whole interval lies inside ±spread: its effect on
PSNR is then smaller than what changing the seed does. A profile turns bfloat16 on only if every arm is.

    python -m fakd.analysis.precision_slice BF16_RUNS FP32_RUNS [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import pandas as pd

from fakd.analysis.stats import paired_test
from fakd.errors import FakdError

ARM = ("method", "weight")
KNOWN_PARAMETERS = {"profile", "data_root", "teacher_run_dir", "method", "weight", "seed"}


def read_slice_runs(folder: str | Path) -> pd.DataFrame:
    """Per-image PSNR of every finished run under ``folder`` (``fakd-done.json`` + ``per_image.csv``) that
    varies only method, weight and seed: columns method, weight, seed, dataset, name, psnr."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FakdError(f"{folder} is not a folder of runs")
    tables = []
    for marker in sorted(folder.glob("*/fakd-done.json")):
        parameters = json.loads(marker.read_text(encoding="utf-8"))["parameters"]
        per_image = marker.parent / "per_image.csv"
        if set(parameters) - KNOWN_PARAMETERS or not per_image.is_file():
            continue  # another setting (iterations, taps, init, alpha) or no evaluation: not in the slice
        table = pd.read_csv(per_image)[["dataset", "name", "psnr"]]
        tables.append(table.assign(method=parameters["method"], weight=float(parameters.get("weight", float("nan"))),
                                   seed=int(parameters["seed"])))
    if not tables:
        raise FakdError(f"{folder} holds no finished run with per_image.csv")
    return pd.concat(tables, ignore_index=True)[["method", "weight", "seed", "dataset", "name", "psnr"]]


def precision_slice_table(bf16: pd.DataFrame, fp32: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """One row per arm and test set present in ``bf16``: runs paired, mean difference ± CI, seed spread,
    verdict (tables as ``read_slice_runs`` returns them)."""
    keys = [*ARM, "seed", "dataset", "name"]
    left, right = (table.assign(weight=table["weight"].fillna(-1.0)) for table in (bf16, fp32))
    paired = left.merge(right, on=keys, suffixes=("_bf16", "_fp32"), how="inner")
    rows = []
    for (method, weight, dataset), group in paired.groupby([*ARM, "dataset"], sort=False):
        test = paired_test(group["psnr_bf16"] - group["psnr_fp32"], confidence=confidence)
        arm = right[(right["method"] == method) & (right["weight"] == weight) & (right["dataset"] == dataset)]
        seed_means = arm.groupby("seed")["psnr"].mean()
        spread = max((abs(a - b) for a, b in itertools.combinations(seed_means, 2)), default=float("nan"))
        bf16_seeds = sorted(group["seed"].unique())
        rows.append({"method": method, "weight": None if weight == -1.0 else weight, "dataset": dataset,
                     "seeds": bf16_seeds, "images": int(group["name"].nunique()), "pairs": test["n"],
                     "fp32_psnr": float(group["psnr_fp32"].mean()), "bf16_psnr": float(group["psnr_bf16"].mean()),
                     "difference": test["mean"], "ci": test["ci"], "t_p": test["t_p"],
                     "fp32_seeds": [int(seed) for seed in seed_means.index], "seed_spread": spread,
                     "within_spread": bool(abs(test["mean"]) + test["ci"] <= spread)})
    if not rows:
        raise FakdError("no bfloat16 run has a float32 run of the same method, weight and seed")
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    """The accuracy table as text, one line per arm and set."""
    lines = [f"{'arm':14s} {'set':6s} {'seeds':6s} {'fp32 dB':>8s} {'bf16 dB':>8s} {'bf16 - fp32 (95% CI)':>22s} "
             f"{'seed spread':>11s}  within"]
    for row in table.to_dict("records"):
        arm = row["method"] if row["weight"] is None else f"{row['method']} w {row['weight']:g}"
        lines.append(f"{arm:14s} {row['dataset']:6s} {','.join(map(str, row['seeds'])):6s} {row['fp32_psnr']:8.3f} "
                     f"{row['bf16_psnr']:8.3f} {row['difference']:+10.4f} ± {row['ci']:.4f}   {row['seed_spread']:11.4f}"
                     f"  {'yes' if row['within_spread'] else 'NO'}")
    verdict = "every arm within the seeds' spread" if table["within_spread"].all() else \
        "NOT within the seeds' spread everywhere: keep float32 as the default"
    return "\n".join(lines + [f"answer: {verdict}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakd.analysis.precision_slice", description=__doc__.splitlines()[0])
    parser.add_argument("bf16_runs", help="folder of the bfloat16 runs (the cpu_bf16 sweep's output)")
    parser.add_argument("fp32_runs", help="folder of the float32 runs (e.g. reports/cpu-runs/students/runs)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON records here")
    args = parser.parse_args(argv)
    try:
        table = precision_slice_table(read_slice_runs(args.bf16_runs), read_slice_runs(args.fp32_runs))
    except FakdError as error:
        print(f"precision_slice: error: {error}", file=sys.stderr)
        return 2
    print(format_table(table))
    if args.json:
        args.json.write_text(table.to_json(orient="records", indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
