"""fakd.analysis.stats against textbook numbers: t-table intervals, exact Wilcoxon, the paper's gap share."""

import math

import pandas as pd
import pytest

from fakd.analysis.stats import (format_mean_ci, gap_closed, mean_ci, paired_differences, paired_test,
                               summarize_over_seeds)
from fakd.errors import FakdError


def test_mean_ci_matches_the_t_table():
    # 1, 2, 3, 4: mean 2.5, s = 1.2910, se = 0.6455; t(0.975, df=3) = 3.182 (printed t tables)
    mean, half_width, count = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert (mean, count) == (2.5, 4)
    assert half_width == pytest.approx(3.182 * 1.2909944 / 2, abs=2e-3)
    # three seeds, 90%: t(0.95, df=2) = 2.920
    _, half_width, _ = mean_ci([10.0, 12.0, 14.0], confidence=0.90)
    assert half_width == pytest.approx(2.920 * 2.0 / math.sqrt(3), abs=2e-3)


def test_mean_ci_without_an_interval_and_bad_confidence():
    mean, half_width, count = mean_ci([32.1, float("nan")])
    assert (mean, count) == (32.1, 1) and math.isnan(half_width)
    assert mean_ci([])[2] == 0
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=95)
    assert format_mean_ci(32.4612, 0.0512) == "32.46 ± 0.05"
    assert format_mean_ci(32.4612, float("nan"), decimals=3) == "32.461"


def test_paired_test_known_values():
    # differences 1..5: t = 3 / (1.5811 / sqrt 5) = 4.243, df 4 → two-sided p = 0.01324;
    # Wilcoxon exact: all five ranks positive → p = 2 / 2^5 = 0.0625
    result = paired_test([1.0, 2.0, 3.0, 4.0, 5.0])
    assert result["t_p"] == pytest.approx(0.01324, abs=1e-4)
    assert result["wilcoxon_p"] == pytest.approx(0.0625)
    assert (result["mean"], result["n"], result["wins"]) == (3.0, 5, 5)
    zeros = paired_test([0.0, 0.0, 0.0])
    assert math.isnan(zeros["t_p"]) and math.isnan(zeros["wilcoxon_p"])


def test_gap_closed_reproduces_the_papers_share():
    # FAKD x4 Set5: teacher 32.638, student 32.321, student + FAKD 32.462 → 44%
    assert gap_closed(32.462, baseline=32.321, teacher=32.638) == pytest.approx(0.4448, abs=1e-4)
    assert math.isnan(gap_closed(30.0, baseline=31.0, teacher=30.5))  # teacher not better: undefined


def test_paired_differences_match_image_seed_and_set():
    per_image = pd.DataFrame({
        "label": ["no KD", "no KD", "FAKD", "FAKD", "FAKD"],
        "seed": [0, 0, 0, 0, 1],
        "dataset": ["Set5"] * 5,
        "name": ["baby", "bird", "bird", "baby", "baby"],
        "psnr": [30.0, 28.0, 28.5, 30.25, 99.0],
    })
    differences = paired_differences(per_image, group="label", baseline="no KD")
    assert sorted(differences["difference"]) == [0.25, 0.5]  # seed 1 has no baseline: dropped
    with pytest.raises(FakdError, match="baseline 'kd'"):
        paired_differences(per_image, group="label", baseline="kd")


def test_summarize_over_seeds_groups_in_order():
    table = pd.DataFrame({"label": ["b", "a", "b", "a"], "dataset": ["S"] * 4, "psnr": [1.0, 3.0, 2.0, 5.0]})
    summary = summarize_over_seeds(table, by=["label", "dataset"], value="psnr")
    assert summary["label"].tolist() == ["b", "a"]
    assert summary["mean"].tolist() == [1.5, 4.0] and summary["n"].tolist() == [2, 2]
    with pytest.raises(ValueError, match="ssim"):
        summarize_over_seeds(table, by=["label"], value="ssim")
