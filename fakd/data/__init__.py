"""fakd.data: image I/O, MATLAB-compatible bicubic resizing, and the image sets.

- ``image_io``: files <-> RGB uint8 (H, W, 3) arrays; arrays <-> float (3, H, W) tensors.
- ``imresize``: MATLAB ``imresize(·, scale, 'bicubic')`` in torch, and ``modcrop``.
- ``roots``: the data root (argument or ``FAKD_DATA_ROOT``) and set names/paths.
- ``embedded``: the default sets ``skimage-train`` / ``skimage-test`` from scikit-image's wheel.
- ``benchmark``: (name, LR, HR) test pairs; ``training``: random patches + a validation split.
"""

from fakd.data.benchmark import BenchmarkPair, BenchmarkSet, open_benchmark_set
from fakd.data.embedded import EMBEDDED_SETS
from fakd.data.image_io import image_to_tensor, list_images, read_image, tensor_to_image, write_image
from fakd.data.imresize import imresize, modcrop
from fakd.data.roots import SetSource, available_sets, resolve_data_root, resolve_set
from fakd.data.training import TrainingPatches

__all__ = [
    "EMBEDDED_SETS",
    "BenchmarkPair",
    "BenchmarkSet",
    "SetSource",
    "TrainingPatches",
    "available_sets",
    "image_to_tensor",
    "imresize",
    "list_images",
    "modcrop",
    "open_benchmark_set",
    "read_image",
    "resolve_data_root",
    "resolve_set",
    "tensor_to_image",
    "write_image",
]
