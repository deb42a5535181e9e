"""Building blocks shared by RCAN and EDSR, after EDSR-PyTorch's ``model/common.py``.

Weights keep torch's default initialisation (Kaiming-uniform with a = sqrt(5) for convolutions),
which is also what the official EDSR-PyTorch and RCAN code use: they never re-initialise.
"""

import torch
from torch import nn

from fakd.errors import FakdError

SUPPORTED_SCALES = (2, 3, 4, 8)

# Mean RGB of DIV2K's training images in [0, 1], as EDSR-PyTorch and RCAN subtract it.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def check_scale(scale: int) -> int:
    """Return ``scale`` if the pixel-shuffle upsampler supports it, else raise FakdError."""
    if isinstance(scale, bool) or scale not in SUPPORTED_SCALES:
        raise FakdError(f"unsupported scale {scale!r}: use one of {list(SUPPORTED_SCALES)}")
    return int(scale)


def check_positive_int(name: str, value: int) -> int:
    """Return ``value`` if it is an integer >= 1, else raise FakdError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FakdError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_positive_number(name: str, value: float) -> float:
    """Return ``value`` if it is a real number > 0, else raise FakdError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise FakdError(f"{name} must be a positive number, got {value!r}")
    return value


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
        scale = check_scale(scale)
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
