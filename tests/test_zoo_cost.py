"""Model cost: Multi-Adds against a hand count."""

from fakd.models import build_model
from fakd.zoo.cost import multi_adds


def test_multi_adds_match_a_hand_count():
    """EDSR without residual blocks at x2: head, body tail, upsampler and last conv, counted by hand."""
    model = build_model("edsr-baseline", scale=2, n_resblocks=1, n_feats=8)
    h, w = 360, 640
    per_pixel = 9 * (3 * 8 + 8 * 8 + 8 * 8 + 8 * 8 + 8 * 32)  # head, 2 convs of 1 block, body tail, up conv
    expected = per_pixel * h * w + 9 * 8 * 3 * (2 * h) * (2 * w)  # last conv at HR
    assert multi_adds(model, scale=2) == expected
