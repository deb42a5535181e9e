"""Super-resolve a large image in tiles so memory stays bounded.

The LR image is cut into a grid of ``tile``×``tile`` cores; each core is run with ``overlap`` extra
LR pixels of real image context on every side (less at the image border), and only the core's part
of the output is kept. Every output pixel therefore comes from exactly one tile, with no blending.
For a purely convolutional network (EDSR) whose receptive-field radius is at most ``overlap`` the
result equals the untiled output up to float rounding. Networks with global operations — RCAN's
channel attention averages each feature map over the whole input — see per-tile statistics, so
their tiled output differs slightly from the untiled one (measured in ``tests/test_engine_tiling.py``);
an image no larger than one tile (plus overlap) is never split.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fakd.errors import FakdError

DEFAULT_TILE = 192
DEFAULT_OVERLAP = 32


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of the cores covering ``length`` pixels with cores of at most ``tile``."""
    return list(range(0, length, tile))


@torch.no_grad()
def upscale_tiled(
    model: Callable[[torch.Tensor], torch.Tensor],
    lr: torch.Tensor,
    *,
    scale: int,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> torch.Tensor:
    """``model(lr)`` for a (1, 3, h, w) float batch, computed tile by tile; returns (1, 3, h·s, w·s)."""
    if lr.dim() != 4 or lr.shape[0] != 1:
        raise FakdError(f"upscale_tiled takes one image as a (1, C, H, W) batch, got {tuple(lr.shape)}")
    if tile < 1 or overlap < 0:
        raise FakdError(f"tile must be ≥ 1 and overlap ≥ 0, got tile={tile}, overlap={overlap}")
    _, channels, height, width = lr.shape
    if height <= tile + overlap and width <= tile + overlap:
        return model(lr)
    output = None
    for top in tile_starts(height, tile):
        for left in tile_starts(width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            context_top, context_left = max(top - overlap, 0), max(left - overlap, 0)
            context_bottom, context_right = min(bottom + overlap, height), min(right + overlap, width)
            patch = model(lr[:, :, context_top:context_bottom, context_left:context_right])
            if output is None:
                output = patch.new_empty(1, patch.shape[1], height * scale, width * scale)
            y0, x0 = (top - context_top) * scale, (left - context_left) * scale
            output[:, :, top * scale : bottom * scale, left * scale : right * scale] = \
                patch[:, :, y0 : y0 + (bottom - top) * scale, x0 : x0 + (right - left) * scale]
    return output
