"""MATLAB-compatible bicubic ``imresize`` in torch, ``modcrop``, and the same downscale in bands.

Reproduces MATLAB ``imresize(A, scale, 'bicubic')`` (the degradation SR papers use):
Keys cubic kernel with a = -0.5; when shrinking, the kernel is widened by 1/scale (antialiasing);
borders use MATLAB's symmetric index mirroring; output size ``ceil(in * scale)``; the dimension with
the smaller scale is resized first (rows, i.e. height, first when the scales are equal); uint8 input
is rounded (half away from zero) and saturated to uint8 after EACH 1-D pass, as MATLAB does.
Float input is computed in float64 and returned in its own dtype, without rounding or clamping.

Each 1-D pass follows MATLAB's ``contributions`` tables: for each of the P taps (P <= ceil(4 / scale)
+ 2 when shrinking, 6 when enlarging) one ``index_select`` of whole rows and one multiply-add, summed
in MATLAB's tap order; columns are done as rows of the transposed image. Nothing loops over pixels
or rows, everything is batched over the leading dimensions, and the tables are cached per
(input length, output length, scale). About 1 ms per pass for a 480x320 RGB image on one core.

``bicubic_downscale_banded`` gives the bitwise same result for a large uint8 image while holding only
one band of it in float64 (``fakd degrade``).
"""

import math
import numbers
from functools import lru_cache

import numpy as np
import torch


_KERNEL_WIDTH = 4.0


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel, a = -0.5 (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    near = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return near + far


@lru_cache(maxsize=256)
def _contributions(in_length: int, out_length: int, scale: float, antialiasing: bool):
    """MATLAB ``contributions``: (out_length, P) int64 input indices and float64 weights, as tensors."""
    if scale < 1 and antialiasing:
        kernel = lambda x: scale * _cubic(scale * x)  # noqa: E731
        width = _KERNEL_WIDTH / scale
    else:
        kernel = _cubic
        width = _KERNEL_WIDTH
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    used = np.any(weights != 0, axis=0)  # MATLAB drops the taps that are zero for every output
    return torch.from_numpy(indices[:, used].T.copy()), torch.from_numpy(weights[:, used].T.copy())


def _output_length(in_length: int, scale: float) -> int:
    # ceil(in * scale) as MATLAB, guarded so that e.g. 321 * (1/3) gives 107, not 108
    return max(1, int(math.ceil(in_length * scale - 1e-9)))


def _resize_rows(x: torch.Tensor, out_length: int, scale: float, antialiasing: bool) -> torch.Tensor:
    """One 1-D pass over the rows (dimension -2) of a float64 tensor: out = sum_p w_p * x[index_p]."""
    indices, weights = _contributions(x.shape[-2], out_length, scale, antialiasing)
    indices = indices.to(x.device)
    weights = weights.to(device=x.device, dtype=x.dtype)[:, :, None]  # (P, out, 1)
    x = x.contiguous()
    out = x.index_select(-2, indices[0]) * weights[0]
    for tap in range(1, indices.shape[0]):  # taps in MATLAB's order; P <= ceil(4 / scale) + 2
        out.addcmul_(x.index_select(-2, indices[tap]), weights[tap])
    return out


def _resize_along(x: torch.Tensor, dim: int, out_length: int, scale: float, antialiasing: bool) -> torch.Tensor:
    """One 1-D pass over dimension ``dim`` (-2 rows or -1 columns); columns go through a transpose."""
    if dim == -2:
        return _resize_rows(x, out_length, scale, antialiasing)
    return _resize_rows(x.transpose(-1, -2), out_length, scale, antialiasing).transpose(-1, -2)


def _round_to_uint8_range(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x + 0.5).clamp_(0.0, 255.0)  # half away from zero, for the values that survive


def _is_positive_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _check_scale_and_size(shape, scale, size):
    if (scale is None) == (size is None):
        raise TypeError("imresize needs exactly one of scale= or size=")
    height, width = shape
    if size is not None:
        if len(size) != 2 or any(int(n) != n or n < 1 for n in size):
            raise ValueError(f"imresize size must be two positive integers (height, width), got {size!r}")
        out = (int(size[0]), int(size[1]))
        return (out[0] / height, out[1] / width), out
    scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale, scale)
    if len(scales) != 2 or not all(_is_positive_number(s) for s in scales):
        raise ValueError(f"imresize scale must be a positive number (or a pair), got {scale!r}")
    scales = (float(scales[0]), float(scales[1]))
    return scales, (_output_length(height, scales[0]), _output_length(width, scales[1]))


