"""The embedded default image sets: colour photographs shipped inside scikit-image's wheel.

They keep every command runnable on a machine without a data root (no download: only
``skimage.data`` images stored in the installed package are used). Two fixed, disjoint sets:

- ``skimage-test`` (3): astronaut, chelsea, coffee — the classic natural-photo trio;
- ``skimage-train`` (5): rocket, motorcycle_left, immunohistochemistry, hubble_deep_field, retina.
  ``motorcycle_right`` is left out on purpose: it is the stereo twin of ``motorcycle_left`` and
  would leak into a validation split drawn from the same set.

Every image whose long side exceeds 512 px is shrunk once, with the MATLAB-bicubic ``imresize``,
to a long side of 512 px (coffee, rocket, motorcycle_left, hubble_deep_field, retina), so that
training and evaluation on these sets stay fast on a CPU. The sets are built once per process.
"""

from functools import lru_cache

import numpy as np
import skimage.data
import torch

from fakd.data.image_io import to_rgb_uint8
from fakd.data.imresize import imresize

MAX_LONG_SIDE = 512

_LOADERS = {
    "astronaut": skimage.data.astronaut,
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "rocket": skimage.data.rocket,
    "motorcycle_left": lambda: skimage.data.stereo_motorcycle()[0],
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "retina": skimage.data.retina,
}

EMBEDDED_SETS: dict[str, tuple[str, ...]] = {
    "skimage-train": ("rocket", "motorcycle_left", "immunohistochemistry", "hubble_deep_field", "retina"),
    "skimage-test": ("astronaut", "chelsea", "coffee"),
}


def is_embedded_set(name) -> bool:
    """True when ``name`` names one of the embedded sets."""
    return isinstance(name, str) and name in EMBEDDED_SETS


def embedded_set_images(name: str) -> list[tuple[str, np.ndarray]]:
    """(image name, RGB uint8 (H, W, 3) array) for every image of an embedded set (fresh copies)."""
    return [(image_name, array.copy()) for image_name, array in _embedded_set_cached(name)]


@lru_cache(maxsize=None)
def _embedded_set_cached(name: str) -> tuple[tuple[str, np.ndarray], ...]:
    return tuple((image_name, _load_photograph(image_name)) for image_name in EMBEDDED_SETS[name])


def _load_photograph(image_name: str) -> np.ndarray:
    array = to_rgb_uint8(np.asarray(_LOADERS[image_name]()))
    height, width = array.shape[:2]
    long_side = max(height, width)
    if long_side <= MAX_LONG_SIDE:
        return array
    size = (round(height * MAX_LONG_SIDE / long_side), round(width * MAX_LONG_SIDE / long_side))
    shrunk = imresize(torch.from_numpy(array).permute(2, 0, 1), size=size)
    return np.ascontiguousarray(shrunk.permute(1, 2, 0).numpy())
