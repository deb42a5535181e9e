"""`fakd evaluate --model bicubic` and `fakd degrade` end to end, against the published bicubic rows."""

import json

import numpy as np
import pytest
from PIL import Image

from fakd.cli import main

# Published bicubic rows (docs/design.md, Conventions): PSNR / SSIM on Y, border crop = scale.
PUBLISHED_BICUBIC = {
    ("Set5", 2): (33.66, 0.9299), ("Set5", 3): (30.39, 0.8682), ("Set5", 4): (28.42, 0.8104),
    ("B100", 2): (29.56, 0.8431), ("B100", 3): (27.21, 0.7385), ("B100", 4): (25.96, 0.6675),
}


@pytest.mark.parametrize("dataset, scale", [  # B100 (100 images) takes seconds per scale: slow
    pytest.param(dataset, scale, marks=[pytest.mark.slow] if dataset == "B100" else [])
    for dataset, scale in sorted(PUBLISHED_BICUBIC)])
def test_bicubic_reproduces_published_rows(shared_data, tmp_path, dataset, scale, capsys):
    out = tmp_path / "bicubic.json"
    code = main(["evaluate", "--model", "bicubic", "--dataset", dataset, "--scale", str(scale),
                 "--data-root", str(shared_data), "--json", str(out)])
    assert code == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["model"] == "bicubic" and row["dataset"] == dataset and row["scale"] == scale
    assert row["n_images"] == (5 if dataset == "Set5" else 100)
    expected_psnr, expected_ssim = PUBLISHED_BICUBIC[(dataset, scale)]
    assert row["psnr"] == pytest.approx(expected_psnr, abs=0.02)
    assert row["ssim"] == pytest.approx(expected_ssim, abs=0.001)
    assert f"{row['psnr']:.2f} / {row['ssim']:.4f}" in capsys.readouterr().out


def test_degrade_matches_matlab_lr(shared_data, tmp_path):
    out = tmp_path / "lr"
    assert main(["degrade", "--scale", "4", "--input", str(shared_data / "Set5" / "HR"), "--output", str(out)]) == 0
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted(path.name for path in (shared_data / "Set5" / "HR").iterdir())
    equal = total = 0
    for name in written:
        ours = np.asarray(Image.open(out / name), dtype=np.int16)
        matlab = np.asarray(Image.open(shared_data / "Set5" / "LR_bicubic" / "X4" / name).convert("RGB"), dtype=np.int16)
        assert ours.shape == matlab.shape
        assert np.abs(ours - matlab)[3:-3, 3:-3].max() <= 1
        equal, total = equal + np.sum(ours == matlab), total + ours.size
    assert equal / total >= 0.98


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    return lines[0]


def test_degrade_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["degrade", "--scale", "2", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "nope" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_degrade_corrupt_image_leaves_nothing_behind(tmp_path, capsys):
    source = tmp_path / "hr"
    source.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(source / "good.png")
    (source / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["degrade", "--scale", "2", "--input", str(source), "--output", str(tmp_path / "o")]) == 2
    assert "broken.png" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_degrade_greyscale_becomes_rgb(tmp_path):
    source = tmp_path / "hr"
    source.mkdir()
    Image.fromarray(np.arange(24 * 24, dtype=np.uint8).reshape(24, 24)).save(source / "grey.png")
    assert main(["degrade", "--scale", "3", "--input", str(source), "--output", str(tmp_path / "o")]) == 0
    assert np.asarray(Image.open(tmp_path / "o" / "grey.png")).shape == (8, 8, 3)


@pytest.mark.parametrize("argv, needle", [
    (["evaluate", "--model", "bicubic", "--dataset", "NoSuchSet", "--scale", "2"], "NoSuchSet"),
    (["evaluate", "--model", "bicubic", "--dataset", "skimage-test", "--scale", "0"], "--scale"),
    (["evaluate", "--model", "nearest", "--dataset", "skimage-test", "--scale", "2"], "nearest"),
    (["evaluate", "--model", "bicubic", "--dataset", "Set5", "--scale", "2", "--data-root", "/no/such/root"], "/no/such/root"),
])
def test_evaluate_bad_input_is_one_line_exit_2(argv, needle, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse rejects before the handler runs
        code = exit_.code
    assert code == 2
    assert needle in _one_line_error(capsys)


def test_evaluate_missing_premade_lr_folder(tmp_path, capsys):
    hr = tmp_path / "Mine" / "HR"
    hr.mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(hr / "a.png")
    code = main(["evaluate", "--model", "bicubic", "--dataset", str(tmp_path / "Mine"), "--scale", "2",
                 "--lr-source", "premade"])
    assert code == 2
    assert "LR_bicubic" in _one_line_error(capsys)


def test_evaluate_embedded_default_runs_without_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("FAKD_DATA_ROOT", raising=False)
    out = tmp_path / "rows.json"
    assert main(["evaluate", "--model", "bicubic", "--dataset", "skimage-test", "--scale", "3", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["n_images"] >= 2 and 20 < row["psnr"] < 40 and 0.5 < row["ssim"] < 1.0
