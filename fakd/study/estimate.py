"""How long a study's training will take, said at its start (issue 22): a user who wanted the ~10-minute
demo learns before the hours begin that this is the full study, and how to run the demo instead.

The estimate is the training runs still to do (finished and archive-restored runs cost nothing), each
its iterations × the seconds per iteration that the cpu study's own runs took on the 2-core development
machine (2026-11-24/25, ``reports/cpu-runs``: summary.json's wall time over its iterations, before
channels-last and the teacher cache, which make later runs faster): the teacher alone with two threads,
then the students ``workers`` at a time with one thread each. Other profiles have no measured rates.
"""

from __future__ import annotations

from dataclasses import dataclass

# Seconds per iteration on the 2-core development machine, cpu profile (2026-11-24/25, the cpu study's runs).
SECONDS_PER_ITERATION = {
    "teacher": 0.32,    # 12000 iterations in 3846 s, two threads, alone
    "student": 0.20,    # no KD: 0.18-0.22 s, one thread, two runs at a time
    "distilled": 0.33,  # output KD 0.29, FAKD 0.32-0.38 (the teacher runs beside the student)
}
MEASURED_PROFILES = ("cpu",)


@dataclass(frozen=True)
class TrainingEstimate:
    """Training still to do and the wall time it should take at the measured rates."""

    teacher_iterations: int  # 0 when the teacher is finished
    student_runs: int
    total_runs: int
    seconds: float


def estimate_training(*, teacher_iterations: int, students: list[tuple[str, int]], total_runs: int,
                      workers: int) -> TrainingEstimate:
    """``students``: (method, iterations) of each student run still to do; they share ``workers``."""
    student_seconds = sum(iterations * SECONDS_PER_ITERATION["student" if method in (None, "none") else "distilled"]
                          for method, iterations in students)
    seconds = teacher_iterations * SECONDS_PER_ITERATION["teacher"] + student_seconds / max(1, workers)
    return TrainingEstimate(teacher_iterations=teacher_iterations, student_runs=len(students),
                            total_runs=total_runs, seconds=seconds)


def duration_text(seconds: float) -> str:
    """``3 h 50 min`` / ``12 min``."""
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def estimate_lines(estimate: TrainingEstimate, *, profile: str, workers: int) -> list[str]:
    """What the study says at its start about its length, and how to run the demo instead."""
    if estimate.teacher_iterations == 0 and estimate.student_runs == 0:
        return [f"study: every training run of the {profile} study is finished: only the reports are rendered"]
    teacher = (f"the teacher ({estimate.teacher_iterations} iterations) and " if estimate.teacher_iterations else "")
    return [
        f"study: {teacher}{estimate.student_runs} of {estimate.total_runs} student runs to train: about "
        f"{duration_text(estimate.seconds)} on a 2-core machine like the one the cpu study was measured on "
        f"({workers} at a time; fakd.study.estimate), then the reports",
        "study: for the ~10-minute demo on the embedded photographs instead: make study PROFILE=demo  or  "
        "fakd study --profile demo",
    ]
