"""Tiled inference against the untiled output (``fakd upscale``'s bands are in test_commands_train and
test_guarantee_memory)."""

import torch

from fakd.models import build_model
from fakd.zoo.tiling import upscale_tiled


def test_tiled_equals_untiled_for_a_convolutional_model():
    """EDSR (no global operation): tiles with overlap ≥ the receptive radius give the same output."""
    torch.manual_seed(0)
    model = build_model("edsr-baseline", scale=2, n_resblocks=2, n_feats=8).eval()
    lr = torch.rand(1, 3, 45, 71)
    with torch.no_grad():
        whole = model(lr)
    tiled = upscale_tiled(model, lr, scale=2, tile=16, overlap=8)  # radius: 6 convs of 3x3
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-5
    too_little = upscale_tiled(model, lr, scale=2, tile=16, overlap=2)
    assert (too_little - whole).abs().max() > 1e-3  # the test can fail: context matters


def test_tiled_rcan_matches_within_rounding():
    """RCAN's channel attention pools per tile: uint8 outputs differ by at most 1 on few pixels."""
    torch.manual_seed(0)
    model = build_model("rcan-smoke-teacher", scale=4).eval()
    lr = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        whole = (model(lr).clamp(0, 1) * 255).round()
    tiled = (upscale_tiled(model, lr, scale=4, tile=32, overlap=32).clamp(0, 1) * 255).round()
    difference = (whole - tiled).abs()
    assert difference.max() <= 1 and (difference > 0).float().mean() < 0.01
