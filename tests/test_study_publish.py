"""Reports are never lost: a study renders into a staging folder and replaces the previous report only
when every step succeeded; a report of another study is never written over; a hand-written
ANALYSIS.md beside a report survives every render. Also the demo profile's adopted teacher."""

import hashlib
import json

import pytest

from fakd.cli import main
from fakd.errors import FakdError
from fakd.study.adopt import adopt_shipped_model
from fakd.study.pipeline import Step, report_identity, run_study
from fakd.zoo.pretrained import file_sha256, pretrained_entry
from fakd.study.publish import (MARKER_FILE, check_report_folder, default_report_folder, publish, read_marker,
                                staging_folder, study_identity, write_marker)
from test_study_runs import write_notebook

IDENTITY = study_identity(profile="smoke", train_sets=["skimage-train"], test_sets=["skimage-test"])
OTHER = study_identity(profile="smoke", train_sets=["skimage-train"], test_sets=["Set5"])
WRITES_PAGE = "import pathlib\n(pathlib.Path(run_dir) / 'out.txt').write_text(text)\n"


def snapshot(folder):
    """{relative path: sha256} of every file below ``folder``."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def old_report(folder, identity=IDENTITY):
    (folder / "html").mkdir(parents=True)
    (folder / "html" / "old.html").write_text("old page")
    (folder / "index.html").write_text("old index")
    (folder / "ANALYSIS.md").write_text("written by hand")
    write_marker(folder, identity=identity, provenance={})
    return folder


def test_publish_swaps_the_report_entries_and_keeps_everything_else(tmp_path):
    target = old_report(tmp_path / "report")
    (target / "figures").mkdir()
    (target / "figures" / "stale.png").write_bytes(b"x")
    staging = staging_folder(target, identity=IDENTITY)
    (staging / "html").mkdir()
    (staging / "html" / "new.html").write_text("new page")
    (staging / "index.html").write_text("new index")
    publish(staging, target)
    assert not staging.exists()
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == [
        "ANALYSIS.md", MARKER_FILE, "html", "html/new.html", "index.html"]
    assert (target / "index.html").read_text() == "new index"
    assert (target / "ANALYSIS.md").read_text() == "written by hand"
    assert read_marker(target)["study"] == IDENTITY


def test_folders_that_are_not_this_studys_report_are_refused(tmp_path):
    check_report_folder(tmp_path / "new", identity=IDENTITY)  # new and empty folders are fine
    (tmp_path / "empty").mkdir()
    check_report_folder(tmp_path / "empty", identity=IDENTITY)
    check_report_folder(old_report(tmp_path / "same"), identity=IDENTITY)
    with pytest.raises(FakdError, match="holds the report of another study .*tested on Set5"):
        check_report_folder(old_report(tmp_path / "other", identity=OTHER), identity=IDENTITY)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FakdError, match="holds no fakd report"):
        check_report_folder(tmp_path / "mine", identity=IDENTITY)
    (tmp_path / "mine.partial").mkdir()
    (tmp_path / "mine.partial" / "notes.txt").write_text("precious")
    with pytest.raises(FakdError, match="not a fakd report's staging folder"):
        staging_folder(tmp_path / "mine", identity=IDENTITY)
    assert (tmp_path / "mine.partial" / "notes.txt").read_text() == "precious"


def test_the_default_folder_of_a_study_on_other_data_is_its_own(tmp_path):
    requested = old_report(tmp_path / "demo", identity=OTHER)
    assert default_report_folder(requested, identity=IDENTITY) == tmp_path / "demo-skimage-test"
    assert default_report_folder(tmp_path / "fresh", identity=IDENTITY) == tmp_path / "fresh"


def pipeline(tmp_path, *, text):
    page = write_notebook(tmp_path / f"00_{text}.ipynb", 'run_dir = ""\ntext = "x"\n', WRITES_PAGE,
                          'assert text != "fail", "deliberate failure"\n')
    return (Step("page", "A page", notebook=str(page), links=lambda context: {"text": text}),)


@pytest.mark.slow  # three notebook kernels
def test_a_failed_study_leaves_the_previous_report_untouched_and_says_where_the_partial_one_is(tmp_path):
    report_dir, runs_dir = tmp_path / "reports" / "smoke", tmp_path / "runs"
    first = run_study(profile="smoke", report_dir=report_dir, runs_dir=runs_dir, steps=pipeline(tmp_path, text="ok"),
                      progress=False)
    assert first.failure is None and first.index == report_dir / "index.html"
    (report_dir / "ANALYSIS.md").write_text("written by hand")
    before = snapshot(report_dir)
    failed = run_study(profile="smoke", report_dir=report_dir, runs_dir=runs_dir,
                       steps=pipeline(tmp_path, text="fail"), progress=False)
    assert failed.failure is not None and "deliberate failure" in failed.failure
    assert snapshot(report_dir) == before
    assert failed.index == tmp_path / "reports" / "smoke.partial" / "index.html" and failed.index.is_file()
    assert "FAILED" in failed.readme.read_text()
    again = run_study(profile="smoke", report_dir=report_dir, runs_dir=runs_dir, steps=pipeline(tmp_path, text="ok"),
                      progress=False)
    assert again.failure is None and not (tmp_path / "reports" / "smoke.partial").exists()
    assert (report_dir / "ANALYSIS.md").read_text() == "written by hand"
    assert "[ANALYSIS.md](ANALYSIS.md)" in (report_dir / "README.md").read_text()  # linked from the staged render
    assert read_marker(report_dir)["study"] == report_identity("smoke")


def test_the_cli_refuses_a_report_folder_of_another_study_before_anything_runs(tmp_path, capsys):
    other = old_report(tmp_path / "report", identity=OTHER)
    before = snapshot(other)
    code = main(["study", "--profile", "smoke", "--out", str(other), "--runs", str(tmp_path / "runs")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "holds the report of another study" in error
    assert snapshot(other) == before and not (tmp_path / "runs").exists()
    assert not (tmp_path / "report.partial").exists()


def test_the_demo_teacher_is_the_shipped_model_laid_out_as_a_finished_run(tmp_path):
    name = "rcan-cpu-teacher-x4"
    adopted = adopt_shipped_model(name, tmp_path / "teacher")
    assert not adopted.reused
    assert file_sha256(tmp_path / "teacher" / "train" / "checkpoints" / "best.pt") == pretrained_entry(name)["sha256"]
    rows = json.loads((tmp_path / "teacher" / "results.json").read_text())["rows"]
    assert [row["dataset"] for row in rows] == ["skimage-test"]
    assert rows[0]["psnr"] > 20 and rows[0]["images"] == 3 and rows[0]["source"] == f"fakd:{name}"
    assert adopt_shipped_model(name, tmp_path / "teacher").reused
