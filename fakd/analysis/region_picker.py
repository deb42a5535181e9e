"""Choosing which region of a large photo the explorer shows: an anywidget with the whole photo.

A photo larger than the explorer's side is explored as a ``side``×``side`` region at full resolution
(``fakd.analysis.explorer_sources.photo_region``). This widget shows the whole photo, scaled down to
fit ``PREVIEW_PX`` (only the preview travels to the browser), with the region's box; a click sets
``centre`` (y, x) in the photo's own pixels, and the app takes the region around it.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import numpy as np
import traitlets
from PIL import Image

PREVIEW_PX = (280, 560)  # the preview fits in this height and width (CSS pixels)


class RegionPicker(anywidget.AnyWidget):
    """The whole photo with the shown region's box; ``centre`` [y, x] (photo pixels) is set by a click."""

    _esm = Path(__file__).with_name("region_picker.js")
    preview = traitlets.Bytes(b"").tag(sync=True)
    preview_size = traitlets.List([0, 0]).tag(sync=True)
    photo_size = traitlets.List([0, 0]).tag(sync=True)
    box = traitlets.List([0, 0, 0, 0]).tag(sync=True)  # top, left, height, width in photo pixels
    centre = traitlets.List([0, 0]).tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)

    def show(self, photo: np.ndarray, *, box: tuple[int, int, int, int], caption: str) -> None:
        """Show ``photo`` (H, W, 3) uint8 with ``box`` marked; ``caption`` is plain text."""
        height, width = photo.shape[:2]
        factor = min(1.0, PREVIEW_PX[0] / height, PREVIEW_PX[1] / width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        resample = Image.Resampling.BOX if factor < 1 else Image.Resampling.NEAREST
        preview = np.asarray(Image.fromarray(photo).resize(size, resample))
        with self.hold_sync():
            if [height, width] != self.photo_size or self.preview_size != [size[1], size[0]] or not self.preview:
                self.preview = np.ascontiguousarray(preview, dtype=np.uint8).tobytes()
                self.preview_size = [size[1], size[0]]
                self.photo_size = [height, width]
            self.box = [int(value) for value in box]
            self.caption = caption
