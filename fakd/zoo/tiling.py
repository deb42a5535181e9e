"""Super-resolve a large image in tiles so memory stays bounded.

The LR image is cut into a grid of ``tile``×``tile`` cores; each core is run with ``overlap`` extra
LR pixels of real image context on every side (less at the image border), and only the core's part
of the output is kept. Every output pixel therefore comes from exactly one tile, with no blending.
For a purely convolutional network (EDSR) whose receptive-field radius is at most ``overlap`` the
result equals the untiled output up to float rounding. Networks with global operations — RCAN's
channel attention averages each feature map over the whole input — see per-tile statistics, so
their tiled output differs slightly from the untiled one (measured in ``tests/test_zoo_tiling.py``);
an image no larger than one tile (plus overlap) is never split.

``upscale_bands`` is what ``fakd upscale`` runs: the LR image stays uint8, each tile is converted to
float on its way into the model, and the SR image is produced as uint8 bands of one tile row, which
the caller encodes as they come (``fakd.data.image_io.write_png_bands``). So the SR image is never
whole in memory; the peak is the LR image (uint8, 3 bytes per LR pixel; decoding it takes about 4 more
while Pillow holds its copy), one output band (``tile·s`` rows: ``3·tile·s²`` bytes per LR column)
and the model's work on one tile. Measured in ``tests/test_guarantee_memory.py``: about 10 MB per
LR megapixel plus a constant (the default tile at x4: 2.3 MB per 100 LR columns for the band).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from fakd.data.image_io import tensor_to_image

DEFAULT_TILE = 192
DEFAULT_OVERLAP = 32


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of the cores covering ``length`` pixels with cores of at most ``tile``."""
    return list(range(0, length, tile))


def _check_tiling(tile: int, overlap: int) -> None:
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be ≥ 1 and overlap ≥ 0, got tile={tile}, overlap={overlap}")


def _core_size(height: int, width: int, *, tile: int, overlap: int) -> tuple[int, int]:
    """The core size used: the whole image when it fits in one tile plus its overlap."""
    if height <= tile + overlap and width <= tile + overlap:
        return height, width
    return tile, tile


def tile_boxes(height: int, width: int, *, tile: int, overlap: int, top: int = 0):
    """(core, context) boxes ``(top, left, bottom, right)`` of one row of tiles starting at ``top``."""
    core_h, core_w = _core_size(height, width, tile=tile, overlap=overlap)
    bottom = min(top + core_h, height)
    for left in tile_starts(width, core_w):
        right = min(left + core_w, width)
        context = (max(top - overlap, 0), max(left - overlap, 0), min(bottom + overlap, height),
                   min(right + overlap, width))
        yield (top, left, bottom, right), context


def band_starts(height: int, width: int, *, tile: int, overlap: int) -> list[int]:
    """First LR row of each band (one row of tiles) of an image."""
    return tile_starts(height, _core_size(height, width, tile=tile, overlap=overlap)[0])


def _core_of(patch: torch.Tensor, core, context, scale: int) -> torch.Tensor:
    (top, left, bottom, right), (context_top, context_left, _, _) = core, context
    y0, x0 = (top - context_top) * scale, (left - context_left) * scale
    return patch[..., y0 : y0 + (bottom - top) * scale, x0 : x0 + (right - left) * scale]


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
        raise ValueError(f"upscale_tiled takes one image as a (1, C, H, W) batch, got {tuple(lr.shape)}")
    _check_tiling(tile, overlap)
    _, _, height, width = lr.shape
    output = None
    for band_top in band_starts(height, width, tile=tile, overlap=overlap):
        for core, context in tile_boxes(height, width, tile=tile, overlap=overlap, top=band_top):
            patch = model(lr[:, :, context[0]:context[2], context[1]:context[3]])
            if output is None:
                output = patch.new_empty(1, patch.shape[1], height * scale, width * scale)
            top, left, bottom, right = core
            output[:, :, top * scale : bottom * scale, left * scale : right * scale] = \
                _core_of(patch, core, context, scale)
    return output


def count_tiles(height: int, width: int, *, tile: int, overlap: int) -> int:
    """How many model calls ``upscale_bands`` makes for an image (for progress bars)."""
    core_h, core_w = _core_size(height, width, tile=tile, overlap=overlap)
    return len(tile_starts(height, core_h)) * len(tile_starts(width, core_w))


@torch.no_grad()
def upscale_bands(
    model: Callable[[torch.Tensor], torch.Tensor],
    lr: torch.Tensor,
    *,
    scale: int,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    device: torch.device | str = "cpu",
    on_tile: Callable[[], None] | None = None,
) -> Iterator[np.ndarray]:
    """The SR image of a uint8 (3, h, w) LR image, as uint8 (rows, w·s, 3) bands from top to bottom.

    Each tile goes to ``device`` as float in [0, 1]; the output is clamped and rounded half up
    (``fakd.data.image_io.tensor_to_image``). ``on_tile`` is called after each model call.
    """
    if lr.dtype != torch.uint8 or lr.dim() != 3 or lr.shape[0] != 3:
        raise ValueError(f"upscale_bands takes a uint8 (3, H, W) image, got {lr.dtype} {tuple(lr.shape)}")
    _check_tiling(tile, overlap)
    _, height, width = lr.shape
    for band_top in band_starts(height, width, tile=tile, overlap=overlap):
        band = None
        for core, context in tile_boxes(height, width, tile=tile, overlap=overlap, top=band_top):
            patch = lr[:, context[0]:context[2], context[1]:context[3]].to(device).float().div_(255.0)
            sr = tensor_to_image(_core_of(model(patch.unsqueeze(0))[0], core, context, scale))
            if band is None:
                band = np.empty((sr.shape[0], width * scale, 3), dtype=np.uint8)
            band[:, core[1] * scale : core[3] * scale] = sr
            if on_tile is not None:
                on_tile()
        yield band
