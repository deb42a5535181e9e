"""A study's archive: finished runs copied as small files, restored on a machine that lacks them."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from fakd.errors import FakdError
from fakd.study.archive import archive_run, restore_runs
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


def _tiny_data_root(root):
    """A data root of one made-up test set (two PNGs): the data's identity is its content."""
    from PIL import Image

    (root / "Set5" / "HR").mkdir(parents=True)
    for index in range(2):
        Image.fromarray(np.full((8, 8, 3), 40 * index, dtype=np.uint8)).save(root / "Set5" / "HR" / f"i{index}.png")
    return root


def _old_archive(archive, *, runs, data):
    """An archive as fakd wrote it before identities were by content: absolute paths in the markers, the point
    folder's digest over them, and the machine's paths in the records."""
    teacher = archive / "teacher"
    (teacher / "train" / "checkpoints").mkdir(parents=True)
    (teacher / "train" / "checkpoints" / "best.pt").write_bytes(b"teacher weights")
    (teacher / DONE_MARKER).write_text(json.dumps({"notebook": "02_train_teacher.ipynb", "parameters": {
        "profile": "smoke", "data_root": str(data)}, "parameters_sha256": "old", "python": "/venv/bin/python3"}))
    point = archive / "students" / "runs" / "method-fakd_seed-0-0123abcd"
    (point / "train").mkdir(parents=True)
    parameters = {"profile": "smoke", "data_root": str(data), "teacher_run_dir": str(runs / "teacher"),
                  "method": "fakd", "seed": 0}
    (point / DONE_MARKER).write_text(json.dumps({"notebook": "03_distill_student.ipynb", "parameters": parameters,
                                                 "parameters_sha256": "old"}))
    (point / "results.json").write_text(json.dumps({"rows": [{"psnr": 30.0, "teacher_run": str(runs / "teacher")}]}))
    (point / "train" / "summary.json").write_text(json.dumps({
        "out": str(runs / "students/runs/method-fakd_seed-0-0123abcd/train"),
        "teacher_checkpoint": str(runs / "teacher/train/checkpoints/best.pt")}))
    return parameters


def test_an_archive_made_with_path_identities_is_migrated_once(tmp_path):
    """Made before the change: after migrating, its runs are found from any folder by what they compute,
    and no record holds a path of the machine that made them."""
    from fakd.study.identity import identity_digest
    from fakd.study.migrate import migrate_archive

    data, runs, archive = _tiny_data_root(tmp_path / "data"), tmp_path / "old-machine" / "runs", tmp_path / "archive"
    old = _old_archive(archive, runs=runs, data=data)
    renamed = migrate_archive(archive, data_root=str(data))
    new_key = renamed["students/runs/method-fakd_seed-0-0123abcd"]
    here = {**old, "teacher_run_dir": str(archive / "teacher")}
    assert new_key == f"students/runs/method-fakd_seed-0-{identity_digest(here)[:8]}"
    marker = json.loads((archive / new_key / DONE_MARKER).read_text())
    assert marker["parameters_sha256"] == identity_digest(here) and "python" not in marker
    assert marker["parameters"]["teacher_run_dir"] == {"teacher_sha256": hashlib.sha256(b"teacher weights").hexdigest()}
    assert marker["parameters"]["data_root"]["skimage-train"] == "embedded:skimage-train"  # smoke trains on it
    assert set(marker["parameters"]["data_root"]) == {"skimage-train", "Set5"}
    assert json.loads((archive / new_key / "results.json").read_text())["rows"][0]["teacher_run"] == "../../../teacher"
    summary = (archive / new_key / "train" / "summary.json").read_text()
    assert str(tmp_path) not in summary and "<runs>/students/runs/" in summary
    assert migrate_archive(archive, data_root=str(data)) == {}  # twice: nothing more to do
    moved = tmp_path / "elsewhere"
    shutil.copytree(archive, moved / "archive")
    shutil.copytree(data, moved / "data")
    assert identity_digest({**old, "data_root": str(moved / "data"), "teacher_run_dir": str(moved / "archive" / "teacher")}) \
        == marker["parameters_sha256"]  # the same runs, found by content where they now lie
    (moved / "data" / "Set5" / "HR" / "i1.png").unlink()  # other data: another identity
    assert identity_digest({**old, "data_root": str(moved / "data"),
                            "teacher_run_dir": str(moved / "archive" / "teacher")}) != marker["parameters_sha256"]


def test_migrating_needs_the_data_the_runs_were_trained_on(tmp_path):
    from fakd.study.migrate import migrate_archive

    data = _tiny_data_root(tmp_path / "data")
    _old_archive(tmp_path / "archive", runs=tmp_path / "runs", data=data)
    with pytest.raises(FakdError, match="give that data"):
        migrate_archive(tmp_path / "archive", data_root=None)
