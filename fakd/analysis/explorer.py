"""The affinity explorer behind ``01_affinity_explorer``: a selection → a figure, and widgets to choose it.

``AffinityExplorer.figure(image=..., student=..., tap=..., pixel=...)`` draws the teacher's and the
chosen student's affinity rows of one LR pixel (all taps or one), their difference and agreement.
``explorer_widgets`` wraps it in ipywidgets (image, student, tap, pixel sliders). Without a
frontend (papermill) widgets are inert, so the notebook also calls ``figure`` once with the
defaults and saves it — the same code path a slider change takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fakd.analysis.affinity_view import compare_affinities
from fakd.analysis.compare import StudyModel
from fakd.analysis.figures import affinity_figure, plt
from fakd.data import open_benchmark_set, resolve_data_root
from fakd.errors import FakdError

ALL_TAPS = "all taps"


def centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size``×``size`` part of a (3, H, W) image (smaller sides are kept whole)."""
    height, width = image.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return image[..., top:top + size, left:left + size]


def centre_crop_pair(pair, *, size: int, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned central crops of a ``BenchmarkPair``: LR ``size``² and the HR ``(size·scale)``² above it."""
    height, width = pair.lr.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    lr = pair.lr[..., top:top + size, left:left + size]
    hr = pair.hr[..., top * scale:(top + size) * scale, left * scale:(left + size) * scale]
    return lr, hr


def explorer_images(test_sets: Sequence[str], *, scale: int, data_root=None, crop: int = 96,
                    limit: int = 6) -> dict[str, torch.Tensor]:
    """``{"<set>/<name>": LR uint8 (3, h, w)}``, centre-cropped to ``crop`` LR pixels, at most ``limit``."""
    images = {}
    for name in test_sets:
        for pair in open_benchmark_set(name, scale=scale, data_root=resolve_data_root(data_root)):
            if len(images) >= limit:
                return images
            images[f"{name}/{pair.name}"] = centre_crop(pair.lr, crop)
    if not images:
        raise FakdError(f"no images in {list(test_sets)}")
    return images


@dataclass
class AffinityExplorer:
    """Images, the teacher, the students and their common taps; draws one selection."""

    images: dict[str, torch.Tensor]
    teacher: StudyModel
    students: list[StudyModel]

    def __post_init__(self):
        if not self.students:
            raise FakdError("the explorer needs at least one student model")
        self.taps = list(self.students[0].model.default_taps)

    def student(self, name: str) -> StudyModel:
        for entry in self.students:
            if entry.name == name:
                return entry
        raise FakdError(f"unknown student {name!r}; students: {', '.join(s.name for s in self.students)}")

    def default_selection(self) -> dict:
        """First image, first student, all taps, the image's centre pixel."""
        image = next(iter(self.images))
        height, width = self.images[image].shape[-2:]
        return {"image": image, "student": self.students[0].name, "tap": ALL_TAPS,
                "pixel": (height // 2, width // 2)}

    def selection(self, *, image: str = "", student: str = "", tap: str = "",
                  pixel: Sequence[int] = ()) -> dict:
        """The default selection with the given (non-empty) choices put in, checked."""
        chosen = self.default_selection()
        if image:
            if image not in self.images:
                raise FakdError(f"unknown image {image!r}; images: {', '.join(self.images)}")
            chosen["image"] = image
            height, width = self.images[image].shape[-2:]
            chosen["pixel"] = (height // 2, width // 2)
        if student:
            chosen["student"] = self.student(student).name
        if tap:
            if tap != ALL_TAPS and tap not in self.taps:
                raise FakdError(f"unknown tap {tap!r}; taps: {ALL_TAPS}, {', '.join(self.taps)}")
            chosen["tap"] = tap
        if pixel:
            if len(pixel) != 2:
                raise FakdError(f"pixel is [y, x], got {list(pixel)}")
            chosen["pixel"] = (int(pixel[0]), int(pixel[1]))
        return chosen

    def agreement(self, image: str) -> list[dict]:
        """Per student and tap: mean |A_s − A_t| and the correlation of A_s with A_t on ``image``."""
        rows = []
        height, width = self.images[image].shape[-2:]
        for entry in self.students:
            for view in self.views(image=image, student=entry.name, pixel=(height // 2, width // 2)):
                rows.append({"model": entry.name, "tap": view["tap"], "l1": view["l1"],
                             "correlation": view["correlation"], "trained": entry.trained})
        return rows

    def views(self, *, image: str, student: str, tap: str = ALL_TAPS, pixel: tuple[int, int]) -> list[dict]:
        if image not in self.images:
            raise FakdError(f"unknown image {image!r}; images: {', '.join(self.images)}")
        taps = self.taps if tap == ALL_TAPS else [tap]
        return compare_affinities(self.teacher.model, self.student(student).model, self.images[image],
                                  pixel=pixel, taps=taps)

    def figure(self, *, image: str, student: str, tap: str = ALL_TAPS, pixel: tuple[int, int]) -> plt.Figure:
        views = self.views(image=image, student=student, tap=tap, pixel=pixel)
        return affinity_figure(self.images[image], views, pixel=pixel, teacher_name=self.teacher.name,
                               student_name=student,
                               title=f"{image}: affinity of pixel (y={pixel[0]}, x={pixel[1]}), "
                                     f"{self.teacher.name} vs {student}")


def explorer_widgets(explorer: AffinityExplorer, *, selection: dict | None = None, show=None):
    """ipywidgets: image / student / tap dropdowns and y / x sliders; ``show(figure)`` on every change.

    ``show`` defaults to displaying the figure in the widget's output area. Returns the container
    widget (display it) with ``.controls`` (name → widget) for programmatic use.
    """
    import ipywidgets as widgets
    from IPython.display import display

    selection = selection or explorer.default_selection()
    output = widgets.Output()
    controls = {
        "image": widgets.Dropdown(options=list(explorer.images), value=selection["image"], description="image"),
        "student": widgets.Dropdown(options=[s.name for s in explorer.students], value=selection["student"],
                                    description="student"),
        "tap": widgets.Dropdown(options=[ALL_TAPS, *explorer.taps], value=selection["tap"], description="tap"),
        "y": widgets.IntSlider(value=selection["pixel"][0], min=0, description="pixel y", continuous_update=False),
        "x": widgets.IntSlider(value=selection["pixel"][1], min=0, description="pixel x", continuous_update=False),
    }

    def fit_sliders() -> None:
        height, width = explorer.images[controls["image"].value].shape[-2:]
        controls["y"].max, controls["x"].max = height - 1, width - 1

    def draw(*_) -> None:
        fit_sliders()
        figure = explorer.figure(image=controls["image"].value, student=controls["student"].value,
                                 tap=controls["tap"].value, pixel=(controls["y"].value, controls["x"].value))
        if show is not None:
            show(figure)
            return
        with output:
            output.clear_output(wait=True)
            display(figure)
            plt.close(figure)

    fit_sliders()
    controls["y"].value, controls["x"].value = selection["pixel"]
    for control in controls.values():
        control.observe(draw, names="value")
    box = widgets.VBox([widgets.HBox([controls["image"], controls["student"], controls["tap"]]),
                        widgets.HBox([controls["y"], controls["x"]]), output])
    box.controls = controls
    box.draw = draw
    return box
