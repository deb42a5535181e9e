"""imresize against an independent loop-based float64 reference and against MATLAB-made LR images."""

import math
import time

import numpy as np
import pytest
import torch

from fakd.data.image_io import list_images, read_image
from fakd.data.imresize import imresize, modcrop


# ---------------------------------------------------------------- independent reference (numpy, loops)
def keys_cubic(t: float) -> float:
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def reflect(i: int, n: int) -> int:
    """1-based index i mirrored into 1..n the way MATLAB pads symmetrically (edge sample repeated)."""
    while i < 1 or i > n:
        i = 1 - i if i < 1 else 2 * n + 1 - i
    return i


def reference_resize_1d(line: np.ndarray, out_length: int, scale: float) -> np.ndarray:
    """Straight transcription of MATLAB's definition, one output sample at a time."""
    n = len(line)
    widen = scale < 1
    support = 4 / scale if widen else 4
    out = np.zeros(out_length)
    for x in range(1, out_length + 1):
        centre = x / scale + 0.5 * (1 - 1 / scale)
        first = math.floor(centre - support / 2)
        taps = [first + k for k in range(math.ceil(support) + 2)]
        weights = [scale * keys_cubic(scale * (centre - j)) if widen else keys_cubic(centre - j) for j in taps]
        total = sum(weights)
        out[x - 1] = sum(w / total * line[reflect(j, n) - 1] for w, j in zip(weights, taps))
    return out


def reference_imresize(image: np.ndarray, out_size, scales, *, uint8: bool) -> np.ndarray:
    """2-D reference: smaller scale first (rows on a tie); rounding after each pass for uint8."""
    return reference_imresize_with_ties(image, out_size, scales, uint8=uint8)[0]


def reference_imresize_with_ties(image, out_size, scales, *, uint8, order=None):
    """Also returns where a uint8 result sits on a rounding tie (x.5 within 1e-9, or fed by one):
    there the rounded value depends on the summation order, in MATLAB as anywhere."""
    x = image.astype(np.float64)
    tie = np.zeros(x.shape, dtype=bool)
    if order is None:
        order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for axis in order:
        tie = np.apply_along_axis(reference_resize_1d, axis, tie.astype(np.float64), out_size[axis], scales[axis]) != 0
        x = np.apply_along_axis(reference_resize_1d, axis, x, out_size[axis], scales[axis])
        if uint8:
            tie |= np.abs(x - np.floor(x) - 0.5) < 1e-9
            x = np.clip(np.floor(x + 0.5), 0, 255)
    return x, tie


def random_image(shape, seed, dtype=torch.uint8):
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    return torch.rand(shape, generator=generator, dtype=torch.float64).to(dtype)


SCALES = [1 / 2, 1 / 3, 1 / 4, 0.37, 2, 3, 1.5, 0.8]


