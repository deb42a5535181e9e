"""What each view of the interactive explorer draws: column headers, ``Panel`` lists and a legend
(no widgets here). Every caption names the models it shows; formulas are HTML (italic A, subscripts);
names are escaped here, so a file name cannot inject markup.

- ``pixel rows``: the image once, then per tap the teacher's and the student's affinity rows of the
  pixel on one shared cosine scale, and student − teacher on a signed scale (red: student > teacher);
- ``agreement maps``: per tap, mean_m |A_s[n, m] − A_t[n, m]| at every position n — where in the
  image the student's affinities differ from the teacher's (its mean is the FAKD term);
- ``crop matrices``: per tap, the full N×N affinity matrices of a small crop around the pixel
  (teacher, student, difference), positions in row-major order within the crop, the clicked
  position's row and column marked.

Every map panel of the image's size can be clicked to choose the pixel.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from fakd.analysis.affinity_canvas import Column, Panel
from fakd.analysis.explorer import ALL_TAPS, AffinityExplorer

CROP_SIDE = 16  # crop matrices: a 16x16 crop is a 256x256 matrix
A_S, A_T = "<i>A</i><sub>s</sub>", "<i>A</i><sub>t</sub>"
BLEND = ("Every map over the image is blended with the image's grey levels (20%) so you can see where "
         "you are.")


@dataclass(frozen=True)
class Choice:
    """What the explorer shows: image, the pair, one tap or all, the pixel (y, x)."""

    image: str
    teacher: str
    student: str
    tap: str
    pixel: tuple[int, int]


@dataclass
class View:
    """One view's drawing: the grid's columns, its panels and a legend (HTML) under it."""

    columns: list[Column]
    panels: list[Panel]
    legend: str


def _name(text: str) -> str:
    return f"<b>{html.escape(text)}</b>"


def _shown(rows: list[dict], tap: str) -> list[dict]:
    return rows if tap == ALL_TAPS else [row for row in rows if row["tap"] == tap]


def _image_panel(choice: Choice, **marks) -> Panel:
    """The image once, in the first row (the legend goes under it)."""
    y, x = choice.pixel
    return Panel(f"{html.escape(choice.image)}<br>pixel (y={y}, x={x}): click to choose another", row=0, column=0,
                 clickable=True, **marks)


def _role(role: str, name: str) -> str:
    """A column header: the role and the model's name ("teacher" alone when that is its name)."""
    return _name(name) if name == role else f"{role}: {_name(name)}"


def _pair_columns(choice: Choice) -> list[Column]:
    return [Column("image"), Column(_role("teacher", choice.teacher)), Column(_role("student", choice.student)),
            Column("cos", kind="bar"), Column(f"difference {A_S} − {A_T}"), Column("Δ", kind="bar")]


def _bars(index: int, *, low: float, spread: float, student: str) -> list[Panel]:
    return [Panel("cosine, one scale<br>for teacher<br>and student", row=index, column=3, limits=(low, 1.0),
                  source="bar"),
            Panel("red: student<br>&gt; teacher<br>blue: student<br>&lt; teacher", row=index, column=5,
                  limits=(-spread, spread), palette="difference", source="bar")]


def row_panels(explorer: AffinityExplorer, choice: Choice) -> View:
    """The image once, then per shown tap: teacher row, student row (shared scale) and their difference."""
    rows = _shown(explorer.rows(image=choice.image, teacher=choice.teacher, student=choice.student,
                                pixel=choice.pixel), choice.tap)
    teacher, student = _name(choice.teacher), _name(choice.student)
    panels = [_image_panel(choice, marker=choice.pixel)]
    for index, row in enumerate(rows):
        low = float(min(row["teacher_row"].min(), row["student_row"].min()))
        spread = float(np.abs(row["difference"]).max()) or 1e-6
        tap = html.escape(row["tap"])
        common = {"row": index, "marker": choice.pixel, "clickable": True}
        panels += [
            Panel(f"{teacher} · {tap}: {A_T}[p, ·]", column=1, values=row["teacher_row"], limits=(low, 1.0), **common),
            Panel(f"{student} · {tap}: {A_S}[p, ·]", column=2, values=row["student_row"], limits=(low, 1.0), **common),
            Panel(f"{student} − {teacher} · {tap}<br>mean |{A_S} − {A_T}| over the row "
                  f"{float(np.abs(row['difference']).mean()):.3f}", column=4, values=row["difference"],
                  limits=(-spread, spread), palette="difference", **common),
            *_bars(index, low=low, spread=spread, student=choice.student),
        ]
    legend = (f"Each map is the affinity row of the clicked pixel p (cyan cross): its cosine similarity "
              f"{A_T}[p, ·] / {A_S}[p, ·] to every position of the feature map at that tap, bright = similar. "
              f"Teacher and student of a row share one colour scale (its bar: the row's lowest value to 1); "
              f"the difference has its own signed scale, white = equal. {BLEND}")
    return View(_pair_columns(choice), panels, legend)


