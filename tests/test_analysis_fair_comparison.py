"""The fair comparison from a hand-made sweep: weights chosen on validation (never on the test sets), the
paper-format table with published shares, paired tests against tuned output KD, and the convergence
verdict — each checked against numbers computed here independently."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fakd.analysis.ablation import ablation_table, read_per_image, read_sweep
from fakd.analysis.convergence import (convergence_figure, convergence_table, convergence_verdict, gain_change,
                                       gap_closed_curves, long_runs, teacher_validation_psnr, validation_curves)
from fakd.analysis.fair_comparison import (PUBLISHED_FAKD_SHARES, comparison_rows, comparison_table,
                                           comparison_verdict, paired_against, strongest_baseline)
from fakd.analysis.selection import (chosen_labels, fixed_choices, relative_weight, selection_markdown,
                                     weight_candidates)
from fakd.errors import FakdError
from sweep_support import TEACHER_PSNR, make_fair_sweep, make_fitnet_sweep, make_fixed_sweep, make_long_sweep


def test_relative_weights_put_every_method_on_one_grid():
    assert relative_weight("kd") == pytest.approx(1.0)
    assert relative_weight("kd", alpha=0.9091) == pytest.approx(10.0, rel=1e-3)
    assert relative_weight("kd", alpha=0.0909) == pytest.approx(0.1, rel=1e-2)
    assert relative_weight("at", weight=1e5) == pytest.approx(100.0)  # AT's default is 1000
    assert relative_weight("fakd") == 1.0 and relative_weight("none") is None


def test_weights_are_chosen_on_validation_not_on_the_test_sets(tmp_path):
    candidates = weight_candidates(read_sweep(make_fair_sweep(tmp_path)))
    chosen = chosen_labels(candidates)
    assert chosen == {"kd": "output KD α=0.909", "fitnet": "FitNet w=10", "fakd": "FAKD w=100"}
    fitnet = candidates[candidates["method"] == "fitnet"].set_index("relative_weight")
    assert fitnet["val_psnr"].to_dict() == pytest.approx({0.1: 27.0105, 1.0: 27.0505, 10.0: 27.3005, 100.0: 27.1505})
    assert fitnet["complete"].all() and not candidates.set_index("method").loc["fakd", "complete"].any()
    text = selection_markdown(candidates)
    fitnet_line = next(line for line in text.splitlines() if line.startswith("| fitnet |"))
    assert fitnet_line.count("**") == 2 and "**27.300**" in fitnet_line and fitnet_line.endswith("| FitNet w=10 |")
    assert "FAKD w=100 (provisional: grid not complete)" in text


def test_a_best_weight_at_the_grids_edge_is_provisional_until_the_next_decade_has_run(tmp_path):
    rising = {0.1: 27.0, 1.0: 27.1, 10.0: 27.2, 100.0: 27.3}
    one_seed = weight_candidates(make_fitnet_sweep(tmp_path / "seed0", rising).query("seed == 0"))
    assert chosen_labels(one_seed) == {"fitnet": "FitNet w=100"} and not one_seed["complete"].any()
    assert one_seed["next_weight"].isna().all() and "(provisional: grid not complete)" in selection_markdown(one_seed)
    # seed 1 of 100x still running, and seed 1 of the others is high: the pick compares seed 0 with seed 0
    partial = make_fitnet_sweep(tmp_path / "partial", rising)
    partial.loc[(partial["seed"] == 1) & (partial["weight"] != 100.0), "val_psnr"] += 1.0
    partial = partial[~((partial["seed"] == 1) & (partial["weight"] == 100.0))]
    candidates = weight_candidates(partial)
    assert chosen_labels(candidates) == {"fitnet": "FitNet w=100"} and not candidates["complete"].any()
    candidates = weight_candidates(make_fitnet_sweep(tmp_path / "edge", rising))
    assert chosen_labels(candidates) == {"fitnet": "FitNet w=100"} and not candidates["complete"].any()
    assert candidates["next_weight"].tolist() == [1000.0] * 4
    assert "FitNet w=100 (provisional: best at the grid's edge; 1000× default to run)" in selection_markdown(candidates)
    # the next decade ran and is worse: 100 is bracketed, the choice is final
    candidates = weight_candidates(make_fitnet_sweep(tmp_path / "bracketed", {**rising, 1000.0: 27.25}))
    assert chosen_labels(candidates) == {"fitnet": "FitNet w=100"} and candidates["complete"].all()
    assert candidates["next_weight"].isna().all() and "provisional" not in selection_markdown(candidates)
    # better still at 1000x: chosen, and the search stops there (a 10^4 span around the default)
    candidates = weight_candidates(make_fitnet_sweep(tmp_path / "last", {**rising, 1000.0: 27.4}))
    assert chosen_labels(candidates) == {"fitnet": "FitNet w=1000"} and candidates["complete"].all()
    # the lower edge extends downwards; a weight off the decades (w 2550-like) never competes
    falling = {0.1: 27.4, 1.0: 27.3, 10.0: 27.2, 100.0: 27.1, 25.5: 28.0}
    candidates = weight_candidates(make_fitnet_sweep(tmp_path / "low", falling))
    assert chosen_labels(candidates) == {"fitnet": "FitNet w=0.1"} and candidates["next_weight"].iloc[0] == 0.01
    assert 25.5 not in set(candidates["relative_weight"])


def test_paper_table_gap_shares_and_verdict(tmp_path):
    sweep = read_sweep(make_fair_sweep(tmp_path))
    teacher = pd.DataFrame([{"dataset": "Set5", "psnr": TEACHER_PSNR, "ssim": 0.88}])
    table = ablation_table(sweep, teacher)
    rows = comparison_rows(weight_candidates(sweep))
    assert [label for _, label, _ in rows] == ["no KD", "output KD α=0.909", "FitNet w=10", "FAKD", "FAKD w=100"]
    shown = comparison_table(table, rows, teacher=teacher, scale=4)
    psnr = sweep.groupby("label")["psnr"].mean()
    expected = (psnr["FAKD w=100"] - psnr["no KD"]) / (TEACHER_PSNR - psnr["no KD"])
    assert shown.loc["FAKD w=100 (provisional choice)", "gap Set5"] == (  # FAKD's grid lacks 0.1x and 10x
        f"{100 * expected:.0f}% (paper {100 * PUBLISHED_FAKD_SHARES[4]['Set5']:.0f}%)")
    assert "paper" not in shown.loc["FitNet w=10 (chosen)", "gap Set5"]
    assert shown.loc["teacher", "Set5"] == "31.00 / 0.8800"
    tests = paired_against(read_per_image(sweep), reference="output KD α=0.909", labels=["FitNet w=10", "FAKD w=100"])
    per_image = read_per_image(sweep)
    mine = per_image[per_image["label"] == "FAKD w=100"].sort_values(["seed", "name"])["psnr"].to_numpy()
    ref = per_image[per_image["label"] == "output KD α=0.909"].sort_values(["seed", "name"])["psnr"].to_numpy()
    row = tests.set_index("label").loc["FAKD w=100"]
    assert row["mean"] == pytest.approx(np.mean(mine - ref)) and row["wins"] == 10
    assert row["t_p"] == pytest.approx(stats.ttest_rel(mine, ref).pvalue)
    # output KD (offset 0.2) beats FitNet w=10 (0.1) and no KD on test: the table's strongest baseline
    assert strongest_baseline(table, rows) == "output KD α=0.909"
    verdict = comparison_verdict(table, tests, rows, scale=4, reference="output KD α=0.909")
    assert "**FAKD w=100** has the highest PSNR of all students on every test set" in verdict
    assert "The strongest baseline of this table (highest PSNR averaged over the test sets) is **output KD α=0.909**" in verdict
    assert f"vs output KD α=0.909 {np.mean(mine - ref):+.3f} dB per image, ahead on 10 of 10" in verdict


def test_weights_chosen_at_another_scale_are_named_so_and_not_re_tuned(tmp_path):
    # FAKD w 1 (the paper's row) is better on this sweep's validation than w 100: it must still not be chosen
    arms = [("none", None, None, 0.0, 27.0), ("kd", None, 0.9091, 0.1, 27.1), ("fitnet", 100.0, None, 0.2, 27.2),
            ("fakd", None, None, 0.3, 27.9), ("fakd", 100.0, None, 0.4, 27.4)]
    candidates = fixed_choices(make_fixed_sweep(tmp_path, arms), chosen_at="×4")
    assert chosen_labels(candidates) == {"kd": "output KD α=0.909", "fitnet": "FitNet w=100", "fakd": "FAKD w=100"}
    assert candidates.set_index("label").loc["FAKD w=100", "val_psnr"] == pytest.approx(27.41)  # mean of 3 seeds
    assert sorted(candidates["relative_weight"]) == [1.0, 10.0, 100.0, 100.0]  # alpha 0.9091 reads as 10x
    rows = comparison_rows(candidates)
    assert [name for name, _, _ in rows] == ["student (no KD)", "output KD α=0.909 (chosen at ×4)",
                                             "FitNet w=100 (chosen at ×4)", "FAKD w=1 (as run for the paper)",
                                             "FAKD w=100 (chosen at ×4)"]
    shown = selection_markdown(candidates)
    assert "chosen on the ×4 validation split, not tuned on this sweep" in shown
    assert "| FAKD | 1× | 3 | 27.910 | the paper's setting |" in shown


def test_a_sweep_that_tunes_cannot_claim_its_weights_were_chosen_elsewhere(tmp_path):
    arms = [("none", None, None, 0.0, 27.0), ("fitnet", 10.0, None, 0.2, 27.2), ("fitnet", 100.0, None, 0.2, 27.3)]
    with pytest.raises(FakdError, match="several weights of fitnet"):
        fixed_choices(make_fixed_sweep(tmp_path, arms), chosen_at="×4")


def test_convergence_curves_gap_and_trend(tmp_path):
    sweep = make_long_sweep(tmp_path, long_gain=0.1)
    runs = long_runs(sweep)
    assert sorted(set(runs["label"])) == ["FAKD w=100, 12000 it.", "no KD, 12000 it."]
    assert set(runs["short_label"]) == {"FAKD w=100", "no KD"}
    curves = validation_curves(runs)
    fakd = curves[curves["label"] == "FAKD w=100, 12000 it."].set_index("iteration")["val_psnr"]
    assert fakd[12000] == pytest.approx(27.905) and fakd[3000] == pytest.approx(27.905 - 0.75)
    teacher_val = teacher_validation_psnr(sweep)
    assert teacher_val == 29.0
    gaps = gap_closed_curves(curves, baseline="no KD, 12000 it.", teacher_val=teacher_val)
    assert gaps.set_index("iteration").loc[12000, "gap_closed"] == pytest.approx(0.4 / (29.0 - 27.505))
    per_image = read_per_image(sweep)
    change = gain_change(per_image, arm=("FAKD w=100", "FAKD w=100, 12000 it."),
                         reference=("no KD", "no KD, 12000 it.")).iloc[0]
    assert change["gain_short"] == pytest.approx(0.3, abs=0.02) and change["gain_long"] == pytest.approx(0.1, abs=0.02)
    assert change["trend"] == "shrinks"
    long = per_image[per_image["label"].str.endswith("12000 it.")].pivot_table(
        index=["seed", "name"], columns="label", values="psnr")
    difference = long["FAKD w=100, 12000 it."] - long["no KD, 12000 it."]
    assert change["long_wins"] == int((difference > 0).sum()) == 10
    assert change["long_t_p"] == pytest.approx(stats.ttest_1samp(difference, 0.0).pvalue)
    verdict = convergence_verdict(pd.DataFrame([change]))
    assert "shrinks on 1 test set" in verdict and "long runs ahead on 10 of 10 images" in verdict


def test_an_arm_keeps_its_colour_in_both_convergence_panels(tmp_path):
    sweep = make_long_sweep(tmp_path, long_gain=0.1)
    curves = validation_curves(long_runs(sweep))
    gaps = gap_closed_curves(curves, baseline="no KD, 12000 it.", teacher_val=teacher_validation_psnr(sweep))
    figure = convergence_figure(curves, gaps, teacher_val=29.0, title="t")
    psnr_panel, gap_panel = figure.axes
    colour = {line.get_label(): line.get_color() for line in psnr_panel.get_lines()}
    shown = {line.get_label(): line.get_color() for line in gap_panel.get_lines() if not line.get_label().startswith("_")}
    assert shown == {"FAKD w=100, 12000 it.": colour["FAKD w=100, 12000 it."]}
    assert colour["FAKD w=100, 12000 it."] != colour["no KD, 12000 it."]
    plt.close(figure)


def test_the_long_runs_table_closes_the_gap_against_the_long_run_without_kd(tmp_path):
    sweep = make_long_sweep(tmp_path, long_gain=0.1)
    teacher = pd.DataFrame([{"dataset": "Set5", "psnr": TEACHER_PSNR, "ssim": 0.88}])
    shown = convergence_table(sweep, long_runs(sweep), teacher=teacher, scale=4)
    assert list(shown.index) == ["teacher", "no KD, 12000 it.", "FAKD w=100, 12000 it."]
    psnr = sweep.groupby("label")["psnr"].mean()
    expected = (psnr["FAKD w=100, 12000 it."] - psnr["no KD, 12000 it."]) / (TEACHER_PSNR - psnr["no KD, 12000 it."])
    assert shown.loc["FAKD w=100, 12000 it.", "gap Set5"] == f"{100 * expected:.0f}% (paper 44%)"
    assert shown.loc["FAKD w=100, 12000 it.", "seeds"] == 2
    assert convergence_table(sweep, long_runs(sweep).query("method != 'none'"), teacher=teacher, scale=4).empty


def test_a_gain_that_does_not_change_holds(tmp_path):
    sweep = make_long_sweep(tmp_path, long_gain=0.3)
    change = gain_change(read_per_image(sweep), arm=("FAKD w=100", "FAKD w=100, 12000 it."),
                         reference=("no KD", "no KD, 12000 it.")).iloc[0]
    assert change["trend"] == "holds" and change["t_p"] > 0.05


def test_training_time_counts_each_run_once():
    from fakd.analysis.ablation import training_time_markdown

    sweep = pd.DataFrame({"run": ["a", "a", "b"], "wall_time_s": [3600.0, 3600.0, 1800.0]})
    assert training_time_markdown(sweep).startswith("Training time: 2 student runs, 1.5 h of training wall time")
    assert training_time_markdown(pd.DataFrame({"run": ["a"]})) == ""
