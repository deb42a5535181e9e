"""The explorer's drawing surface: an anywidget that draws panels of small maps in the browser.

Why anywidget: one small ES module (``affinity_canvas.js``, no build step) renders the same widget in
JupyterLab, Notebook 7, VS Code and Voilà (``fakd explore``), and its traits carry raw bytes. Python
sends every map quantised to 0..255 in one buffer; the browser colours it with a 256-entry palette
and draws it on a canvas, so a click costs one byte per map pixel on the wire (37 kB for three taps
at the cpu profile's 64×64 crop) and no image encoding (a matplotlib
redraw of the old explorer took seconds). Pointer-down on a clickable panel (and pointer-move with
``hover`` on) sets ``pixel``; the app observes it and calls ``show`` with the new maps.

Layout: a grid whose columns carry headers (``Column``: a map column or a colour-bar column); the map
columns share the widget's width (``max_px`` at most each), so the maps are as large as the page
allows. A colour bar (``Panel.source == "bar"``) is drawn from its palette with its range's values;
captions and headers are HTML made in Python (names escaped there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anywidget
import numpy as np
import traitlets
from matplotlib import colormaps

from fakd.analysis.figures import AFFINITY_MAP, DIFFERENCE_MAP

PALETTES = {"affinity": AFFINITY_MAP, "difference": DIFFERENCE_MAP, "agreement": "viridis"}
MAX_PX = 384  # the largest side a map is drawn at (CSS pixels); smaller when the page is narrow


@dataclass(frozen=True)
class Column:
    """A column of the grid: its header (HTML) and whether it holds maps or colour bars."""

    header: str
    kind: str = "map"  # "map" | "bar"


@dataclass
class Panel:
    """One map to draw: ``values`` (h, w) (None: the image itself), its colour range and marks.

    ``row`` and ``column`` place it in the grid (``rows`` > 1: it spans that many rows, e.g. the image
    beside all taps); ``marker`` (y, x) and ``box`` (top, left, h, w) are in the panel's own pixels;
    ``line`` marks one row and column of a matrix (the clicked pixel's position n); ``clickable``
    panels select a pixel of the image (same size as the image). ``source="bar"``: a colour bar of
    ``palette`` over ``limits`` (no values). ``title`` is the caption, as HTML.
    """

    title: str
    row: int
    column: int = 0
    values: np.ndarray | None = None
    limits: tuple[float, float] = (0.0, 1.0)
    palette: str = "affinity"
    marker: tuple[int, int] | None = None
    box: tuple[int, int, int, int] | None = None
    line: int | None = None
    clickable: bool = False
    overlay: bool = True
    rows: int = 1
    source: str = ""  # "" : "map" with values, else "image"; "bar": a colour bar


def quantise(values: np.ndarray, *, limits: tuple[float, float]) -> np.ndarray:
    """``values`` mapped linearly from ``limits`` onto palette indices 0..255 (clipped), uint8."""
    low, high = float(limits[0]), float(limits[1])
    spread = high - low if high > low else 1.0
    scaled = (np.asarray(values, dtype=np.float64) - low) * (255.0 / spread)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def palette_bytes(names: Sequence[str]) -> bytes:
    """256 RGB uint8 colours per palette name, concatenated."""
    ramp = np.linspace(0.0, 1.0, 256)
    return b"".join((colormaps[PALETTES[name]](ramp)[:, :3] * 255).round().astype(np.uint8).tobytes()
                    for name in names)


class AffinityCanvas(anywidget.AnyWidget):
    """Panels drawn client-side; ``pixel`` [y, x] is set by a click (or hover) on a clickable panel."""

    _esm = Path(__file__).with_name("affinity_canvas.js")
    _css = Path(__file__).with_name("affinity_canvas.css")
    image = traitlets.Bytes(b"").tag(sync=True)
    image_size = traitlets.List([0, 0]).tag(sync=True)
    panels = traitlets.List([]).tag(sync=True)
    maps = traitlets.Bytes(b"").tag(sync=True)
    palette_names = traitlets.List(list(PALETTES)).tag(sync=True)
    palette_data = traitlets.Bytes(palette_bytes(list(PALETTES))).tag(sync=True)
    pixel = traitlets.List([0, 0]).tag(sync=True)
    hover = traitlets.Bool(False).tag(sync=True)
    columns = traitlets.List([]).tag(sync=True)
    legend = traitlets.Unicode("").tag(sync=True)
    max_px = traitlets.Int(MAX_PX).tag(sync=True)
    version = traitlets.Int(0).tag(sync=True)

    def show(self, panels: Sequence[Panel], *, columns: Sequence[Column] = (), legend: str = "",
             image: np.ndarray | None = None) -> None:
        """Replace what is drawn in one message: ``panels`` under ``columns`` with ``legend`` below
        (HTML), and the (h, w, 3) uint8 ``image`` when it changed."""
        specs, chunks, offset = [], [], 0
        for panel in panels:
            spec = {"title": panel.title, "row": panel.row, "column": panel.column, "rows": panel.rows,
                    "palette": panel.palette, "clickable": panel.clickable, "overlay": panel.overlay,
                    "marker": None if panel.marker is None else list(panel.marker),
                    "box": None if panel.box is None else list(panel.box), "line": panel.line, "offset": offset}
            if panel.source == "bar":
                spec.update(source="bar", height=0, width=0, limits=[float(v) for v in panel.limits])
            elif panel.values is None:
                height, width = self.image_size if image is None else image.shape[:2]
                spec.update(source="image", height=int(height), width=int(width))
            else:
                indices = quantise(panel.values, limits=panel.limits)
                spec.update(source="map", height=int(indices.shape[0]), width=int(indices.shape[1]))
                chunks.append(indices.tobytes())
                offset += indices.size
            specs.append(spec)
        with self.hold_sync():
            if image is not None:
                self.image = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
                self.image_size = [int(image.shape[0]), int(image.shape[1])]
            self.columns = [{"header": column.header, "kind": column.kind} for column in columns]
            self.legend = legend
            self.panels = specs
            self.maps = b"".join(chunks)
            self.version += 1
