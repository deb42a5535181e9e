"""Affinity maps from unit features computed once, against the straightforward float64 computation."""

import numpy as np
import pytest
import torch

from fakd.analysis.affinity_maps import (UnitFeatures, affinity_rows, agreement_map, crop_box, crop_matrix,
                                         unit_features)
from fakd.distill import affinity_loss
from fakd.errors import FakdError
from fakd.models import build_model


def reference_affinity(feat: torch.Tensor) -> np.ndarray:
    """A = F̂ᵀF̂ in float64 the plain way: each position's C-vector divided by its norm, all N×N products."""
    flat = feat.double().reshape(feat.shape[-3], -1)  # (C, N)
    unit = flat / flat.norm(dim=0, keepdim=True)
    return (unit.T @ unit).numpy()


def features(seed: int, channels: int, size=(9, 11)) -> torch.Tensor:
    return torch.randn(1, channels, *size, generator=torch.Generator().manual_seed(seed))


def units_of(feat: torch.Tensor, tap: str = "t") -> UnitFeatures:
    from fakd.distill import normalise_positions

    return UnitFeatures(units={tap: normalise_positions(feat)[0].T.contiguous()}, size=tuple(feat.shape[-2:]))


def test_a_row_is_the_pixels_row_of_the_full_matrix():
    feat = features(0, 16)
    reference = reference_affinity(feat)
    for pixel in [(0, 0), (4, 7), (8, 10)]:
        row = affinity_rows(units_of(feat), pixel)["t"]
        assert row.shape == (9, 11)
        np.testing.assert_allclose(row.ravel(), reference[pixel[0] * 11 + pixel[1]], atol=1e-6)
        assert row[pixel] == pytest.approx(1.0, abs=1e-6)


def test_a_pixel_outside_the_map_is_a_clear_error():
    with pytest.raises(FakdError, match="outside"):
        affinity_rows(units_of(features(0, 4)), (9, 0))


@pytest.mark.parametrize("block_elements", [11, 99 * 5, 2**21])
def test_the_agreement_map_is_the_mean_row_difference_whatever_the_block(block_elements):
    student, teacher = features(1, 8), features(2, 24)  # channel counts differ, as in FAKD
    expected = np.abs(reference_affinity(student) - reference_affinity(teacher)).mean(axis=1).reshape(9, 11)
    got = agreement_map(units_of(student).units["t"], units_of(teacher).units["t"], size=(9, 11),
                        block_elements=block_elements)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # its mean over positions is the FAKD loss term of the tap
    assert got.mean() == pytest.approx(float(affinity_loss(student, teacher, p=1)), abs=1e-6)


def test_the_crop_matrix_is_the_crops_block_of_the_full_matrix():
    feat = features(3, 12)
    box = crop_box((1, 10), side=4, size=(9, 11))
    assert box == (0, 7, 4, 4)  # kept inside the map
    positions = [y * 11 + x for y in range(0, 4) for x in range(7, 11)]
    expected = reference_affinity(feat)[np.ix_(positions, positions)]
    np.testing.assert_allclose(crop_matrix(units_of(feat).units["t"], box=box, size=(9, 11)), expected, atol=1e-6)
    assert crop_box((4, 4), side=32, size=(9, 11)) == (0, 0, 9, 11)  # larger than the map: the whole map


def test_unit_features_of_a_model_give_the_rows_of_its_taps():
    torch.manual_seed(0)
    model = build_model("rcan-smoke-student", scale=4).eval()
    lr = torch.randint(0, 256, (3, 12, 10), dtype=torch.uint8)
    computed = unit_features(model, lr, taps=["head", "long_skip"])
    assert computed.size == (12, 10) and set(computed.units) == {"head", "long_skip"}
    from fakd.analysis.affinity_view import tap_features

    for tap, feat in tap_features(model, lr, ["head", "long_skip"]).items():
        np.testing.assert_allclose(affinity_rows(computed, (5, 3))[tap].ravel(), reference_affinity(feat)[5 * 10 + 3],
                                   atol=1e-5)
