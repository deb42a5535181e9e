"""Affinity maps for pointing at pixels: unit features once, then each view is a few products.

The explorer computes a model's tap features on an image once (``unit_features``: every position's
C-vector scaled to unit length, position-major (N, C) float32). After that

- the affinity row of a pixel (its cosine similarity to every position) is one matrix-vector
  product per tap (``affinity_rows``), so a click costs microseconds of arithmetic, not a forward;
- the per-position agreement of a student with a teacher, mean_m |A_s[n, m] − A_t[n, m]| as an
  (h, w) map (``agreement_map``; its mean is the FAKD loss term of that tap), is made in row blocks
  of a bounded size, never the N×N matrices;
- the full affinity matrix of a small crop (``crop_matrix``) is the product of the crop's vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from fakd.analysis.affinity_view import pixel_to_position, tap_features
from fakd.distill import normalise_positions

BLOCK_ELEMENTS = 2**21  # rows of A per block in agreement_map: at most this many entries (8 MB) per matrix


@dataclass(frozen=True)
class UnitFeatures:
    """One model's unit feature vectors on one image: ``{tap: (N, C) float32}`` and the map size (h, w)."""

    units: dict[str, Tensor]
    size: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return sum(unit.numel() * unit.element_size() for unit in self.units.values())


def unit_features(model: nn.Module, lr: Tensor, *, taps: Sequence[str]) -> UnitFeatures:
    """``model``'s features at ``taps`` on one LR image, unit length per position, position-major."""
    features = tap_features(model, lr, taps)
    sizes = {tuple(feat.shape[-2:]) for feat in features.values()}
    if len(sizes) != 1:
        raise ValueError(f"taps of different map sizes: {sorted(sizes)}")
    units = {tap: normalise_positions(feat)[0].transpose(0, 1).contiguous() for tap, feat in features.items()}
    return UnitFeatures(units=units, size=sizes.pop())


def affinity_rows(features: UnitFeatures, pixel: tuple[int, int]) -> dict[str, np.ndarray]:
    """``{tap: (h, w) row of A for pixel (y, x)}``: one matrix-vector product per tap."""
    position = pixel_to_position(pixel, size=features.size)
    return {tap: torch.mv(unit, unit[position]).reshape(features.size).numpy()
            for tap, unit in features.units.items()}


def agreement_map(student: Tensor, teacher: Tensor, *, size: tuple[int, int],
                  block_elements: int = BLOCK_ELEMENTS) -> np.ndarray:
    """mean over m of |A_s[n, m] − A_t[n, m]| for every position n, as an (h, w) map.

    ``student`` and ``teacher`` are (N, C_s) and (N, C_t) unit vectors of one tap; rows of A are made
    in blocks of at most ``block_elements`` entries, so memory stays bounded whatever N is.
    """
    positions = student.shape[0]
    if teacher.shape[0] != positions:
        raise ValueError(f"student and teacher maps differ in size: {positions} vs {teacher.shape[0]} positions")
    step = max(1, block_elements // positions)
    out = torch.empty(positions, dtype=torch.float64)
    for start in range(0, positions, step):
        stop = min(positions, start + step)
        block = student[start:stop] @ student.T - teacher[start:stop] @ teacher.T
        out[start:stop] = block.abs().double().mean(dim=1)
    return out.reshape(size).numpy()


def crop_box(pixel: tuple[int, int], *, side: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the ``side``×``side`` crop centred on ``pixel``, kept inside the map."""
    height, width = size
    crop_h, crop_w = min(side, height), min(side, width)
    top = min(max(0, int(pixel[0]) - crop_h // 2), height - crop_h)
    left = min(max(0, int(pixel[1]) - crop_w // 2), width - crop_w)
    return top, left, crop_h, crop_w


def crop_matrix(unit: Tensor, *, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """The affinity matrix of the positions inside ``box`` (row-major within the crop): (n, n), n = h·w of the box."""
    top, left, crop_h, crop_w = box
    grid = unit.reshape(size[0], size[1], -1)[top:top + crop_h, left:left + crop_w].reshape(crop_h * crop_w, -1)
    return (grid @ grid.T).numpy()
