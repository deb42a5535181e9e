"""Affinity rows and agreement scores against a float64 N×N reference computed the plain way."""

import numpy as np
import pytest
import torch

from fakd.analysis.affinity_view import affinity_agreement, affinity_row, compare_affinities
from fakd.errors import FakdError
from fakd.models import build_model


def naive_affinity(feat: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) → (B, N, N) with numpy: unit vectors per position (+1e-8), then dot products."""
    array = feat.double().numpy().reshape(feat.shape[0], feat.shape[1], -1)
    unit = array / (np.linalg.norm(array, axis=1, keepdims=True) + 1e-8)
    return np.einsum("bcn,bcm->bnm", unit, unit)


def test_affinity_row_is_the_row_of_the_matrix():
    feat = torch.randn(1, 7, 5, 6, generator=torch.Generator().manual_seed(1))
    row = affinity_row(feat, (3, 4))
    assert row.shape == (5, 6)
    np.testing.assert_allclose(row.ravel(), naive_affinity(feat)[0, 3 * 6 + 4], atol=1e-12)
    assert row[3, 4] == pytest.approx(1.0)
    with pytest.raises(FakdError, match="outside the 5x6"):
        affinity_row(feat, (5, 0))
    with pytest.raises(ValueError, match="one feature map"):
        affinity_row(torch.randn(2, 3, 4, 4), (0, 0))


def test_agreement_scores_match_the_naive_matrices_across_channel_counts():
    generator = torch.Generator().manual_seed(2)
    student = torch.randn(2, 4, 6, 5, generator=generator)
    teacher = torch.randn(2, 9, 6, 5, generator=generator) + 0.5 * student.repeat(1, 3, 1, 1)[:, :9]
    a_s, a_t = naive_affinity(student).ravel(), naive_affinity(teacher).ravel()
    scores = affinity_agreement(student, teacher)
    assert scores["l1"] == pytest.approx(np.abs(a_s - a_t).mean(), rel=1e-5)
    assert scores["correlation"] == pytest.approx(np.corrcoef(a_s, a_t)[0, 1], abs=1e-9)
    same = affinity_agreement(teacher, teacher)
    assert same["l1"] == pytest.approx(0.0, abs=1e-6) and same["correlation"] == pytest.approx(1.0)


def test_compare_affinities_per_tap_with_a_model_against_itself():
    torch.manual_seed(0)
    model = build_model("rcan-smoke-student", scale=4).eval()
    lr = torch.randint(0, 256, (3, 12, 10), dtype=torch.uint8)
    views = compare_affinities(model, model, lr, pixel=(4, 6))
    assert [view["tap"] for view in views] == model.default_taps
    for view in views:
        assert view["teacher_row"].shape == (12, 10)
        assert np.abs(view["difference"]).max() == 0.0
        assert view["correlation"] == pytest.approx(1.0)
    with pytest.raises(FakdError, match="unknown tap"):
        compare_affinities(model, model, lr, pixel=(0, 0), taps=["body.99"])
