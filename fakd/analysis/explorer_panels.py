"""What each view of the interactive explorer draws, as ``Panel`` lists (no widgets here).

- ``pixel rows``: per tap, the image with the pixel, the teacher's and the student's affinity rows of
  that pixel, and student − teacher (the saved figure's layout, drawn in the browser);
- ``agreement maps``: per tap, mean_m |A_s[n, m] − A_t[n, m]| at every position n — where in the
  image the student's affinities differ from the teacher's (its mean is the FAKD term);
- ``crop matrices``: per tap, the full N×N affinity matrices of a small crop around the pixel
  (teacher, student, difference), positions in row-major order within the crop.

Every map panel of the image's size can be clicked to choose the pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fakd.analysis.affinity_canvas import Panel
from fakd.analysis.explorer import ALL_TAPS, AffinityExplorer

CROP_SIDE = 16  # crop matrices: a 16x16 crop is a 256x256 matrix


@dataclass(frozen=True)
class Choice:
    """What the explorer shows: image, the pair, one tap or all, the pixel (y, x)."""

    image: str
    teacher: str
    student: str
    tap: str
    pixel: tuple[int, int]


def _shown(rows: list[dict], tap: str) -> list[dict]:
    return rows if tap == ALL_TAPS else [row for row in rows if row["tap"] == tap]


def row_panels(explorer: AffinityExplorer, choice: Choice) -> list[Panel]:
    """Image, teacher row, student row and difference for each shown tap."""
    rows = explorer.rows(image=choice.image, teacher=choice.teacher, student=choice.student, pixel=choice.pixel)
    panels = []
    y, x = choice.pixel
    for index, row in enumerate(_shown(rows, choice.tap)):
        low = float(min(row["teacher_row"].min(), row["student_row"].min()))
        spread = float(np.abs(row["difference"]).max()) or 1e-6
        common = {"row": index, "marker": choice.pixel, "clickable": True}
        panels += [
            Panel(f"image, pixel (y={y}, x={x})", **common),
            Panel(f"{choice.teacher} · {row['tap']}\ncos {low:.2f} … 1", values=row["teacher_row"],
                  limits=(low, 1.0), **common),
            Panel(f"{choice.student} · {row['tap']}\ncos {low:.2f} … 1", values=row["student_row"],
                  limits=(low, 1.0), **common),
            Panel(f"student − teacher · {row['tap']}\n±{spread:.2f}, row mean |Δ| "
                  f"{float(np.abs(row['difference']).mean()):.3f}", values=row["difference"],
                  limits=(-spread, spread), palette="difference", **common),
        ]
    return panels


def agreement_panels(explorer: AffinityExplorer, choice: Choice) -> list[Panel]:
    """Image and the per-position mean |A_s − A_t| map for each shown tap (one colour scale for all)."""
    maps = explorer.agreement_maps(image=choice.image, teacher=choice.teacher, student=choice.student)
    shown = {tap: values for tap, values in maps.items() if choice.tap in (ALL_TAPS, tap)}
    high = max(float(values.max()) for values in shown.values()) or 1e-6
    y, x = choice.pixel
    panels = []
    for index, (tap, values) in enumerate(shown.items()):
        common = {"row": index, "marker": choice.pixel, "clickable": True}
        panels += [
            Panel(f"image, pixel (y={y}, x={x})", **common),
            Panel(f"mean |A_s − A_t| per position · {tap}\nmean {float(values.mean()):.3f} (the FAKD term), "
                  f"here {float(values[y, x]):.3f}, scale 0 … {high:.2f}", values=values, limits=(0.0, high),
                  palette="agreement", **common),
        ]
    return panels


def matrix_panels(explorer: AffinityExplorer, choice: Choice, *, side: int = CROP_SIDE) -> list[Panel]:
    """The crop around the pixel on the image, and per shown tap its teacher, student and difference matrices."""
    box, matrices = explorer.crop_matrices(image=choice.image, teacher=choice.teacher, student=choice.student,
                                           pixel=choice.pixel, side=side)
    count = box[2] * box[3]
    panels = []
    for index, entry in enumerate(matrix for matrix in matrices if choice.tap in (ALL_TAPS, matrix["tap"])):
        low = float(min(entry["teacher"].min(), entry["student"].min()))
        difference = entry["student"] - entry["teacher"]
        spread = float(np.abs(difference).max()) or 1e-6
        panels += [
            Panel(f"crop {box[3]}×{box[2]} at (y={box[0]}, x={box[1]})", row=index, box=box, clickable=True),
            Panel(f"{choice.teacher} · {entry['tap']}\nA is {count}×{count}", row=index, values=entry["teacher"],
                  limits=(low, 1.0), overlay=False),
            Panel(f"{choice.student} · {entry['tap']}\nA is {count}×{count}", row=index, values=entry["student"],
                  limits=(low, 1.0), overlay=False),
            Panel(f"student − teacher · {entry['tap']}\nmean |ΔA| {float(np.abs(difference).mean()):.3f}",
                  row=index, values=difference, limits=(-spread, spread), palette="difference", overlay=False),
        ]
    return panels


VIEWS = {"pixel rows": row_panels, "agreement maps": agreement_panels, "crop matrices": matrix_panels}
