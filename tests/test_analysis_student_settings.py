"""Student settings in the report: a block per setting (initialised from the teacher, a narrower student), gap
closed against the same student from scratch, tests against each table's strongest baseline, the best recipe."""

import numpy as np
import pytest
from scipy import stats

from fakd.analysis.ablation import read_per_image
from fakd.analysis.comparison_report import best_recipe_markdown, init_rule_markdown, setting_section
from fakd.analysis.student_settings import StudentSetting, settings_in
from sweep_support import TEACHER_PSNR, make_settings_sweep, make_teacher

FROM_TEACHER = StudentSetting(init="teacher")
NARROW = StudentSetting(student_model="rcan-cpu-student-narrow")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return make_settings_sweep(tmp_path_factory.mktemp("settings"))


def _mean_psnr(sweep, label):
    return sweep[sweep["label"] == label]["psnr"].mean()


def test_settings_and_labels(sweep):
    assert settings_in(sweep) == [StudentSetting(), FROM_TEACHER, StudentSetting(init="teacher-spaced"), NARROW]
    labels = set(sweep["label"])
    assert {"no KD", "no KD, from teacher", "no KD, from teacher, spaced blocks", "FAKD w=100, from teacher",
            "FAKD, from teacher", "no KD, student 10×8×16", "FitNet, student 10×8×16"} <= labels


def test_the_from_teacher_block(sweep):
    teacher = make_teacher_rows()
    section = setting_section(sweep, read_per_image(sweep), teacher, setting=FROM_TEACHER, scale=4)
    assert [label for _, label, _ in section.rows] == ["no KD", "no KD, from teacher", "output KD, from teacher",
                                                       "FAKD, from teacher", "FAKD w=100, from teacher"]
    # gap closed against the paper's student from scratch without KD
    none, mine = _mean_psnr(sweep, "no KD"), _mean_psnr(sweep, "no KD, from teacher")
    shown = section.shown
    assert shown.loc["no KD, from teacher", "gap Set5"] == f"{100 * (mine - none) / (TEACHER_PSNR - none):.0f}%"
    assert section.reference == "no KD, from teacher"  # 1.0 ahead of output KD's 0.9 from the same start
    per_image = read_per_image(sweep)
    fakd = per_image[per_image["label"] == "FAKD w=100, from teacher"].sort_values(["seed", "name"])["psnr"].to_numpy()
    ref = per_image[per_image["label"] == "no KD, from teacher"].sort_values(["seed", "name"])["psnr"].to_numpy()
    row = section.tests.set_index("label").loc["FAKD w=100, from teacher"]
    assert row["mean"] == pytest.approx(np.mean(fakd - ref)) and row["t_p"] == pytest.approx(stats.ttest_rel(fakd, ref).pvalue)
    assert "## The profile's student, initialised from the teacher's weights" in section.markdown
    assert "**FAKD w=100, from teacher** has the highest PSNR of all students on every test set" in section.markdown
    assert "is **no KD, from teacher**" in section.markdown


def test_the_narrow_block_is_measured_against_its_own_student(sweep):
    section = setting_section(sweep, read_per_image(sweep), make_teacher_rows(), setting=NARROW, scale=4)
    assert section.rows[0] == ("student (no KD), student 10×8×16", "no KD, student 10×8×16", "none")
    none, fakd = _mean_psnr(sweep, "no KD, student 10×8×16"), _mean_psnr(sweep, "FAKD w=100, student 10×8×16")
    assert section.shown.loc["FAKD w=100, student 10×8×16 (provisional choice)", "gap Set5"].startswith(
        f"{100 * (fakd - none) / (TEACHER_PSNR - none):.0f}%")
    assert section.reference == "FitNet, student 10×8×16"


def test_the_best_recipe_across_settings(sweep):
    per_image = read_per_image(sweep)
    sections = [setting_section(sweep, per_image, make_teacher_rows(), setting=setting, scale=4)
                for setting in (StudentSetting(), FROM_TEACHER)]
    text = best_recipe_markdown(sections, per_image, scale=4)
    assert "**FAKD w=100, from teacher** has the highest PSNR averaged over the test sets" in text
    winner = per_image[per_image["label"] == "FAKD w=100, from teacher"].sort_values(["seed", "name"])["psnr"].to_numpy()
    scratch = per_image[per_image["label"] == "FAKD w=100"].sort_values(["seed", "name"])["psnr"].to_numpy()
    assert f"from scratch (FAKD w=100): Set5 {np.mean(winner - scratch):+.3f} dB (ahead on 10 of 10" in text


def test_which_blocks_the_student_inherits(sweep):
    text = init_rule_markdown(sweep)
    assert "Chosen on validation: **teacher**" in text
    runs = sweep[(sweep["method"] == "none") & (sweep["init"] == "teacher")]
    assert f"| teacher | {runs['val_psnr'].mean():.3f} | {runs['psnr'].mean():.3f} |" in text


def make_teacher_rows():
    import pandas as pd

    return pd.DataFrame([{"dataset": "Set5", "psnr": TEACHER_PSNR, "ssim": 0.88}])


def test_gap_bars_are_the_tables_shares_with_the_psnr_interval_scaled_by_the_gap(sweep):
    from fakd.analysis.gap_figure import gap_bars, gap_closed_figure

    per_image = read_per_image(sweep)
    sections = [setting_section(sweep, per_image, make_teacher_rows(), setting=FROM_TEACHER, scale=4)]
    bars = gap_bars(sections).set_index("row")
    assert "student (no KD)" not in bars.index  # the reference is 0% by definition
    runs = sweep[sweep["label"] == "no KD, from teacher"]["psnr"].to_numpy()
    none = _mean_psnr(sweep, "no KD")
    half_width = stats.t.ppf(0.975, len(runs) - 1) * runs.std(ddof=1) / np.sqrt(len(runs))
    row = bars.loc["no KD, from teacher"]
    assert row["gap"] == pytest.approx(100 * (runs.mean() - none) / (TEACHER_PSNR - none))
    assert row["gap_ci"] == pytest.approx(100 * half_width / (TEACHER_PSNR - none))
    assert gap_closed_figure(sections, scale=4, title="t") is not None
