"""A study's archive: finished runs copied as small files, restored on a machine that lacks them."""

import json

from fakd.study.archive import archive_run, location_mismatch, recorded_locations, restore_runs
from fakd.study.notebook_runner import DONE_MARKER


def _finished_run(folder, *, with_model=True):
    (folder / "train" / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "job.json", "metrics.jsonl", "summary.json"):
        (folder / "train" / name).write_text(name)
    (folder / "train" / "checkpoints" / "last.pt").write_bytes(b"last")
    if with_model:
        (folder / "train" / "checkpoints" / "best.pt").write_bytes(b"best")
    (folder / "results.json").write_text('{"rows": []}')
    (folder / "per_image.csv").write_text("dataset,name,psnr,ssim\n")
    notebook = {"cells": [{"cell_type": "code", "source": "", "outputs": [
        {"output_type": "display_data", "data": {"image/png": "AAAA" * 1000, "text/plain": "<Figure>"}}]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "03_distill_student.ipynb").write_text(json.dumps(notebook))
    (folder / "fakd-done.json").write_text('{"parameters_sha256": "x"}')


def test_archive_keeps_small_files_and_the_model_only_when_asked(tmp_path):
    runs = tmp_path / "runs"
    _finished_run(runs / "students" / "runs" / "a")
    _finished_run(runs / "students" / "runs" / "b")
    archive = tmp_path / "archive"
    archive_run(runs / "students" / "runs" / "a", archive / "students" / "runs" / "a", keep_model=True)
    archive_run(runs / "students" / "runs" / "b", archive / "students" / "runs" / "b", keep_model=False)
    kept = {path.relative_to(archive / "students" / "runs" / "a").as_posix()
            for path in (archive / "students" / "runs" / "a").rglob("*") if path.is_file()}
    assert kept == {"fakd-done.json", "results.json", "per_image.csv", "03_distill_student.ipynb",
                    "train/config.yaml", "train/job.json", "train/metrics.jsonl", "train/summary.json",
                    "train/checkpoints/best.pt"}
    assert not (archive / "students" / "runs" / "b" / "train" / "checkpoints").exists()
    notebook = json.loads((archive / "students" / "runs" / "a" / "03_distill_student.ipynb").read_text())
    assert notebook["cells"][0]["outputs"][0]["data"] == {"text/plain": "<Figure>"}  # pictures dropped


def test_restore_fills_missing_runs_and_never_touches_existing_ones(tmp_path):
    archive = tmp_path / "archive"
    _finished_run(archive / "teacher")
    _finished_run(archive / "students" / "runs" / "a")
    (archive / "students" / "runs" / "half").mkdir(parents=True)  # no done marker: not a finished run
    runs = tmp_path / "runs"
    (runs / "students" / "runs" / "a").mkdir(parents=True)
    (runs / "students" / "runs" / "a" / "mine.txt").write_text("a newer run of its own")

    restored = restore_runs(archive, runs)

    assert restored == [runs / "teacher"]
    assert (runs / "teacher" / "train" / "checkpoints" / "best.pt").read_bytes() == b"best"
    assert sorted(p.name for p in (runs / "students" / "runs" / "a").iterdir()) == ["mine.txt"]
    assert not (runs / "students" / "runs" / "half").exists()
    assert restore_runs(archive, runs) == []  # a second time there is nothing to do


def write_marker_with(folder, parameters):
    folder.mkdir(parents=True)
    (folder / DONE_MARKER).write_text(json.dumps({"parameters": parameters}))


def test_the_archive_says_which_paths_its_runs_need_to_be_reused(tmp_path):
    """A run's identity includes the absolute data root and teacher run folder: re-rendering from the
    archive elsewhere needs the same --data-root and --runs, and the study says so."""
    archive, runs = tmp_path / "archive", tmp_path / "runs"
    write_marker_with(archive / "teacher", {"profile": "cpu", "data_root": "/data/sr"})
    write_marker_with(archive / "students" / "runs" / "p1", {"profile": "cpu", "data_root": "/data/sr",
                                                          "teacher_run_dir": str(runs.resolve() / "teacher")})
    assert recorded_locations(archive) == {"data_root": "/data/sr", "teacher_run_dir": str(runs.resolve() / "teacher")}
    assert location_mismatch(archive, runs_dir=runs, data_root="/data/sr") is None
    line = location_mismatch(archive, runs_dir=tmp_path / "elsewhere", data_root=None)
    assert f"--data-root /data/sr --runs {runs.resolve()};" in line and "train again" in line
