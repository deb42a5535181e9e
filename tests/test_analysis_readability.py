"""Figures stay readable at page width: no strip 30 inches wide, no white text on yellow, no clipped
value labels, no six panels in one row (issue 11)."""

import numpy as np
import pandas as pd
import torch
from PIL import Image

from fakd.analysis.figures import feature_steps_figure, plt, save_figure
from fakd.analysis.plots import agreement_figure, cost_figure, gain_per_dataset_figure

LABELS = ["no KD", "output KD", "FAKD", "FitNet", "AT", "FAKD p=2", "FAKD w=1", "FAKD w=100", "FAKD taps=body.2",
          "FAKD taps=body_tail"]


def _luminance(colour) -> float:
    red, green, blue = plt.matplotlib.colors.to_rgb(colour)
    return 0.299 * red + 0.587 * green + 0.114 * blue


def test_gain_per_dataset_of_a_full_sweep_fits_a_page(tmp_path):
    rows = [{"label": label, "dataset": dataset, "gain": 0.0 if label == "no KD" else 0.05 * index - 0.2,
             "psnr_ci": 0.03} for index, label in enumerate(LABELS) for dataset in ("Set5", "Set14", "B100")]
    path = save_figure(gain_per_dataset_figure(pd.DataFrame(rows), baseline="no KD", title="gain"),
                       tmp_path / "gain.png")
    width, height = Image.open(path).size
    assert width <= 1300 and width / height < 3, (width, height)  # was 3476 x 471


def test_agreement_numbers_contrast_with_their_cells():
    values = np.linspace(0.0, 1.0, 12)  # from viridis' dark purple to its light yellow
    agreement = pd.DataFrame({"model": [f"m{i // 3}" for i in range(12)], "tap": [f"t{i % 3}" for i in range(12)],
                              "correlation": values})
    figure = agreement_figure(agreement, title="agreement")
    axis = figure.axes[0]
    picture = axis.images[0]
    texts = axis.texts
    assert len(texts) == 12
    for text, value in zip(texts, values):
        cell = picture.cmap(picture.norm(value))
        assert abs(_luminance(text.get_color()) - _luminance(cell)) > 0.4, (value, text.get_color())
    plt.close(figure)


def test_cost_value_labels_lie_inside_their_axes():
    cost = pd.DataFrame({"model": ["teacher (rcan-cpu-teacher)", "student (rcan-cpu-student)"],
                         "params": [1297000, 550635], "multi_adds": [81.0e9, 38.5e9], "latency_s": [0.282, 0.146],
                         "latency_lr_size": [180, 180]})
    figure = cost_figure(cost, title="cost")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for axis in figure.axes:
        box = axis.get_window_extent(renderer)
        labels = [text for text in axis.texts if text.get_text()]
        assert len(labels) == 2
        for label in labels:
            assert label.get_window_extent(renderer).y1 <= box.y1, label.get_text()
    plt.close(figure)


def test_primer_steps_are_two_rows_of_three_with_readable_titles():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    feat = torch.rand(1, 16, 8, 8)
    figure = feature_steps_figure(image, feat, pixel=(4, 4), row=np.random.rand(8, 8))
    width, height = figure.get_size_inches()
    shown = [axis for axis in figure.axes if axis.get_title()]
    assert len(shown) == 6 and width <= 14 and height >= 8
    assert min(axis.title.get_fontsize() for axis in shown) >= 10
    plt.close(figure)
