"""RCAN (Zhang et al., ECCV 2018) in the layout of the official code, with named tap points.

Layout: ``sub_mean`` → ``head`` (conv) → ``body`` (residual groups ``body.0`` … ``body.{G-1}``)
→ ``body_tail`` (conv) → ``long_skip`` (+ the head's output) → ``tail`` (upsampler, conv) →
``add_mean``. The official code keeps the body's last conv inside ``body``; here it is ``body_tail``
and the skip is ``long_skip``, so every group, that conv and the post-skip features are separate
hook points. Parameter counts equal the official model's.
"""

import torch
from torch import nn

from fakd.checks import check_positive_int, check_scale
from fakd.models.common import SUPPORTED_SCALES, ChannelAttention, HeadBodyTail, conv3x3


class RCAB(nn.Module):
    """Residual channel-attention block: x + CA(conv(ReLU(conv(x))))."""

    def __init__(self, *, n_feats: int, reduction: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(n_feats, n_feats),
            nn.ReLU(inplace=True),
            conv3x3(n_feats, n_feats),
            ChannelAttention(n_feats=n_feats, reduction=reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """``n_resblocks`` RCABs then a conv, with a skip over the whole group."""

    def __init__(self, *, n_feats: int, n_resblocks: int, reduction: int = 16):
        super().__init__()
        blocks = [RCAB(n_feats=n_feats, reduction=reduction) for _ in range(n_resblocks)]
        self.body = nn.Sequential(*blocks, conv3x3(n_feats, n_feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def rcan_default_taps(n_resgroups: int) -> list[str]:
    """The official FAKD code's taps: after residual groups 3 and 7 of 10, and the body's output
    after the long skip (``long_skip``: the official code stores ``body_tail``'s output, then adds
    the skip to it in place, so its loss sees the post-skip tensor).

    For G groups the positions keep their relative depth: 1-based groups round(0.3·G) and
    round(0.7·G) (halves round up, at least group 1, duplicates dropped). G = 10 → body.2, body.6.
    """
    groups = sorted({max(1, int(fraction * n_resgroups + 0.5)) for fraction in (0.3, 0.7)})
    return [f"body.{group - 1}" for group in groups] + ["long_skip"]


class RCAN(HeadBodyTail):
    """Residual channel-attention network; takes RGB in [0, 1], returns SR roughly in [0, 1]."""

    def __init__(
        self,
        *,
        scale: int,
        n_resgroups: int,
        n_resblocks: int,
        n_feats: int,
        reduction: int = 16,
        n_colors: int = 3,
        rgb_range: float = 1.0,
    ):
        scale = check_scale(scale, supported=SUPPORTED_SCALES)
        for name, value in (("n_resgroups", n_resgroups), ("n_resblocks", n_resblocks),
                            ("n_feats", n_feats), ("reduction", reduction), ("n_colors", n_colors)):
            check_positive_int(name, value)
        config = {
            "arch": "rcan", "scale": scale, "n_resgroups": n_resgroups,
            "n_resblocks": n_resblocks, "n_feats": n_feats, "reduction": reduction,
            "n_colors": n_colors, "rgb_range": rgb_range,
        }
        super().__init__(config=config, n_feats=n_feats, n_colors=n_colors, rgb_range=rgb_range,
                         n_blocks=n_resgroups, block=lambda: ResidualGroup(
                             n_feats=n_feats, n_resblocks=n_resblocks, reduction=reduction))
        self.default_taps = rcan_default_taps(n_resgroups)
