"""PSNR/SSIM against scikit-image as the oracle, on real images."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from fakd.errors import FakdError
from fakd.metrics import evaluate_model, psnr, quantize_to_uint8, rgb_to_y, ssim


def _y_reference(rgb_uint8: np.ndarray) -> np.ndarray:
    """BT.601 luma written out from the formula, float64."""
    rgb = rgb_uint8.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def _distorted(hr: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(hr.astype(np.int16) + rng.integers(-12, 13, hr.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("set_name, image_name, scale", [
    ("Set5", "butterfly.png", 4), ("Set5", "baby.png", 2), ("Set14", "zebra.png", 3), ("Set14", "bridge.png", 4),
])
def test_psnr_and_ssim_match_scikit_image(shared_data, set_name, image_name, scale):
    hr = np.array(Image.open(shared_data / set_name / "HR" / image_name).convert("RGB"))
    hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
    sr = _distorted(hr, seed=scale)
    sr_y = _y_reference(sr)[scale:-scale, scale:-scale]
    hr_y = _y_reference(hr)[scale:-scale, scale:-scale]
    expected_psnr = peak_signal_noise_ratio(hr_y, sr_y, data_range=255)
    expected_ssim = structural_similarity(sr_y, hr_y, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, data_range=255)
    assert psnr(sr, hr, scale=scale) == pytest.approx(expected_psnr, abs=1e-6)
    assert ssim(sr, hr, scale=scale) == pytest.approx(expected_ssim, abs=1e-6)
    # the same images as (3, H, W) uint8 tensors give the same numbers
    sr_t, hr_t = torch.from_numpy(sr).permute(2, 0, 1), torch.from_numpy(hr).permute(2, 0, 1)
    assert psnr(sr_t, hr_t, scale=scale) == pytest.approx(expected_psnr, abs=1e-6)


def test_float_sr_is_rounded_to_8_bits_first():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (3, 40, 40), dtype=np.uint8)
    sr_uint8 = torch.from_numpy(_distorted(hr, seed=2))
    sr_float = sr_uint8.double() / 255.0 + 0.3 / 255.0  # within half a level: rounds back
    assert torch.equal(quantize_to_uint8(sr_float), sr_uint8)
    assert psnr(sr_float, torch.from_numpy(hr), scale=2) == psnr(sr_uint8, torch.from_numpy(hr), scale=2)


def test_hr_is_cropped_to_a_multiple_of_the_scale():
    rng = np.random.default_rng(3)
    hr = torch.from_numpy(rng.integers(0, 256, (3, 43, 50), dtype=np.uint8))
    sr = hr[:, :42, :48].clone()
    assert psnr(sr, hr, scale=3) == float("inf")
    assert ssim(sr, hr, scale=3) == pytest.approx(1.0)


def test_y_channel_matches_formula():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(rgb).numpy(), _y_reference(rgb), atol=1e-12)
    assert rgb_to_y(rgb)[0, 3].item() == pytest.approx(235.0, abs=1e-3)


def test_size_mismatch_and_bad_shapes_are_clear_errors():
    hr = torch.zeros(3, 40, 40, dtype=torch.uint8)
    with pytest.raises(FakdError, match="SR image"):
        psnr(torch.zeros(3, 38, 40, dtype=torch.uint8), hr, scale=2)
    with pytest.raises(ValueError, match="RGB"):
        psnr(torch.zeros(1, 40, 40, dtype=torch.uint8), hr, scale=2)


class _Pair:
    def __init__(self, name, lr, hr):
        self.name, self.lr, self.hr = name, lr, hr


def test_evaluate_model_one_row_per_image():
    rng = np.random.default_rng(4)
    pairs = []
    for index in range(3):
        hr = torch.from_numpy(rng.integers(0, 256, (3, 32, 32), dtype=np.uint8))
        pairs.append(_Pair(f"img{index}", hr[:, ::2, ::2].clone(), hr))

    def nearest(lr):
        return lr.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

    table = evaluate_model(nearest, pairs, scale=2, progress=False)
    assert list(table.columns) == ["name", "psnr", "ssim"]
    assert list(table["name"]) == ["img0", "img1", "img2"]
    expected = [psnr(nearest(p.lr[None].float() / 255)[0], p.hr, scale=2) for p in pairs]
    np.testing.assert_allclose(table["psnr"], expected)
    with pytest.raises(TypeError, match="scale"):  # a programming error: fakd always passes one
        evaluate_model(nearest, pairs, progress=False)
