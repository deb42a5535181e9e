"""Building blocks shared by RCAN and EDSR, after EDSR-PyTorch's ``model/common.py``.

Weights keep torch's default initialisation (Kaiming-uniform with a = sqrt(5) for convolutions),
which is also what the official EDSR-PyTorch and RCAN code use: they never re-initialise.
"""

from collections.abc import Callable

import torch
from torch import nn

from fakd.checks import check_positive_number, check_scale
from fakd.errors import FakdError

SUPPORTED_SCALES = (2, 3, 4, 8)

# Mean RGB of DIV2K's training images in [0, 1], as EDSR-PyTorch and RCAN subtract it.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3×3 convolution with bias and 'same' padding (EDSR-PyTorch's ``default_conv``)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=True)


class MeanShift(nn.Module):
    """Add ``sign`` × the DIV2K mean (times ``rgb_range``) to each colour channel.

    EDSR-PyTorch does this with a frozen 1×1 convolution (std 1); a constant buffer gives the
    same result without parameters that never train. The buffer is not saved in the state_dict.
    """

    def __init__(self, *, rgb_range: float, sign: int, n_colors: int = 3, rgb_mean=DIV2K_RGB_MEAN):
        super().__init__()
        if n_colors != len(rgb_mean):
            raise FakdError(f"the mean shift is defined for {len(rgb_mean)} colours (RGB), "
                            f"got n_colors={n_colors}")
        check_positive_number("rgb_range", rgb_range)
        shift = sign * rgb_range * torch.tensor(rgb_mean, dtype=torch.float32)
        self.register_buffer("shift", shift.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.shift


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention (RCAN's ``CALayer``): pool, C→C/r→C, sigmoid."""

    def __init__(self, *, n_feats: int, reduction: int = 16):
        super().__init__()
        squeezed = n_feats // reduction
        if squeezed < 1:
            raise FakdError(
                f"channel attention needs n_feats >= reduction, got n_feats={n_feats}, "
                f"reduction={reduction}"
            )
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(n_feats, squeezed, kernel_size=1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(squeezed, n_feats, kernel_size=1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class Upsampler(nn.Sequential):
    """Sub-pixel upsampler: log2(scale) × (conv → PixelShuffle(2)) or conv → PixelShuffle(3)."""

    def __init__(self, *, scale: int, n_feats: int):
        scale = check_scale(scale, supported=SUPPORTED_SCALES)
        layers = []
        if scale == 3:
            layers += [conv3x3(n_feats, 9 * n_feats), nn.PixelShuffle(3)]
        else:
            for _ in range(scale.bit_length() - 1):
                layers += [conv3x3(n_feats, 4 * n_feats), nn.PixelShuffle(2)]
        super().__init__(*layers)


class LongSkip(nn.Module):
    """The long skip ``body_tail(body(x)) + x`` as a module, so that its output has a hook point.

    The official FAKD code appends ``body_tail``'s output to its feature list and then adds the
    skip in place (``res += x``), so the loss sees this post-skip tensor: the tap ``long_skip``.
    No parameters: checkpoints are unchanged by it.
    """

    def forward(self, body_output: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return body_output + skip


class TapPoints:
    """Mixin for SR models with named feature positions at LR resolution.

    A model sets ``self.scale``, ``self.config`` and ``self.default_taps``; its tap names are
    ``head``, ``body.0`` … ``body.{n-1}``, ``body_tail`` (the body's last conv, before the long
    skip) and ``long_skip`` (after it: what the tail sees) — each a module whose output is a
    (B, n_feats, H, W) feature map at the input's resolution.
    """

    def tap_names(self) -> list[str]:
        """Valid dotted module paths for forward hooks, in forward order."""
        return ["head", *(f"body.{i}" for i in range(len(self.body))), "body_tail", "long_skip"]


class HeadBodyTail(TapPoints, nn.Module):
    """EDSR-PyTorch's layout, shared by RCAN and EDSR: ``sub_mean`` → ``head`` (conv) → ``body``
    (``n_blocks`` blocks from ``block()``) → ``body_tail`` (conv) → ``long_skip`` (+ the head's
    output) → ``tail`` (upsampler, conv) → ``add_mean``. Inputs and outputs are RGB in [0, 1].

    The modules are created in this order, so a seeded build and the state_dict keys are those of
    the architectures before they shared this base (the shipped checkpoints load unchanged).
    """

    def __init__(self, *, config: dict, n_feats: int, n_colors: int, rgb_range: float, n_blocks: int,
                 block: Callable[[], nn.Module]):
        super().__init__()
        self.scale = config["scale"]
        self.config = config
        self.sub_mean = MeanShift(rgb_range=rgb_range, sign=-1, n_colors=n_colors)
        self.head = conv3x3(n_colors, n_feats)
        self.body = nn.Sequential(*(block() for _ in range(n_blocks)))
        self.body_tail = conv3x3(n_feats, n_feats)
        self.long_skip = LongSkip()
        self.tail = nn.Sequential(
            Upsampler(scale=self.scale, n_feats=n_feats), conv3x3(n_feats, n_colors)
        )
        self.add_mean = MeanShift(rgb_range=rgb_range, sign=+1, n_colors=n_colors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        features = self.long_skip(self.body_tail(self.body(x)), x)
        return self.add_mean(self.tail(features))
