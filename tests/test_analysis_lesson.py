"""The lesson's building blocks: the KD families' pictures, the self-checking exercises, the
mini-experiment's configs and the study's figures — against formulas written out here in float64."""

import pytest
import torch

from fakd.analysis.lesson_exercises import (check_affinity_distance, check_attention_map, check_spatial_affinity,
                                            check_width_answers)
from fakd.analysis.lesson_experiment import ARMS, experiment_config
from fakd.analysis.lesson_families import feature_pictures, width_requirement
from fakd.analysis.lesson_findings import FINDING_FIGURES, committed_report, finding_figure
from fakd.errors import FakdError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cosines_between_positions(feat: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> (N, N), every entry cos(f_n, f_m) by its definition."""
    vectors = feat.double().flatten(1).T  # (N, C)
    return torch.stack([torch.stack([torch.dot(a, b) / (a.norm() * b.norm()) for b in vectors]) for a in vectors])


def test_width_requirements_are_what_the_papers_say():
    # FitNet: a 1x1 regressor when widths differ; AT and FAKD compare maps / N x N matrices of any width;
    # FSP and channel affinity compare C x C matrices, so the widths must match; output KD has no features
    expected = {"none": "outputs only", "kd": "outputs only", "fitnet": "an adapter", "at": "any widths",
                "fsp": "equal widths", "ca": "equal widths", "fakd": "any widths"}
    assert {name: width_requirement(name) for name in expected} == expected


def test_feature_pictures_show_what_each_loss_compares():
    torch.manual_seed(0)
    teacher = {"a": torch.randn(1, 4, 5, 6), "b": torch.randn(1, 4, 5, 6)}
    student = {"a": torch.randn(1, 4, 5, 6), "b": torch.randn(1, 4, 5, 6)}
    pictures = feature_pictures(teacher, student, tap="b", first_tap="a", pixel=(2, 3), matrix_crop=3)
    by_kind = {(picture.method, picture.kind): picture for picture in pictures}
    assert [picture.method for picture in pictures] == ["fitnet", "at", "fsp", "ca", "fakd", "fakd"]
    # FAKD's row: cos of pixel (2, 3) with every position; its loss: mean |A_s - A_t| over all N^2 pairs
    row = by_kind[("fakd", "map")]
    teacher_cosines, student_cosines = (cosines_between_positions(features["b"][0]) for features in (teacher, student))
    assert row.teacher == pytest.approx(teacher_cosines[2 * 6 + 3].reshape(5, 6).numpy(), abs=1e-5)
    assert row.loss == pytest.approx(float((student_cosines - teacher_cosines).abs().mean()), rel=1e-4)
    assert by_kind[("fakd", "matrix")].teacher.shape == (9, 9)  # the central 3 x 3 positions
    # FSP: G = F1 F2^T / (H W) between taps a and b
    flow = torch.einsum("chw,dhw->cd", teacher["a"][0].double(), teacher["b"][0].double()) / 30
    assert by_kind[("fsp", "matrix")].teacher == pytest.approx(flow.numpy(), abs=1e-5)
    # AT: mean over channels of F^2, unit length
    energy = teacher["b"][0].double().pow(2).mean(0).flatten()
    assert by_kind[("at", "map")].teacher.ravel() == pytest.approx((energy / energy.norm()).numpy(), abs=1e-6)


def test_feature_pictures_refuse_unequal_widths():
    teacher = {"a": torch.randn(1, 8, 4, 4), "b": torch.randn(1, 8, 4, 4)}
    student = {"a": torch.randn(1, 4, 4, 4), "b": torch.randn(1, 4, 4, 4)}
    with pytest.raises(FakdError, match="equal widths"):
        feature_pictures(teacher, student, tap="b", first_tap="a", pixel=(0, 0))


def spatial_affinity_by_hand(feat):
    return torch.stack([cosines_between_positions(one) for one in feat])


def attention_by_hand(feat):
    energy = feat.double().pow(2).mean(dim=1).flatten(1)
    return energy / energy.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("check, right, wrong", [
    (check_spatial_affinity, spatial_affinity_by_hand, lambda feat: spatial_affinity_by_hand(feat) * 0.9),
    (check_attention_map, attention_by_hand, lambda feat: feat.pow(2).mean(dim=1).flatten(1)),  # not unit length
    (check_affinity_distance, lambda s, t: (spatial_affinity_by_hand(s) - spatial_affinity_by_hand(t)).abs().mean(),
     lambda s, t: (spatial_affinity_by_hand(s) - spatial_affinity_by_hand(t)).pow(2).mean()),  # p = 2, not 1
])
def test_exercise_checks_say_right_wrong_or_not_answered(capsys, check, right, wrong):
    check(right)
    check(wrong)
    check(lambda *features: None)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["✓ right", "✗ wrong", "… not answered yet"]


def test_exercise_checks_name_a_wrong_shape(capsys):
    check_spatial_affinity(lambda feat: feat.flatten(2))
    assert capsys.readouterr().out.startswith("✗ wrong: spatial affinity of a (2, 3, 5, 4) map has shape (2, 3, 20)")


def test_width_answers_are_checked_one_by_one(capsys):
    right = {"fitnet": "an adapter", "at": "any widths", "fsp": "equal widths", "ca": "equal widths",
             "fakd": "any widths"}
    check_width_answers(right)
    check_width_answers({**right, "fakd": "equal widths"})
    check_width_answers({**right, "fakd": "maybe"})
    check_width_answers(dict.fromkeys(right))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("✓ right") and lines[1] == (
        "✗ wrong: 1 of 5 answers are wrong: fakd (try the loss classes on a 16- and a 32-channel map)")
    assert lines[2].startswith("✗ wrong: answer each of") and lines[3].startswith("… not answered yet")


def test_mini_experiment_arms_are_demo_runs_that_differ_only_in_method_and_init():
    configs = {label: experiment_config(method=method, init=init, iterations=30, seed=3, validate_every=5)
               for label, (_, method, init) in ARMS.items()}
    for config in configs.values():
        assert (config.profile, config.seed, config.student.iterations, config.validate_every) == ("demo", 3, 30, 5)
        assert config.data.train_sets == ["skimage-train"]
    assert [config.student.init for config in configs.values()] == ["scratch", "scratch", "teacher"]
    assert [config.distill.methods for config in configs.values()][1] == ["fakd"]


def test_the_study_findings_are_the_committed_reports_figures():
    report = committed_report()
    assert report is not None and (report / "index.html").is_file()
    for name in FINDING_FIGURES:
        assert finding_figure(name).read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="unknown finding"):
        finding_figure("nothing")
