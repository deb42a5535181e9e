"""EDSR (Lim et al., CVPRW 2017) in the layout of EDSR-PyTorch, with named tap points.

Layout: ``sub_mean`` → ``head`` (conv) → ``body`` (residual blocks ``body.0`` … ``body.{n-1}``)
→ ``body_tail`` (conv) + long skip → ``tail`` (upsampler, conv) → ``add_mean``. EDSR-PyTorch keeps
the body's last conv inside ``body``; here it is ``body_tail`` so every block and that conv are
separate hook points. Parameter counts equal the official model's.
"""

import torch
from torch import nn

from fakd.checks import check_positive_int, check_positive_number, check_scale
from fakd.models.common import SUPPORTED_SCALES, HeadBodyTail, conv3x3


class ResBlock(nn.Module):
    """EDSR residual block without batch norm: x + res_scale · conv(ReLU(conv(x)))."""

    def __init__(self, *, n_feats: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(n_feats, n_feats), nn.ReLU(inplace=True), conv3x3(n_feats, n_feats)
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


def edsr_default_taps(n_resblocks: int) -> list[str]:
    """The official FAKD code's EDSR taps: after each third of the body (1-based blocks ⌊n/3⌋
    and ⌊2n/3⌋) and the body's output after the long skip (``long_skip``).

    16 blocks → body.4, body.9, long_skip; 32 blocks → body.9, body.20, long_skip
    (at least block 1, duplicates dropped).
    """
    blocks = sorted({max(1, (n_resblocks * third) // 3) for third in (1, 2)})
    return [f"body.{block - 1}" for block in blocks] + ["long_skip"]


class EDSR(HeadBodyTail):
    """Enhanced deep residual network; takes RGB in [0, 1], returns SR roughly in [0, 1]."""

    def __init__(
        self,
        *,
        scale: int,
        n_resblocks: int,
        n_feats: int,
        res_scale: float,
        n_colors: int = 3,
        rgb_range: float = 1.0,
    ):
        scale = check_scale(scale, supported=SUPPORTED_SCALES)
        for name, value in (("n_resblocks", n_resblocks), ("n_feats", n_feats),
                            ("n_colors", n_colors)):
            check_positive_int(name, value)
        check_positive_number("res_scale", res_scale)
        config = {
            "arch": "edsr", "scale": scale, "n_resblocks": n_resblocks,
            "n_feats": n_feats, "res_scale": res_scale, "n_colors": n_colors,
            "rgb_range": rgb_range,
        }
        super().__init__(config=config, n_feats=n_feats, n_colors=n_colors, rgb_range=rgb_range,
                         n_blocks=n_resblocks, block=lambda: ResBlock(n_feats=n_feats, res_scale=res_scale))
        self.default_taps = edsr_default_taps(n_resblocks)
