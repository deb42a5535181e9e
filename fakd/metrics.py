"""PSNR and SSIM as SR papers report them, and evaluation of a model over a benchmark set.

Protocol (docs/design.md, Conventions): the SR image is rounded to 8 bits, HR is cropped to a multiple of the scale,
both are converted to the BT.601 luma Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 (RGB in
[0, 255], Y kept in float64, not re-rounded), and ``scale`` pixels are cropped from every border.
SSIM uses an 11×11 Gaussian window (σ 1.5), K1 0.01, K2 0.03, L 255, averaged over the positions
where the window fits — exactly scikit-image's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``.
"""

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from fakd.checks import check_scale
from fakd.errors import FakdError

_Y_WEIGHTS = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64) / 255.0


def quantize_to_uint8(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """An image as uint8 tensor: float input is taken as [0, 1], clamped and rounded; uint8 passes."""
    tensor = torch.as_tensor(image)
    if tensor.dtype == torch.uint8:
        return tensor
    if not tensor.is_floating_point():
        raise TypeError(f"expected a uint8 or float image, got dtype {tensor.dtype}")
    return (tensor.detach().to(torch.float64) * 255.0).clamp(0, 255).round().to(torch.uint8)


def _as_chw(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 (3, H, W) from (3, H, W), (1, 3, H, W) or numpy (H, W, 3)."""
    tensor = quantize_to_uint8(image)
    if isinstance(image, np.ndarray) and tensor.ndim == 3 and tensor.shape[-1] == 3:
        tensor = tensor.permute(2, 0, 1)
    if tensor.ndim == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ValueError(f"expected an RGB image (3, H, W), got shape {tuple(tensor.shape)}")
    return tensor.cpu()


def rgb_to_y(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """BT.601 luma of an RGB image, float64 (H, W) in [16, 235]; float input is rounded to 8 bits first."""
    rgb = _as_chw(image).to(torch.float64)
    return 16.0 + torch.einsum("c,chw->hw", _Y_WEIGHTS, rgb)


def _paired_y(sr, hr, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Y channels of SR and HR (HR cropped to a multiple of ``scale``, which SR must match), both
    border-cropped by ``scale``."""
    scale = check_scale(scale)
    sr_y, hr_y = rgb_to_y(sr), rgb_to_y(hr)
    height, width = hr_y.shape[0] - hr_y.shape[0] % scale, hr_y.shape[1] - hr_y.shape[1] % scale
    hr_y = hr_y[:height, :width]
    if sr_y.shape != hr_y.shape:
        raise FakdError(
            f"SR image is {tuple(sr_y.shape)} but the HR image cropped to a multiple of {scale} "
            f"is {tuple(hr_y.shape)}"
        )
    if min(height, width) <= 2 * scale:
        raise FakdError(f"image {height}x{width} is too small for a border crop of {scale}")
    return sr_y[scale:-scale, scale:-scale], hr_y[scale:-scale, scale:-scale]


def psnr(sr, hr, *, scale: int) -> float:
    """PSNR in dB on Y with a border crop of ``scale`` (infinite for identical images)."""
    sr_y, hr_y = _paired_y(sr, hr, scale)
    mse = torch.mean((sr_y - hr_y) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


SSIM_WINDOW = 11  # side of SSIM's Gaussian window


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def ssim(sr, hr, *, scale: int) -> float:
    """SSIM on Y with a border crop of ``scale`` (Wang et al. 2004 constants, Gaussian window)."""
    sr_y, hr_y = _paired_y(sr, hr, scale)
    if min(sr_y.shape) < SSIM_WINDOW:
        raise FakdError(f"image {tuple(sr_y.shape)} after border crop is smaller than the "
                        f"{SSIM_WINDOW}x{SSIM_WINDOW} SSIM window")
    window = _gaussian_window()
    rows, cols = window.view(1, 1, -1, 1), window.view(1, 1, 1, -1)

    def blur(values: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(values, rows), cols)

    x, y = sr_y[None, None], hr_y[None, None]
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def evaluate_model(
    model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor],
    dataset: Sequence,
    *,
    scale: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Super-resolve every LR image of ``dataset`` and score it against its HR: one row per image.

    ``model`` maps a float (1, 3, h, w) batch in [0, 1] to (1, 3, h·s, w·s); an ``nn.Module`` is put in
    eval mode on ``device`` and run without gradients. Items of ``dataset`` have ``name``, ``lr`` and
    ``hr`` (uint8 (3, H, W)). ``scale`` defaults to ``dataset.scale``.
    """
    scale = scale if scale is not None else getattr(dataset, "scale", None)
    if scale is None:
        raise TypeError("evaluate_model needs a scale (the dataset has none)")
    if isinstance(model, torch.nn.Module):
        if device is None:
            device = next(model.parameters(), torch.empty(0)).device
        model = model.eval().to(device)
    device = torch.device(device) if device is not None else torch.device("cpu")
    rows = []
    label = getattr(dataset, "name", "images")
    for pair in tqdm(dataset, desc=f"evaluating {label} x{scale}", disable=not progress, leave=False):
        lr = pair.lr.to(device=device, dtype=torch.float32).div(255.0).unsqueeze(0)
        with torch.no_grad():
            sr = model(lr)
        sr_uint8 = quantize_to_uint8(sr[0].cpu())
        rows.append({"name": pair.name, "psnr": psnr(sr_uint8, pair.hr, scale=scale),
                     "ssim": ssim(sr_uint8, pair.hr, scale=scale)})
    if not rows:
        raise FakdError(f"data set {label!r} has no images to evaluate")
    return pd.DataFrame(rows, columns=["name", "psnr", "ssim"])
