"""A study says at its start how long its training will take here, and how to run the demo instead."""

from pathlib import Path

import pytest

from fakd.study.estimate import SECONDS_PER_ITERATION, duration_text, estimate_lines, estimate_training
from fakd.study.pipeline import STUDY_STEPS, StudyContext, _estimate_lines


def test_students_share_the_workers_and_the_teacher_runs_alone():
    estimate = estimate_training(teacher_iterations=100, students=[("none", 1000), ("fakd", 1000)], total_runs=5,
                                 workers=2)
    expected = 100 * SECONDS_PER_ITERATION["teacher"] + (1000 * SECONDS_PER_ITERATION["student"]
                                                         + 1000 * SECONDS_PER_ITERATION["distilled"]) / 2
    assert estimate.seconds == pytest.approx(expected)
    lines = estimate_lines(estimate, profile="cpu", workers=2)
    assert lines[0].startswith("study: the teacher (100 iterations) and 2 of 5 student runs to train: about ")
    assert "make study PROFILE=demo" in lines[1]
    assert duration_text(3 * 3600 + 52 * 60) == "3 h 52 min" and duration_text(600) == "10 min"


def test_the_cpu_study_on_a_fresh_runs_folder_counts_every_run(tmp_path):
    context = StudyContext(profile="cpu", runs_dir=tmp_path / "runs", report_dir=tmp_path / "report",
                           data_root=str(tmp_path / "data"))
    first, demo = _estimate_lines(STUDY_STEPS, context, workers=2)
    assert first.startswith("study: the teacher (12000 iterations) and ") and " h " in first
    total = first.split(" of ")[1].split()[0]
    assert f" {total} of {total} student runs" in first and "PROFILE=demo" in demo


def test_a_finished_study_says_only_the_reports_are_rendered():
    estimate = estimate_training(teacher_iterations=0, students=[], total_runs=4, workers=2)
    assert estimate_lines(estimate, profile="cpu", workers=2) == [
        "study: every training run of the cpu study is finished: only the reports are rendered"]
