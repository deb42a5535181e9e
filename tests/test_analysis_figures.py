"""Figures: written as PNG, with titles, labelled axes and colour bars; the explorer's widgets redraw."""

import numpy as np
import pandas as pd
import pytest
import torch

from fakd.analysis.compare import StudyModel
from fakd.analysis.explorer import ALL_TAPS, AffinityExplorer
from fakd.analysis.figures import affinity_figure, crops_figure, pick_crop_box, save_figure
from fakd.analysis.plots import gain_per_dataset_figure, training_curves_figure
from fakd.errors import FakdError
from fakd.models import build_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def colour_bars(figure) -> int:
    return sum(axis.get_label() == "<colorbar>" for axis in figure.axes)


@pytest.fixture(scope="module")
def explorer():
    torch.manual_seed(0)
    teacher = StudyModel("teacher", "teacher", build_model("rcan-smoke-teacher", scale=4).eval(), False)
    student = StudyModel("student", "student", build_model("rcan-smoke-student", scale=4).eval(), False)
    images = {"a/one": torch.randint(0, 256, (3, 16, 20), dtype=torch.uint8),
              "a/two": torch.randint(0, 256, (3, 12, 12), dtype=torch.uint8)}
    return AffinityExplorer(images, teacher=teacher, students=[student])


def test_affinity_figure_has_a_row_per_tap_with_colour_bars(tmp_path, explorer):
    selection = explorer.selection(pixel=[3, 5])
    assert selection == {"image": "a/one", "student": "student", "tap": ALL_TAPS, "pixel": (3, 5)}
    figure = explorer.figure(**selection)
    taps = len(explorer.taps)
    assert colour_bars(figure) == 3 * taps  # teacher, student, difference per tap
    titled = [axis for axis in figure.axes if axis.get_label() != "<colorbar>"]
    assert len(titled) == 4 * taps and all(axis.get_title() and axis.get_xlabel() for axis in titled)
    path = save_figure(figure, tmp_path / "affinity.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(FakdError, match="unknown tap"):
        explorer.selection(tap="body.99")
    with pytest.raises(ValueError, match="no taps"):
        affinity_figure(explorer.images["a/one"], [], pixel=(0, 0), title="x")


def test_crops_figure_outlines_the_box_and_zooms_it(tmp_path):
    hr = np.zeros((64, 64, 3), dtype=np.uint8)
    hr[40:56, 8:24] = (np.indices((16, 16)).sum(axis=0) % 2 * 255)[:, :, None]  # a checkerboard: the only detail
    box = pick_crop_box(hr, size=16)
    assert box == (40, 8, 16)
    figure = crops_figure({"HR": hr, "bicubic": hr}, box=box, title="crops", scores={"bicubic": "PSNR 1 dB"})
    assert [axis.get_title() for axis in figure.axes[:2]] == ["HR", "bicubic\nPSNR 1 dB"]
    assert all(len(axis.child_axes) == 1 for axis in figure.axes[:2])  # one zoomed inset each
    assert save_figure(figure, tmp_path / "crops.png").read_bytes()[:8] == PNG_MAGIC


def test_training_curves_and_gain_plots(tmp_path):
    metrics = pd.DataFrame({"iteration": [1, 2, 3, 4], "lr": 1e-4, "loss": [0.3, 0.2, 0.15, 0.1],
                            "l1_hr": [0.2, 0.15, 0.1, 0.08], "val_psnr": [None, 20.0, None, 21.0]})
    figure = training_curves_figure(metrics, title="teacher")
    losses, psnr = figure.axes
    assert [line.get_label() for line in losses.lines] == ["loss", "l1_hr"]
    assert psnr.get_ylabel().startswith("validation PSNR") and len(psnr.lines[0].get_xdata()) == 2
    save_figure(figure, tmp_path / "curves.png")
    with pytest.raises(FakdError, match="empty"):
        training_curves_figure(pd.DataFrame(), title="x")

    table = pd.DataFrame({"label": ["no KD", "FAKD"], "dataset": "Set5", "gain": [0.0, 0.1],
                          "psnr_ci": [0.05, float("nan")]})
    figure = gain_per_dataset_figure(table, baseline="no KD", title="gain")
    assert figure.axes[0].get_title() == "Set5" and "PSNR of no KD" in figure.texts[0].get_text()
    assert save_figure(figure, tmp_path / "gain.png").read_bytes()[:8] == PNG_MAGIC
