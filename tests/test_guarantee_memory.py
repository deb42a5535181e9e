"""Guarantee: large images run in bounded memory, with the same result as the whole-image computation.

Stated peaks (docs/guarantees.md), measured here in fresh processes as the growth of the peak
resident set (``ru_maxrss``) over the process's size before the call:

- ``fakd upscale`` never holds the SR image: it grows by about 3 bytes per LR pixel (the uint8 LR
  image) plus one output band and one tile's work; at x4 we allow at most 10 MB per LR megapixel
  plus 120 MB, and require less than the uint8 SR image alone would take.
- ``fakd degrade`` resizes in bands: at most 12 MB per HR megapixel plus 120 MB (a whole-image
  float64 ``imresize`` takes about 40 bytes per HR pixel).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from guarantees_support import REPO

from fakd.data.imresize import bicubic_downscale_banded, imresize
from fakd.models import build_model
from fakd.zoo.tiling import upscale_bands, upscale_tiled

PROBE = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, torch
    from fakd.data.image_io import write_png_bands
    from fakd.data.imresize import bicubic_downscale_banded
    from fakd.zoo.tiling import upscale_bands

    class Nearest(torch.nn.Module):  # a stand-in SR model: the test is about the frame around it
        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")

    which, side, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    before = peak()
    if which == "upscale":
        lr = torch.from_numpy(image).permute(2, 0, 1)
        with open(out, "wb") as stream:
            write_png_bands(stream, width=side * 4, height=side * 4, bands=upscale_bands(Nearest(), lr, scale=4))
    else:
        bicubic_downscale_banded(image, scale=4)
    print(json.dumps({"growth": peak() - before}))
""")

MB = 1e6


def _growth(which: str, side: int, tmp_path) -> float:
    result = subprocess.run([sys.executable, "-c", PROBE, which, str(side), str(tmp_path / "out.png")],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["growth"]


@pytest.mark.slow
def test_upscale_peak_memory_per_megapixel(tmp_path):
    side = 2000  # 4 LR megapixels -> 64 SR megapixels (192 MB as uint8, 768 MB as float32)
    growth = _growth("upscale", side, tmp_path)
    megapixels = side * side / 1e6
    assert growth <= 10 * MB * megapixels + 120 * MB, f"{growth / MB:.0f} MB for {megapixels} LR MP"
    assert growth < 3 * (4 * side) ** 2, "less than the uint8 SR image alone"
    from fakd.data.image_io import read_image
    assert read_image(tmp_path / "out.png").shape == (4 * side, 4 * side, 3)


@pytest.mark.slow
def test_degrade_peak_memory_per_megapixel(tmp_path):
    side = 4000  # 16 HR megapixels: a whole-image float64 imresize would take about 640 MB
    growth = _growth("degrade", side, tmp_path)
    megapixels = side * side / 1e6
    assert growth <= 12 * MB * megapixels + 120 * MB, f"{growth / MB:.0f} MB for {megapixels} HR MP"


def test_banded_downscale_is_bitwise_the_whole_image_imresize():
    rng = np.random.default_rng(0)
    for scale, (height, width), band in [(2, (130, 98), 7), (3, (99, 60), 4), (4, (400, 52), 5), (4, (8, 8), 1)]:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        whole = imresize(torch.from_numpy(image).permute(2, 0, 1).contiguous(), scale=1 / scale)
        assert torch.equal(bicubic_downscale_banded(image, scale=scale, band=band), whole)


def test_streamed_bands_equal_the_tiled_float_output_rounded():
    torch.manual_seed(0)
    model = build_model("edsr-baseline", scale=2, n_resblocks=1, n_feats=8).eval()
    lr = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 45, 71), dtype=np.uint8))
    with torch.no_grad():
        reference = upscale_tiled(model, lr.float().div(255).unsqueeze(0), scale=2, tile=16, overlap=8)
    expected = torch.floor(reference[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    bands = list(upscale_bands(model, lr, scale=2, tile=16, overlap=8))
    assert [band.shape[0] for band in bands] == [32, 32, 26]
    assert np.array_equal(np.concatenate(bands), expected)