# ---------------------------------------------------------------- unit tests against the reference
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("shape", [(12, 9), (7, 16)])
def test_float64_matches_reference(scale, shape):
    image = random_image(shape, seed=1, dtype=torch.float64)
    result = imresize(image, scale=scale)
    out_size = (math.ceil(shape[0] * scale - 1e-9), math.ceil(shape[1] * scale - 1e-9))
    expected = reference_imresize(image.numpy(), out_size, (scale, scale), uint8=False)
    assert result.dtype == torch.float64
    assert tuple(result.shape) == out_size
    np.testing.assert_allclose(result.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", SCALES)
def test_uint8_matches_reference_rounded_after_each_pass(scale):
    image = random_image((3, 15, 11), seed=2)
    result = imresize(image, scale=scale)
    assert result.dtype == torch.uint8
    for channel in range(3):
        expected, tie = reference_imresize_with_ties(
            image[channel].numpy(), tuple(result.shape[1:]), (scale, scale), uint8=True
        )
        difference = np.abs(result[channel].numpy().astype(np.int16) - expected)
        assert difference.max() <= 1
        assert np.all(difference[~tie] == 0), "differs from the reference away from rounding ties"
        assert tie.mean() < 0.2  # the exact comparison must cover most pixels


@pytest.mark.parametrize("size", [(5, 20), (20, 5), (9, 9), (30, 24)])
def test_size_argument_resizes_the_smaller_scale_first(size):
    image = random_image((13, 10), seed=3)
    result = imresize(image, size=size)
    scales = (size[0] / 13, size[1] / 10)
    expected, tie = reference_imresize_with_ties(image.numpy(), size, scales, uint8=True)
    assert np.all(result.numpy()[~tie] == expected[~tie])
    if scales[0] != scales[1]:  # the order matters for uint8, so this test can see a wrong order
        other_order = reference_imresize_with_ties(image.numpy(), size, scales, uint8=True, order=(1, 0) if scales[0] <= scales[1] else (0, 1))[0]
        assert not np.array_equal(other_order, expected)


def test_output_size_is_ceil_of_scaled_size():
    assert imresize(torch.zeros(10, 10, dtype=torch.uint8), scale=1 / 3).shape == (4, 4)
    assert imresize(torch.zeros(321, 480, dtype=torch.uint8), scale=1 / 3).shape == (107, 160)
    assert imresize(torch.zeros(7, 5, dtype=torch.uint8), scale=2.5).shape == (18, 13)
    assert imresize(torch.zeros(3, 7, 5), size=(2, 9)).shape == (3, 2, 9)


def test_float_and_uint8_paths_agree_within_one_level():
    # values kept away from 0 and 255, so that the uint8 path's saturation after the first pass
    # (the cubic overshoots) plays no part: then only its intermediate rounding differs
    image = (random_image((3, 64, 48), seed=4) // 2 + 64).to(torch.uint8)
    for scale in (1 / 2, 1 / 3, 1 / 4, 0.37, 2, 3):
        as_uint8 = imresize(image, scale=scale).double()
        as_float = imresize(image.double() / 255, scale=scale).mul(255)
        assert (as_uint8 - torch.floor(as_float + 0.5)).abs().max() <= 1.0, scale
        assert (as_uint8 - as_float).abs().mean() < 0.5, scale


def test_float32_is_computed_in_float64_and_keeps_its_dtype():
    image = random_image((3, 20, 20), seed=5, dtype=torch.float32)
    result = imresize(image, scale=0.37)
    assert result.dtype == torch.float32
    expected = imresize(image.double(), scale=0.37).float()
    assert torch.equal(result, expected)


def test_batch_equals_per_image_and_layouts_agree():
    batch = random_image((4, 3, 17, 23), seed=6)
    result = imresize(batch, scale=1 / 3)
    for index in range(4):
        assert torch.equal(result[index], imresize(batch[index], scale=1 / 3))
        for channel in range(3):
            assert torch.equal(result[index, channel], imresize(batch[index, channel], scale=1 / 3))


def test_upscaling_matches_reference_and_is_exact_at_integer_ratio_samples():
    image = random_image((9, 8), seed=7, dtype=torch.float64)
    for scale in (2, 3, 4):
        result = imresize(image, scale=scale)
        expected = reference_imresize(image.numpy(), tuple(result.shape), (scale, scale), uint8=False)
        np.testing.assert_allclose(result.numpy(), expected, atol=1e-12)
    # x3 enlargement samples the input exactly at every third output (the centre of each 3x3 block)
    tripled = imresize(image, scale=3)
    np.testing.assert_allclose(tripled[1::3, 1::3].numpy(), image.numpy(), atol=1e-12)


def test_constant_image_stays_constant_and_scale_one_is_identity():
    flat = torch.full((3, 21, 14), 77, dtype=torch.uint8)
    for scale in (1 / 4, 0.37, 3):
        assert torch.all(imresize(flat, scale=scale) == 77)
    image = random_image((3, 11, 6), seed=8)
    assert torch.equal(imresize(image, scale=1), image)


def test_bad_arguments():
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    for kwargs in ({}, {"scale": 0.5, "size": (4, 4)}, {"scale": -2}, {"scale": 0}, {"scale": float("nan")},
                   {"size": (0, 4)}, {"size": (4,)}, {"size": (2.5, 4)}):
        with pytest.raises((TypeError, ValueError)):
            imresize(image, **kwargs)
    with pytest.raises(TypeError):
        imresize(np.zeros((8, 8, 3), dtype=np.uint8), scale=0.5)
    with pytest.raises(TypeError):
        imresize(torch.zeros(3, 8, 8, dtype=torch.int32), scale=0.5)


def test_modcrop_numpy_and_torch():
    array = np.arange(11 * 7 * 3, dtype=np.uint8).reshape(11, 7, 3)
    np.testing.assert_array_equal(modcrop(array, 3), array[:9, :6])
    np.testing.assert_array_equal(modcrop(array[:, :, 0], 4), array[:8, :4, 0])
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    assert torch.equal(modcrop(tensor, 3), tensor[:, :9, :6])
    assert modcrop(tensor[None], 2).shape == (1, 3, 10, 6)
    assert modcrop(array, 1).shape == array.shape
    with pytest.raises(ValueError):
        modcrop(array, 0)


# ---------------------------------------------------------------- acceptance against MATLAB-made LR images
@pytest.fixture
def one_thread():
    """Run on one core: the many small tensor ops here gain nothing from intra-op threads, and on a
    shared 2-core machine (or under pytest-xdist) two spinning threads per process made this test
    6x slower (62 s instead of 10 s for BSD100)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _compare_with_matlab(shared_data, set_name, scale):
    equal = total = 0
    worst_image, worst_fraction, interior_max = None, 1.0, 0
    for path in list_images(shared_data / set_name / "HR"):
        hr = torch.from_numpy(modcrop(read_image(path), scale)).permute(2, 0, 1)
        lr = imresize(hr, scale=1 / scale).permute(1, 2, 0).numpy().astype(np.int16)
        matlab = read_image(shared_data / set_name / "LR_bicubic" / f"X{scale}" / path.name).astype(np.int16)
        assert lr.shape == matlab.shape, path.name
        difference = np.abs(lr - matlab)
        equal += int((difference == 0).sum())
        total += difference.size
        fraction = float((difference == 0).mean())
        if fraction < worst_fraction:
            worst_image, worst_fraction = path.name, fraction
        interior_max = max(interior_max, int(difference[3:-3, 3:-3].max()))
    return equal / total, worst_image, worst_fraction, interior_max


@pytest.mark.shared_data
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("set_name", ["Set5", "Set14", "BSD100"])
def test_matches_matlab_lr_images(shared_data, set_name, scale, one_thread):
    started = time.perf_counter()
    fraction, worst_image, worst_fraction, interior_max = _compare_with_matlab(shared_data, set_name, scale)
    report = (f"{set_name} x{scale}: {fraction:.4%} of pixels equal (worst image {worst_image} "
              f"{worst_fraction:.4%}), max |diff| >= 3 px from the border = {interior_max}, "
              f"{time.perf_counter() - started:.1f} s")
    print(report)
    assert fraction >= 0.98, report
    assert interior_max <= 1, report
