"""Every study notebook executed with papermill on the smoke profile into tmp_path, and what it wrote.

Two tests so that pytest-xdist can run them side by side: the two stand-alone notebooks (primer,
explorer on untrained models), and the chain teacher → student sweep → compare → ablation report
run by the study pipeline itself, followed by the explorer on the trained models and a sweep point
that fails on purpose.
"""

import json
import math
import shutil

import nbformat
import pandas as pd
import pytest

from fakd.study.grid import grid_from_mapping
from fakd.study.locations import resolve_notebook
from fakd.study.notebook_runner import run_notebook
from fakd.study.pipeline import STUDY_STEPS, run_study
from fakd.study.sweep import run_sweep
from sweep_support import TEACHER_PSNR, make_fixed_sweep, make_long_sweep, make_settings_sweep

pytestmark = pytest.mark.slow  # the real notebooks in real kernels: minutes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def smoke_environment(monkeypatch):
    """Embedded data only (whatever the machine sets) and one thread per kernel, as in CI."""
    monkeypatch.delenv("FAKD_DATA_ROOT", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def rows(run_dir) -> list[dict]:
    content = json.loads((run_dir / "results.json").read_text())
    return content["rows"] if "rows" in content else [content]


def assert_figures(run_dir, *names):
    for name in names:
        path = run_dir / name
        assert path.is_file(), f"{name} missing in {run_dir}"
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


def cell_stdout(cell) -> str:
    return "".join(output.get("text", "") for output in cell.get("outputs", []) if output.get("name") == "stdout")


def assert_lesson_exercises(executed):
    """Each exercise ran and says it is not answered yet; each solution says right and is collapsed."""
    cells = nbformat.read(str(executed), as_version=4).cells
    exercises = [cell for cell in cells if "exercise" in cell.metadata.get("tags", [])]
    solutions = [cell for cell in cells if "solution" in cell.metadata.get("tags", [])]
    assert len(exercises) == len(solutions) >= 3
    assert all(cell_stdout(cell).startswith("… not answered yet") for cell in exercises)
    assert all(cell_stdout(cell).startswith("✓ right") for cell in solutions)
    assert all(cell.metadata["jupyter"]["source_hidden"] for cell in solutions)


def test_primer_and_explorer_without_trained_models(tmp_path):
    primer = run_notebook(resolve_notebook("00_kd_primer"), tmp_path / "primer",
                          {"crop": 16, "family_crop": 32, "experiment_iterations": 12})
    (row,) = rows(primer.run_dir)
    assert row["positions"] == 256 and (row["student_channels"], row["teacher_channels"]) == (64, 256)
    assert 0 < row["affinity_l1_64_vs_256"] < 2
    parts = row["loss_l1_hr"] + row["loss_l1_teacher"] + row["loss_affinity"]
    assert row["loss_total"] == pytest.approx(parts, rel=1e-5) and min(
        row["loss_l1_hr"], row["loss_l1_teacher"], row["loss_affinity"]) > 0
    assert_figures(primer.run_dir, "primer_affinity_steps.png", "primer_affinity_matrices.png",
                   "primer_channel_independence.png", "primer_loss_terms.png", "lesson_kd_families.png",
                   "lesson_experiment_curves.png", "lesson_experiment_crops.png")
    # the KD families: one loss per family from the kit's classes, the shipped teacher vs student
    assert {key for key in row if key.startswith("family_loss_")} == {
        f"family_loss_{name}" for name in ("kd", "fitnet", "at", "fsp", "ca", "fakd")}
    assert all(row[f"family_loss_{name}"] > 0 for name in ("kd", "fitnet", "at", "fsp", "ca", "fakd"))
    # the mini-experiment: after 12 iterations the student that starts from the teacher's weights is
    # far ahead of both students from random weights, and the teacher ahead of every student
    psnr = {key.removeprefix("experiment_psnr "): value for key, value in row.items() if key.startswith("experiment_psnr ")}
    assert set(psnr) == {"teacher", "no KD", "FAKD (w = 1)", "no KD, from the teacher's weights"}
    assert psnr["no KD, from the teacher's weights"] > max(psnr["no KD"], psnr["FAKD (w = 1)"]) + 1
    assert psnr["teacher"] > psnr["no KD, from the teacher's weights"]
    assert_lesson_exercises(primer.executed)

    explorer = run_notebook(resolve_notebook("01_affinity_explorer"), tmp_path / "explorer",
                            {"profile": "smoke", "crop": 24, "tap": "body.2", "pixel": [5, 7]})
    table = pd.DataFrame(rows(explorer.run_dir))
    assert table["model"].tolist() == ["student (untrained)"] * 3
    assert table["tap"].tolist() == ["body.2", "body.6", "long_skip"]
    assert table["l1"].between(0, 2).all() and table["correlation"].between(-1, 1).all()
    assert_figures(explorer.run_dir, "affinity_explorer.png", "affinity_agreement.png")


def test_study_chain_teacher_students_compare_report(tmp_path):
    steps = tuple(step for step in STUDY_STEPS if step.name in ("teacher", "students", "compare", "ablation"))
    runs, report_dir, archive = tmp_path / "runs", tmp_path / "report", tmp_path / "archive"
    report = run_study(profile="smoke", report_dir=report_dir, runs_dir=runs, steps=steps, progress=False,
                       archive=archive)
    assert report.failure is None, report.failure
    assert [entry.status for entry in report.entries] == ["done"] * 4

    teacher = runs / "teacher"
    (teacher_row,) = rows(teacher)
    assert teacher_row["dataset"] == "skimage-test" and teacher_row["images"] == 3
    assert 5 < teacher_row["psnr"] < 40 and 0 < teacher_row["ssim"] <= 1
    assert teacher_row["val_psnr"] > 5 and teacher_row["iterations"] == 8
    per_image = pd.read_csv(teacher / "per_image.csv")
    assert per_image["psnr"].mean() == pytest.approx(teacher_row["psnr"])
    assert_figures(teacher, "training_curves.png")
    assert (teacher / "train" / "checkpoints" / "best.pt").is_file()

    sweep = pd.read_csv(runs / "students" / "results.csv")
    assert sweep["method"].tolist() == ["none", "fakd"]
    assert sweep["psnr"].between(5, 40).all() and (sweep["teacher_run"] == "../../../teacher").all()

    compare = runs / "compare"
    headline = pd.DataFrame(rows(compare))
    assert headline["model"].tolist() == ["bicubic", "teacher", "student: no KD", "student: FAKD"]
    bicubic = headline.set_index("model").loc["bicubic"]
    assert 25 < bicubic["psnr"] < 32 and 0.7 < bicubic["ssim"] < 0.9  # x4 bicubic on natural photos
    assert headline.set_index("model").loc["teacher", "psnr"] == pytest.approx(teacher_row["psnr"])
    assert_figures(compare, "per_image_differences.png", "visual_crops.png", "affinity_00.png",
                   "affinity_01.png", "affinity_agreement.png", "cost.png")
    cost = pd.read_csv(compare / "cost.csv")
    assert cost["params"].iloc[0] > cost["params"].iloc[1] > 0 and (cost["latency_s"] > 0).all()

    ablation = runs / "ablation"
    summary = (ablation / "summary.md").read_text()
    gain = sweep.set_index("method").loc["fakd", "psnr"] - sweep.set_index("method").loc["none", "psnr"]
    assert "## Does FAKD beat the no KD baseline?" in summary and f"{gain:+.3f} dB" in summary
    assert_figures(ablation, "gain_per_dataset.png", "paired_differences.png", "loss_shares.png")
    fakd_run = runs / "students" / "runs" / sweep.set_index("method").loc["fakd", "run"]
    assert_figures(fakd_run, "loss_shares.png")
    logged = pd.read_json(fakd_run / "train" / "metrics.jsonl", lines=True)
    shares = logged.filter(like="share_")
    assert set(shares) == {"share_l1_hr", "share_l1_teacher", "share_fakd"}
    assert (shares.sum(axis=1) - 1).abs().max() < 1e-9
    (fakd_row,) = [row for row in rows(ablation) if row["label"] == "FAKD"]
    assert fakd_row["gain"] == pytest.approx(gain) and fakd_row["paired_n"] == 3
    readme = (report_dir / "README.md").read_text()
    assert "| 4 | student: FAKD |" in readme and "Does FAKD beat" in readme
    assert (report_dir / "figures" / "compare" / "visual_crops.png").is_file()

    # the archive holds the training steps' finished runs; on a "new machine" (the runs folder gone,
    # the same path) they are restored from it and the study continues without training again
    assert (archive / "teacher" / "train" / "checkpoints" / "best.pt").is_file()
    archived = sorted(path.name for path in (archive / "students" / "runs").iterdir())
    assert archived == sorted(sweep["run"].unique())
    moved = tmp_path / "old-machine-runs"
    runs.rename(moved)
    training = tuple(step for step in steps if step.name in ("teacher", "students"))
    again = run_study(profile="smoke", report_dir=tmp_path / "report-again", runs_dir=runs, steps=training,
                      progress=False, archive=archive)
    assert [entry.status for entry in again.entries] == ["reused", "done"]
    assert "0 executed now" in again.entries[1].note
    assert not (runs / "teacher" / "train" / "checkpoints" / "last.pt").exists()
    shutil.rmtree(runs)
    moved.rename(runs)

    # the explorer on the trained teacher and students
    explorer = run_notebook(resolve_notebook("01_affinity_explorer"), tmp_path / "explorer",
                            {"profile": "smoke", "crop": 24, "teacher_run_dir": str(teacher),
                             "sweep_dir": str(runs / "students"), "student": "FAKD"})
    table = pd.DataFrame(rows(explorer.run_dir))
    assert set(table["model"]) == {"no KD", "FAKD"} and table["trained"].all()
    assert not table["correlation"].map(math.isnan).any()

    # a point whose cell fails (a weight for output KD, which has no feature term) is recorded
    grid = grid_from_mapping({"notebook": str(resolve_notebook("03_distill_student")),
                              "parameters": {"profile": "smoke", "teacher_run_dir": str(teacher)},
                              "grid": {"method": ["kd"], "weight": [1.0]}})
    failed = run_sweep(grid, tmp_path / "failing", workers=1)
    assert not failed.ok and "no feature term" in failed.failures[0]["error"]


def test_ablation_report_on_a_sweep_whose_weights_were_chosen_at_another_scale(tmp_path):
    """05 with weights_chosen_at (the x2 study's grid passes "×4"): the rows say where each weight was
    chosen, FAKD w 1 stays the paper's row although it is best on this sweep's validation, and no weight
    selection figure claims a tuning that did not happen here."""
    arms = [("none", None, None, 0.0, 27.0), ("kd", None, 0.9091, 0.1, 27.1), ("fitnet", 100.0, None, 0.2, 27.2),
            ("fakd", None, None, 0.3, 27.9), ("fakd", 100.0, None, 0.4, 27.4)]
    make_fixed_sweep(tmp_path, arms)
    report = run_notebook(resolve_notebook("05_ablation_report"), tmp_path / "report",
                          {"sweep_dir": str(tmp_path / "sweep"), "weights_chosen_at": "×4"})
    summary = (report.run_dir / "summary.md").read_text()
    assert "| FAKD w=100 (chosen at ×4) | 3 | 30.40 ± 0.00 / 0.8000 ± 0.0000 | 40% (paper 44%) |" in summary
    assert "| output KD α=0.909 (chosen at ×4) |" in summary and "provisional" not in summary
    assert "**FAKD w=100** has the highest PSNR of all students" in summary
    assert not (report.run_dir / "weight_selection.png").exists()


def test_ablation_report_on_a_sweep_with_long_runs(tmp_path):
    """05's convergence section on a sweep with long runs: the curves figure, the gain verdict and the long
    runs in the paper's layout, gap closed against the long run without KD."""
    sweep = make_long_sweep(tmp_path, long_gain=0.1)
    report = run_notebook(resolve_notebook("05_ablation_report"), tmp_path / "report",
                          {"sweep_dir": str(tmp_path / "sweep")})
    summary = (report.run_dir / "summary.md").read_text()
    psnr = sweep.groupby("label")["psnr"].mean()
    none, fakd = psnr["no KD, 12000 it."], psnr["FAKD w=100, 12000 it."]
    share = f"{100 * (fakd - none) / (TEACHER_PSNR - none):.0f}% (paper 44%)"
    assert "**FAKD w=100, 12000 it.** over no KD, 12000 it.: shrinks on 1 test set" in summary
    assert f"| FAKD w=100, 12000 it. | 2 | {fakd:.2f} ± " in summary and share in summary
    assert (report.run_dir / "convergence_table.md").read_text() in summary
    assert_figures(report.run_dir, "convergence.png")


def test_ablation_report_on_a_sweep_with_student_settings(tmp_path):
    """05 on a sweep with students initialised from the teacher and a narrower student: a block per setting
    with its own files, the block-choice table, and the best recipe across settings leading the comparison."""
    make_settings_sweep(tmp_path)
    report = run_notebook(resolve_notebook("05_ablation_report"), tmp_path / "report",
                          {"sweep_dir": str(tmp_path / "sweep")})
    summary = (report.run_dir / "summary.md").read_text()
    for title in ("## The profile's student, from scratch", "## The profile's student, initialised from the teacher's "
                  "weights", "## Student 10×8×16, from scratch", "## Which teacher blocks the student inherits"):
        assert title in summary
    assert summary.index("the best recipe for the profile's student") < summary.index("## The profile's student, from")
    for slug in ("", "-init-teacher", "-rcan-cpu-student-narrow"):
        assert (report.run_dir / f"comparison_table{slug}.md").read_text() in summary
    assert_figures(report.run_dir, "weight_selection-init-teacher.png", "gap_closed.png")
    lead = (report.run_dir / "lead.md").read_text()
    assert lead.index("the best recipe for the profile's student") < lead.index("initialised from the teacher's weights**")