def imresize(
    image: torch.Tensor,
    *,
    scale: float | tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> torch.Tensor:
    """MATLAB ``imresize(image, scale, 'bicubic')`` of a (H, W), (C, H, W) or (B, C, H, W) tensor.

    Give ``scale`` (e.g. 1/4 to shrink, 3 to enlarge; a pair for (rows, columns)) or ``size=(h, w)``.
    uint8 in -> uint8 out (rounded after each pass); float in -> same float dtype out.
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError("imresize takes a torch tensor (H, W), (C, H, W) or (B, C, H, W); "
                        "convert a HWC numpy image with torch.from_numpy(a).permute(2, 0, 1)")
    if image.ndim not in (2, 3, 4):
        raise TypeError(f"imresize expects 2, 3 or 4 dimensions, got shape {tuple(image.shape)}")
    if image.shape[-2] < 1 or image.shape[-1] < 1:
        raise ValueError(f"cannot resize an empty image of shape {tuple(image.shape)}")
    is_uint8 = image.dtype == torch.uint8
    if not is_uint8 and not image.is_floating_point():
        raise TypeError(f"imresize takes uint8 or floating-point tensors, got {image.dtype}")
    scales, out_size = _check_scale_and_size(tuple(image.shape[-2:]), scale, size)
    x = image.to(torch.float64)
    order = (-2, -1) if scales[0] <= scales[1] else (-1, -2)
    for dim in order:
        axis = 0 if dim == -2 else 1
        x = _resize_along(x, dim, out_size[axis], scales[axis], antialiasing)
        if is_uint8:
            x = _round_to_uint8_range(x)
    return x.to(image.dtype).contiguous()


def modcrop(image, scale: int):
    """Crop height and width from the top-left to multiples of ``scale``.

    numpy arrays are (H, W[, C]); torch tensors are (H, W), (C, H, W) or (B, C, H, W).
    """
    if int(scale) != scale or scale < 1:
        raise ValueError(f"modcrop needs a positive integer scale, got {scale!r}")
    scale = int(scale)
    if isinstance(image, torch.Tensor):
        height, width = image.shape[-2:]
        return image[..., : height - height % scale, : width - width % scale]
    image = np.asarray(image)
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale, ...]


DOWNSCALE_BAND = 64  # LR rows per band of ``bicubic_downscale_banded``


def bicubic_downscale_banded(hr: np.ndarray, *, scale: int, band: int = DOWNSCALE_BAND) -> torch.Tensor:
    """MATLAB ``imresize(hr, 1/scale)`` of a uint8 (H, W, 3) image whose sides are multiples of
    ``scale``, computed in bands of ``band`` LR rows; returns the uint8 (3, H/s, W/s) LR image.

    Each band is resized with 3 LR rows (3·s HR rows, more than the kernel's 2·s + 2 reach) of real
    context above and below, which are then dropped; as the bands start at multiples of ``scale``, every
    kept row sees the same weights, taps and mirrored borders as in the whole image, so the result is
    bitwise equal to ``imresize`` of the whole image (``tests/test_guarantee_memory.py``). Only one
    band is ever in float64: the peak is the uint8 image plus about ``24·(band + 6)·s`` bytes per HR column.
    """
    height, width = hr.shape[:2]
    if hr.dtype != np.uint8 or hr.ndim != 3 or height % scale or width % scale:
        raise ValueError(f"bicubic_downscale_banded takes uint8 (H, W, 3) with sides multiple of {scale}, "
                         f"got {hr.dtype} {hr.shape}")
    lr_height, margin = height // scale, 3
    bands = []
    for top in range(0, lr_height, band):
        bottom = min(top + band, lr_height)
        first, last = max(top - margin, 0), min(bottom + margin, lr_height)
        crop = torch.from_numpy(np.ascontiguousarray(hr[first * scale : last * scale])).permute(2, 0, 1)
        bands.append(imresize(crop, scale=1.0 / scale)[:, top - first : bottom - first])
    return torch.cat(bands, dim=1).contiguous()