def agreement_panels(explorer: AffinityExplorer, choice: Choice) -> View:
    """The image and the per-position mean |A_s − A_t| map for each shown tap (one colour scale for all)."""
    maps = explorer.agreement_maps(image=choice.image, teacher=choice.teacher, student=choice.student)
    shown = {tap: values for tap, values in maps.items() if choice.tap in (ALL_TAPS, tap)}
    high = max(float(values.max()) for values in shown.values()) or 1e-6
    y, x = choice.pixel
    teacher, student = _name(choice.teacher), _name(choice.student)
    panels = [_image_panel(choice, marker=choice.pixel)]
    for index, (tap, values) in enumerate(shown.items()):
        common = {"row": index, "marker": choice.pixel, "clickable": True}
        panels += [
            Panel(f"{student} vs {teacher} · {html.escape(tap)}<br>mean over the image "
                  f"{float(values.mean()):.3f} (the FAKD term), at (y={y}, x={x}) {float(values[y, x]):.3f}",
                  column=1, values=values, limits=(0.0, high), palette="agreement", **common),
            Panel("0: the same<br>affinities as<br>the teacher", row=index, column=2, limits=(0.0, high),
                  palette="agreement", source="bar"),
        ]
    columns = [Column("image"), Column(f"mean<sub><i>m</i></sub> |{A_S}[<i>n</i>, <i>m</i>] − {A_T}[<i>n</i>, "
                                       f"<i>m</i>]| at each position <i>n</i>: {student} vs {teacher}"),
               Column("|Δ|", kind="bar")]
    legend = (f"Where in the image the student's affinities differ from the teacher's: at each position n, the mean "
              f"absolute difference of its affinity rows. Its mean over the image is the FAKD loss term of that tap. "
              f"One scale for all taps. {BLEND}")
    return View(columns, panels, legend)


def matrix_panels(explorer: AffinityExplorer, choice: Choice, *, side: int = CROP_SIDE) -> View:
    """The crop around the pixel on the image, and per shown tap its teacher, student and difference matrices."""
    box, matrices = explorer.crop_matrices(image=choice.image, teacher=choice.teacher, student=choice.student,
                                           pixel=choice.pixel, side=side)
    top, left, height, width = box
    count = height * width
    line = (choice.pixel[0] - top) * width + (choice.pixel[1] - left)
    teacher, student = _name(choice.teacher), _name(choice.student)
    shown = [matrix for matrix in matrices if choice.tap in (ALL_TAPS, matrix["tap"])]
    panels = [Panel(f"{html.escape(choice.image)}<br>crop {height}×{width}: rows y {top}–{top + height - 1}, "
                    f"columns x {left}–{left + width - 1}<br>pixel (y={choice.pixel[0]}, x={choice.pixel[1]}) is "
                    f"position n = {line}", row=0, column=0, box=box, marker=choice.pixel,
                    clickable=True)]
    for index, entry in enumerate(shown):
        low = float(min(entry["teacher"].min(), entry["student"].min()))
        difference = entry["student"] - entry["teacher"]
        spread = float(np.abs(difference).max()) or 1e-6
        tap = html.escape(entry["tap"])
        common = {"row": index, "overlay": False, "line": line}
        panels += [
            Panel(f"{teacher} · {tap}: {A_T}[<i>n</i>, <i>m</i>], {count}×{count}<br><i>n</i>, <i>m</i>: crop "
                  f"positions, row-major", column=1, values=entry["teacher"], limits=(low, 1.0),
                  **common),
            Panel(f"{student} · {tap}: {A_S}[<i>n</i>, <i>m</i>], {count}×{count}<br>cyan: row and column "
                  f"<i>n</i> = {line}", column=2, values=entry["student"], limits=(low, 1.0),
                  **common),
            Panel(f"{student} − {teacher} · {tap}<br>mean |{A_S} − {A_T}| {float(np.abs(difference).mean()):.3f}",
                  column=4, values=difference, limits=(-spread, spread), palette="difference", **common),
            *_bars(index, low=low, spread=spread, student=choice.student),
        ]
    legend = (f"The full affinity matrices of the {count} positions in the yellow box: entry [<i>n</i>, <i>m</i>] is the "
              f"cosine of positions n and m. Rows and columns run over the crop in row-major order — position n = "
              f"{width}·(y − {top}) + (x − {left}), top-left first, then along each image row. The cyan lines mark "
              f"the clicked pixel's row and column (n = {line}). The crop is centred on the pixel and kept inside "
              f"the image.")
    return View(_pair_columns(choice), panels, legend)


VIEWS = {"pixel rows": row_panels, "agreement maps": agreement_panels, "crop matrices": matrix_panels}
