"""The ablation report from a hand-made sweep folder: labels, mean ± CI, gap closed, the generated verdict."""

import json

import numpy as np
import pandas as pd
import pytest

from fakd.analysis.ablation import (ablation_table, configuration_label, display_table, paired_table,
                                  read_per_image, read_sweep, summary_markdown, teacher_rows)
from fakd.errors import FakdError

IMAGES = ["baby", "bird", "butterfly", "head", "woman"]


def make_sweep(tmp_path, *, fakd_offset: float, seeds=(0, 1, 2)):
    """A sweep of none / fakd / fakd w=10 runs on Set5 with per-image PSNRs; the teacher at 31.0 dB."""
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "results.json").write_text(json.dumps({"rows": [
        {"dataset": "Set5", "scale": 4, "psnr": 31.0, "ssim": 0.88}]}))
    rng = np.random.default_rng(0)
    base_images = 30.0 + rng.normal(0, 1, len(IMAGES))
    rows = []
    for method, weight, offset in (("none", None, 0.0), ("fakd", None, fakd_offset), ("fakd", 10.0, 0.0)):
        for seed in seeds:
            run = f"method-{method}_w{weight}_seed-{seed}"
            folder = tmp_path / "sweep" / "runs" / run
            folder.mkdir(parents=True)
            psnr = base_images + offset + 0.01 * seed + rng.normal(0, 0.01, len(IMAGES))
            pd.DataFrame({"dataset": "Set5", "name": IMAGES, "psnr": psnr, "ssim": 0.8}).to_csv(
                folder / "per_image.csv", index=False)
            rows.append({"run": run, "run_dir": f"runs/{run}", "method": method, "weight": weight, "seed": seed,
                         "dataset": "Set5", "scale": 4, "psnr": psnr.mean(), "ssim": 0.8,
                         "teacher_run": str(teacher)})
    pd.DataFrame(rows).to_csv(tmp_path / "sweep" / "results.csv", index=False)
    return tmp_path / "sweep"


def test_configuration_labels():
    assert configuration_label("none") == "no KD"
    assert configuration_label("fakd", weight=1.0, p=1, taps="[]") == "FAKD"  # the defaults stay implicit
    assert configuration_label("fakd", weight=10.0) == "FAKD w=10"
    assert configuration_label("fakd", p=2.0) == "FAKD p=2"
    assert configuration_label("fakd", taps='["body.2", "body_tail"]') == "FAKD taps=body.2+body_tail"
    assert configuration_label("at", weight=float("nan")) == "AT"


def test_table_gain_gap_and_a_clear_yes(tmp_path):
    sweep = read_sweep(make_sweep(tmp_path, fakd_offset=0.5))
    assert set(sweep["label"]) == {"no KD", "FAKD", "FAKD w=10"}
    teacher = teacher_rows(sweep)
    assert teacher["psnr"].tolist() == [31.0]
    table = ablation_table(sweep, teacher).set_index("label")
    base = sweep[sweep["label"] == "no KD"]["psnr"].mean()
    fakd = sweep[sweep["label"] == "FAKD"]["psnr"]
    assert table.loc["FAKD", "psnr"] == pytest.approx(fakd.mean())
    assert table.loc["FAKD", "gain"] == pytest.approx(fakd.mean() - base)
    assert table.loc["FAKD", "gap_closed"] == pytest.approx((fakd.mean() - base) / (31.0 - base))
    assert table.loc["FAKD", "seeds"] == 3 and table.loc["FAKD", "psnr_ci"] > 0
    assert "±" in display_table(table.reset_index()).iloc[0]["PSNR (dB)"]

    differences, tests = paired_table(read_per_image(sweep))
    assert len(differences) == 2 * 3 * len(IMAGES)  # two configurations x seeds x images
    fakd_test = tests.set_index("label").loc["FAKD"]
    assert fakd_test["mean"] == pytest.approx(0.5, abs=0.02) and fakd_test["t_p"] < 1e-6
    summary = summary_markdown(ablation_table(sweep, teacher), tests)
    assert "Yes: FAKD beat no KD on every test set" in summary
    assert f"{table.loc['FAKD', 'gain']:+.3f} dB" in summary  # the number comes from the table
    assert f"{100 * table.loc['FAKD', 'gap_closed']:.0f}% of the teacher–student gap closed" in summary


def test_summary_says_no_when_fakd_is_worse_and_notes_a_single_seed(tmp_path):
    sweep = read_sweep(make_sweep(tmp_path, fakd_offset=-0.3, seeds=(0,)))
    table = ablation_table(sweep, teacher_rows(sweep))
    _, tests = paired_table(read_per_image(sweep))
    summary = summary_markdown(table, tests)
    assert summary.startswith("## Does FAKD beat the no KD baseline?")
    assert "No: FAKD was significantly worse" in summary
    assert "Only 1 seed" in summary


def test_summary_without_a_difference_does_not_claim_one(tmp_path):
    sweep = read_sweep(make_sweep(tmp_path, fakd_offset=0.0, seeds=(0, 1)))
    table = ablation_table(sweep, teacher_rows(sweep))
    _, tests = paired_table(read_per_image(sweep))
    assert "Not shown" in summary_markdown(table, tests)


def test_a_folder_without_results_is_an_error(tmp_path):
    with pytest.raises(FakdError, match="no results.csv"):
        read_sweep(tmp_path)
    (tmp_path / "results.csv").write_text("run,run_dir\n")
    with pytest.raises(FakdError, match="holds no student results"):
        read_sweep(tmp_path)
