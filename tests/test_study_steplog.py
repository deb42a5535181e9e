"""A study's log says when each step started and ended and how long it took (issue 22)."""

import re

from fakd.study.steplog import StepClock


def test_each_step_says_its_start_end_and_duration(capsys):
    clock = StepClock(2)
    clock.start("primer", "Knowledge distillation primer")
    clock.end("done")
    clock.start("students", "Student sweep")
    clock.end("1 failed")
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"study: step 1/2 primer \(Knowledge distillation primer\) started \d\d:\d\d:\d\d", lines[0])
    assert re.fullmatch(r"study: step 1/2 primer ended \d\d:\d\d:\d\d after \d+\.\d s: done", lines[1])
    assert lines[3].startswith("study: step 2/2 students ended ") and lines[3].endswith(": 1 failed")
    assert list(clock.seconds) == ["primer", "students"]
    assert re.fullmatch(r"primer \d+ s, students \d+ s", clock.summary())


def test_a_quiet_clock_still_keeps_the_times(capsys):
    clock = StepClock(1, enabled=False)
    clock.start("teacher", "Teacher training")
    clock.end("reused")
    assert capsys.readouterr().out == "" and clock.seconds["teacher"] >= 0
