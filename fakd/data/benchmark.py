"""Benchmark sets: (name, LR, HR) pairs with HR cropped to a multiple of the scale.

The LR image is the MATLAB-bicubic ``imresize(HR, 1/scale)`` made here (``lr_source="bicubic"``,
the default and the protocol of SR papers) or the premade file ``<Set>/LR_bicubic/X<s>/<name>``
(``lr_source="premade"``). ``open_benchmark_set`` reads and prepares every image once, when it is
called, and keeps the uint8 tensors in memory (BSD100 at x2 holds about 60 MB), so evaluating several
models over the same set never reads a file twice.
"""

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fakd.checks import check_scale
from fakd.data.image_io import list_images, read_image
from fakd.data.imresize import imresize, modcrop
from fakd.data.roots import SetSource, resolve_set
from fakd.errors import FakdError

LR_SOURCES = ("bicubic", "premade")


@dataclass(frozen=True)
class BenchmarkPair:
    """One test image: ``lr`` uint8 (3, h, w) and ``hr`` uint8 (3, h * scale, w * scale)."""

    name: str
    lr: torch.Tensor
    hr: torch.Tensor


class BenchmarkSet(Sequence):
    """An ordered, in-memory sequence of ``BenchmarkPair`` with the set's ``name`` and ``scale``."""

    def __init__(self, *, name: str, scale: int, pairs: Sequence[BenchmarkPair]):
        self.name = name
        self.scale = scale
        self._pairs = tuple(pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __getitem__(self, index):
        return self._pairs[index]

    def __iter__(self) -> Iterator[BenchmarkPair]:
        return iter(self._pairs)

    @property
    def names(self) -> list[str]:
        return [pair.name for pair in self._pairs]

    def __repr__(self) -> str:
        return f"BenchmarkSet(name={self.name!r}, scale={self.scale}, images={len(self)})"


def hr_to_tensor(hr: np.ndarray, *, scale: int, name: str) -> torch.Tensor:
    """HR uint8 HWC array -> modcropped uint8 (3, H, W) tensor; an image smaller than the scale is an error."""
    height, width = hr.shape[:2]
    if height < scale or width < scale:
        raise FakdError(f"image {name!r} ({width}x{height}) is smaller than the scale x{scale}")
    return torch.from_numpy(np.ascontiguousarray(modcrop(hr, scale))).permute(2, 0, 1).contiguous()


def bicubic_lr(hr: torch.Tensor, *, scale: int) -> torch.Tensor:
    """The MATLAB-bicubic LR image (uint8) of a modcropped uint8 HR tensor."""
    return imresize(hr, scale=1.0 / scale)


def open_benchmark_set(
    name_or_path: str | os.PathLike,
    *,
    scale: int,
    data_root: str | os.PathLike | None = None,
    lr_source: str = "bicubic",
) -> BenchmarkSet:
    """Load a benchmark set by name or path as ``BenchmarkSet`` of (name, LR, HR) uint8 pairs."""
    scale = check_scale(scale)
    if lr_source not in LR_SOURCES:
        raise FakdError(f"unknown lr_source {lr_source!r}: use one of {', '.join(LR_SOURCES)}")
    source = resolve_set(name_or_path, data_root=data_root)
    premade = _premade_lr_files(source, scale) if lr_source == "premade" else None
    pairs = []
    for name, hr_array in source.load_hr_images():
        hr = hr_to_tensor(hr_array, scale=scale, name=name)
        if premade is None:
            lr = bicubic_lr(hr, scale=scale)
        else:
            lr = _read_premade_lr(premade, name=name, hr=hr, scale=scale)
        pairs.append(BenchmarkPair(name=name, lr=lr, hr=hr))
    return BenchmarkSet(name=source.name, scale=scale, pairs=pairs)


def _premade_lr_files(source: SetSource, scale: int) -> dict:
    if source.is_embedded:
        raise FakdError(f"the embedded set {source.name!r} has no premade LR images: use lr_source='bicubic'")
    folder = source.lr_root / f"X{scale}"
    if not folder.is_dir():
        raise FakdError(f"premade LR folder not found for {source.name} x{scale}: {folder}")
    return {path.stem: path for path in list_images(folder)}


def _read_premade_lr(files: dict, *, name: str, hr: torch.Tensor, scale: int) -> torch.Tensor:
    if name not in files:
        folder = next(iter(files.values())).parent
        raise FakdError(f"premade LR image for {name!r} not found in {folder}")
    lr = torch.from_numpy(read_image(files[name])).permute(2, 0, 1).contiguous()
    expected = (hr.shape[1] // scale, hr.shape[2] // scale)
    if tuple(lr.shape[1:]) != expected:
        raise FakdError(
            f"premade LR image {files[name]} is {lr.shape[2]}x{lr.shape[1]}, "
            f"expected {expected[1]}x{expected[0]} (HR cropped to a multiple of {scale}, divided by {scale})"
        )
    return lr
