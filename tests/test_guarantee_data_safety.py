"""Guarantee: nothing a user owns is modified or deleted, and no command leaves half its outputs.

Each test names the case of issue 14 it covers; the CLI cases run ``fakd`` in a real subprocess.
"""

import errno
import json
import os

import numpy as np
import pytest
from guarantees_support import assert_one_line_error, random_image, run_fakd, snapshot, tiny_checkpoint

from fakd.cli import main
from fakd.data.image_io import read_image
from fakd.train.rundir import RunDirectory

SMOKE_STUDENT = ["train", "--role", "student", "--config", "smoke", "--set", "student.iterations=2", "--no-progress"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


# -- upscale / degrade outputs ----------------------------------------------------------------

@pytest.mark.slow
def test_upscale_into_the_input_folder_is_refused_and_originals_stay(checkpoint, tmp_path):
    photos = tmp_path / "photos"
    random_image(photos / "a.png")
    random_image(photos / "b.jpg", seed=1)
    before = snapshot(photos)
    assert_one_line_error(run_fakd("upscale", "--checkpoint", checkpoint, photos, "--output", photos),
                          "is an input folder")
    assert_one_line_error(run_fakd("upscale", "--checkpoint", checkpoint, photos / "a.png", "--output", photos),
                          "is an input folder")
    assert snapshot(photos) == before


def test_upscale_two_inputs_with_one_stem_is_refused(checkpoint, tmp_path):
    random_image(tmp_path / "in" / "x.png")
    random_image(tmp_path / "in" / "x.jpg", seed=1)
    assert_one_line_error(run_fakd("upscale", "--checkpoint", checkpoint, tmp_path / "in", "--output",
                                   tmp_path / "out"), "would both be written")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_upscale_never_replaces_an_existing_file_without_overwrite(checkpoint, tmp_path):
    random_image(tmp_path / "in" / "x.png")
    mine = random_image(tmp_path / "out" / "x.png", seed=7)
    before = snapshot(tmp_path / "out")
    assert_one_line_error(run_fakd("upscale", "--checkpoint", checkpoint, tmp_path / "in", "--output",
                                   tmp_path / "out"), "already exists")
    assert snapshot(tmp_path / "out") == before
    result = run_fakd("upscale", "--checkpoint", checkpoint, tmp_path / "in", "--output", tmp_path / "out",
                      "--overwrite")
    assert result.returncode == 0, result.stderr
    assert read_image(mine).shape == (40, 48, 3)


@pytest.mark.slow
def test_upscale_of_a_good_then_a_truncated_image_writes_nothing(checkpoint, tmp_path):
    random_image(tmp_path / "in" / "a_good.png")
    bad = random_image(tmp_path / "in" / "b_bad.png", height=60, width=60, seed=2)
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    line = assert_one_line_error(run_fakd("upscale", "--checkpoint", checkpoint, tmp_path / "in", "--output",
                                          tmp_path / "out"), "b_bad.png")
    assert "cannot read image" in line
    assert not (tmp_path / "out").exists(), "nothing half-written: the output folder was never made"


def test_upscale_failing_mid_batch_leaves_no_result(checkpoint, tmp_path, monkeypatch, capsys):
    """A failure after the first result was computed (here: the model on the second image) removes it."""
    import fakd.commands.upscale as upscale

    random_image(tmp_path / "in" / "a.png")
    random_image(tmp_path / "in" / "b.png", seed=1)
    real, calls = upscale.upscale_bands, []

    def failing(model, lr, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(model, lr, **kwargs)

    monkeypatch.setattr(upscale, "upscale_bands", failing)
    code = main(["upscale", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert code == 2 and "No space left" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_degrade_on_a_full_disk_leaves_no_partial_batch(tmp_path, monkeypatch, capsys):
    """ENOSPC on the 5th of 6 images: one line naming the file, and none of the 6 appears."""
    import fakd.atomic as atomic

    for index in range(6):
        random_image(tmp_path / "hr" / f"img{index}.png", height=16, width=16, seed=index)
    (tmp_path / "lr").mkdir()
    real_fsync, count = os.fsync, []

    def full_disk(descriptor):
        count.append(1)
        if len(count) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(descriptor)

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    code = main(["degrade", "--scale", "2", "--input", str(tmp_path / "hr"), "--output", str(tmp_path / "lr")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0] and "img4.png" in err[0]
    assert list((tmp_path / "lr").iterdir()) == [], "no image and no temporary file is left"


def test_degrade_into_the_input_folder_is_refused(tmp_path):
    random_image(tmp_path / "hr" / "a.png")
    before = snapshot(tmp_path / "hr")
    assert_one_line_error(run_fakd("degrade", "--scale", "2", "--input", tmp_path / "hr", "--output", tmp_path / "hr"),
                          "is the input folder")
    assert snapshot(tmp_path / "hr") == before


# -- run folders ------------------------------------------------------------------------------

@pytest.mark.slow
def test_overwrite_of_a_folder_that_is_not_a_run_deletes_nothing(tmp_path):
    """Issue case: a folder with a config.yaml and the user's own checkpoints/ (no fakd marker)."""
    folder = tmp_path / "mine"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text("my: settings\n")
    (folder / "checkpoints" / "best.pt").write_bytes(b"my precious weights")
    (folder / "checkpoints" / "notes.txt").write_text("mine")
    before = snapshot(folder)
    assert_one_line_error(run_fakd(*SMOKE_STUDENT, "--out", folder, "--overwrite"), "holds no fakd run")
    assert_one_line_error(run_fakd(*SMOKE_STUDENT, "--out", folder), "not empty")
    assert snapshot(folder) == before


def test_overwrite_of_a_run_deletes_only_fakd_files(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*SMOKE_STUDENT, "--out", str(run)]) == 0
    assert json.loads((run / "job.json").read_text())["format"] == "fakd-run"
    (run / "checkpoints" / "mine.pt").write_bytes(b"user file")
    (run / "notes.txt").write_text("user notes")
    (run / "plots").mkdir()
    (run / "plots" / "a.png").write_bytes(b"png")
    assert main([*SMOKE_STUDENT, "--out", str(run), "--overwrite"]) == 0
    assert (run / "checkpoints" / "mine.pt").read_bytes() == b"user file"
    assert (run / "notes.txt").read_text() == "user notes" and (run / "plots" / "a.png").is_file()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2, "the old run's log was replaced"


def test_a_run_from_before_the_marker_still_resumes(tmp_path, capsys):
    run = tmp_path / "old"
    assert main([*SMOKE_STUDENT, "--out", str(run)]) == 0
    job = json.loads((run / "job.json").read_text())
    legacy = {key: value for key, value in job.items() if key not in ("format", "version")}
    (run / "job.json").write_text(json.dumps(legacy))
    assert RunDirectory(run).holds_run()
    assert main([*SMOKE_STUDENT, "--out", str(run), "--resume"]) == 0


def test_a_folder_with_a_foreign_job_json_is_not_a_run(tmp_path):
    (tmp_path / "job.json").write_text('{"format": "someone-else", "role": "teacher", "model": "x"}')
    assert not RunDirectory(tmp_path).holds_run()
    (tmp_path / "job.json").write_text("[1, 2]")
    assert not RunDirectory(tmp_path).holds_run()


def test_absurd_batch_size_leaves_no_run_folder(tmp_path):
    """Issue case: data.batch_size=1000000000 was OOM-killed and left a folder needing --overwrite."""
    assert_one_line_error(run_fakd(*SMOKE_STUDENT, "--set", "data.batch_size=1000000000", "--out", tmp_path / "run"),
                          "data.batch_size")
    assert not (tmp_path / "run").exists()


# -- images are read as documented -------------------------------------------------------------

def test_sixteen_bit_colour_png_is_rounded_as_documented(tmp_path):
    import png

    wide = np.random.default_rng(0).integers(0, 65536, size=(7, 9, 3), dtype=np.uint16)
    wide[0, :4, 0] = [255, 32895, 65407, 128]  # where rounding differs from keeping the high byte
    png.from_array(wide.reshape(7, -1), "RGB;16").save(tmp_path / "wide.png")
    expected = np.floor(wide.astype(np.float64) * 255.0 / 65535.0 + 0.5).astype(np.uint8)
    assert np.array_equal(read_image(tmp_path / "wide.png"), expected)
    assert not np.array_equal(expected, (wide >> 8).astype(np.uint8)), "the test can tell the two rules apart"
