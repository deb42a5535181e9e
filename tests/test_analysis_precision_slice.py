"""The bfloat16 accuracy slice on made-up per-image tables: pairing by method, weight, seed and image, the
mean difference and its interval against scipy, the seed spread, the verdict, and the CLI's errors."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fakd.analysis.precision_slice import main, precision_slice_table, read_slice_runs

IMAGES = [f"img{i}" for i in range(6)]
BASE = np.array([30.0, 31.0, 29.5, 28.0, 32.5, 27.0])


def _run(folder, name, *, method, seed, psnr, weight=None, **extra):
    run = folder / name
    run.mkdir(parents=True)
    parameters = {"profile": "cpu", "method": method, "seed": seed, **({"weight": weight} if weight else {}), **extra}
    (run / "fakd-done.json").write_text(json.dumps({"parameters": parameters}))
    pd.DataFrame({"dataset": "Set5", "name": IMAGES, "psnr": psnr, "ssim": 0.9}).to_csv(run / "per_image.csv", index=False)


@pytest.fixture
def folders(tmp_path):
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    for seed, shift in ((0, 0.0), (1, 0.05), (2, -0.03)):  # seed means: +0, +0.05, -0.03: spread 0.08
        _run(fp32, f"none-{seed}", method="none", seed=seed, psnr=BASE + shift)
        _run(fp32, f"fakd-{seed}", method="fakd", weight=100.0, seed=seed, psnr=BASE + 0.2 + shift)
    _run(fp32, "fakd-w1-0", method="fakd", seed=0, psnr=BASE + 5)  # another arm: never paired with w 100
    _run(fp32, "none-long-0", method="none", seed=0, iterations=12000, psnr=BASE + 9)  # not in the slice
    small = np.array([0.01, -0.02, 0.0, 0.015, -0.005, 0.01])
    for seed, shift in ((0, 0.0), (1, 0.05)):
        _run(bf16, f"none-{seed}", method="none", seed=seed, psnr=BASE + shift + small, profile="cpu-bf16")
        _run(bf16, f"fakd-{seed}", method="fakd", weight=100.0, seed=seed, psnr=BASE + 0.2 + shift - 0.3)
    return bf16, fp32


def test_pairs_by_arm_seed_and_image_against_an_independent_interval(folders):
    bf16, fp32 = folders
    fp32_table = read_slice_runs(fp32)
    assert len(fp32_table) == 7 * len(IMAGES)  # the 12000-iteration run is not part of the slice
    table = precision_slice_table(read_slice_runs(bf16), fp32_table).set_index("method")
    differences = np.concatenate([np.array([0.01, -0.02, 0.0, 0.015, -0.005, 0.01])] * 2)
    half_width = stats.t.ppf(0.975, df=11) * differences.std(ddof=1) / np.sqrt(12)
    none = table.loc["none"]
    assert none["pairs"] == 12 and none["seeds"] == [0, 1] and none["fp32_seeds"] == [0, 1, 2]
    assert none["difference"] == pytest.approx(differences.mean()) and none["ci"] == pytest.approx(half_width)
    assert none["seed_spread"] == pytest.approx(0.08) and none["within_spread"]
    fakd = table.loc["fakd"]
    assert fakd["weight"] == 100.0 and fakd["difference"] == pytest.approx(-0.3) and not fakd["within_spread"]
    assert fakd["fp32_psnr"] == pytest.approx(BASE.mean() + 0.2 + 0.025)


def test_the_cli_prints_the_table_and_refuses_a_missing_folder(folders, tmp_path, capsys):
    bf16, fp32 = folders
    assert main([str(bf16), str(fp32), "--json", str(tmp_path / "slice.json")]) == 0
    out = capsys.readouterr().out
    assert "fakd w 100" in out and "NOT within the seeds' spread" in out
    assert len(json.loads((tmp_path / "slice.json").read_text())) == 2
    assert main([str(tmp_path / "nowhere"), str(fp32)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder of runs" in err[0]
    assert main([str(fp32 / "none-0"), str(fp32)]) == 2
    assert "holds no finished run" in capsys.readouterr().err
