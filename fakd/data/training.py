"""Training data: random aligned LR/HR patch pairs from one or more HR sets, plus a validation split.

- Every HR image is cropped to a multiple of the scale and its MATLAB-bicubic LR image is made ONCE,
  at construction, and kept in memory as uint8 (the 291 images of T91 + BSD200: about 130 MB at x2).
- Validation split: the ``val_count`` images with the smallest CRC32 of "<set>/<name>" are held out.
  The choice depends on the image names only (not on the seed, the patch size or the order of
  ``sources``), so every run and every seed validates on the same images, and they never enter the
  patch pool. ``val_crop`` centre-crops each validation HR image to at most that many pixels per side
  (a multiple of the scale) before its LR image is made, to keep validation cheap.
- Training images smaller than an HR patch (``lr_patch_size * scale``) in either side are skipped
  with a warning naming them (T91 has images of 78 px); if every training image is too small, that is
  a ``FakdError``.
- ``batch(iteration, batch_size)`` is a pure function of (seed, iteration): a fresh generator seeded
  from both draws, per sample, an image (uniformly), an aligned patch location and (with ``augment``)
  one of the 8 flips/transpositions, applied identically to LR and HR. A resumed run therefore sees
  exactly the batches an uninterrupted one would. Batches are float32 in [0, 1], on the CPU.
  ``batch(..., part=r, parts=n)`` is rank r's contiguous slice of that same batch (training on n
  processes, ``fakd.train.distributed``): the n slices are the one-process batch, in order.
"""

import os
import warnings
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from fakd.checks import check_scale
from fakd.data.benchmark import BenchmarkPair, BenchmarkSet, bicubic_lr, hr_to_tensor
from fakd.data.roots import resolve_set
from fakd.errors import FakdError


class PatchDraw(NamedTuple):
    """One sample of a batch: training image index, LR patch top-left corner, dihedral transform 0-7."""

    image: int
    top: int
    left: int
    transform: int


def _dihedral(image: torch.Tensor, transform: int) -> torch.Tensor:
    """One of the 8 flips/transpositions of a (C, H, W) tensor: bit 0 flips W, bit 1 flips H, bit 2 transposes."""
    if transform & 1:
        image = image.flip(-1)
    if transform & 2:
        image = image.flip(-2)
    if transform & 4:
        image = image.transpose(-1, -2)
    return image


def _generator_seed(seed: int, iteration: int) -> int:
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(iteration)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _check_split_sizes(*, lr_patch_size, val_count, val_crop, scale: int) -> None:
    """LR patch size ≥ 1, validation count ≥ 0, validation crop None or ≥ the scale (else FakdError)."""
    if isinstance(lr_patch_size, bool) or not isinstance(lr_patch_size, int) or lr_patch_size < 1:
        raise FakdError(f"lr_patch_size must be a positive integer, got {lr_patch_size!r}")
    if isinstance(val_count, bool) or not isinstance(val_count, int) or val_count < 0:
        raise FakdError(f"val_count must be an integer >= 0, got {val_count!r}")
    if val_crop is not None and (not isinstance(val_crop, int) or val_crop < scale):
        raise FakdError(f"val_crop must be None or an integer >= the scale {scale}, got {val_crop!r}")


def _load_images(sources: list) -> list[tuple[str, np.ndarray, str]]:
    """(qualified name, HR uint8 HWC array, set name) of every image; names get ``<set>/`` with several sets."""
    images = []
    for source in sources:
        prefix = f"{source.name}/" if len(sources) > 1 else ""
        images += [(prefix + name, array, source.name) for name, array in source.load_hr_images()]
    return images


class TrainingPatches:
    """Random LR/HR training patches from HR image sets, with a held-out validation split."""

    def __init__(
        self,
        sources: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        scale: int,
        lr_patch_size: int,
        data_root: str | os.PathLike | None = None,
        augment: bool = True,
        seed: int = 0,
        val_count: int = 1,
        val_crop: int | None = None,
    ):
        self.scale = check_scale(scale)
        _check_split_sizes(lr_patch_size=lr_patch_size, val_count=val_count, val_crop=val_crop, scale=self.scale)
        self.lr_patch_size = lr_patch_size
        self.hr_patch_size = lr_patch_size * self.scale
        self.augment = augment
        self.seed = int(seed)
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        if not sources:
            raise FakdError("no training sets given")
        resolved = [resolve_set(source, data_root=data_root) for source in sources]
        self.name = "+".join(source.name for source in resolved)
        images = _load_images(resolved)
        if val_count >= len(images):
            raise FakdError(f"val_count {val_count} leaves no training image: {self.name} has {len(images)} images")
        held_out = set(sorted(range(len(images)), key=lambda i: _split_key(images[i]))[:val_count])
        validation = self._split(images, held_out, val_crop=val_crop)
        if not self._hr:
            raise FakdError(
                f"every training image of {self.name} is smaller than the HR patch "
                f"{self.hr_patch_size}x{self.hr_patch_size} (LR patch {lr_patch_size} x{self.scale})"
            )
        if self.skipped_names:
            warnings.warn(
                f"{len(self.skipped_names)} training image(s) of {self.name} smaller than the HR patch "
                f"{self.hr_patch_size} px skipped: {_shortened(self.skipped_names)}",
                stacklevel=2,
            )
        self.validation = BenchmarkSet(name=f"{self.name}-val", scale=self.scale, pairs=validation)

    def _split(self, images: list, held_out: set[int], *, val_crop: int | None) -> list[BenchmarkPair]:
        """Fill the training pool (HR and bicubic LR tensors) and return the validation pairs; images
        smaller than an HR patch are skipped (``skipped_names``)."""
        self.skipped_names: list[str] = []
        self._lr: list[torch.Tensor] = []
        self._hr: list[torch.Tensor] = []
        self.train_names: list[str] = []
        validation = []
        for index, (name, array, _) in enumerate(images):
            height, width = array.shape[:2]
            if index in held_out:
                hr = _centre_crop(hr_to_tensor(array, scale=self.scale, name=name), val_crop, self.scale)
                validation.append(BenchmarkPair(name=name, lr=bicubic_lr(hr, scale=self.scale), hr=hr))
            elif height < self.hr_patch_size or width < self.hr_patch_size:
                self.skipped_names.append(name)
            else:
                hr = hr_to_tensor(array, scale=self.scale, name=name)
                self._hr.append(hr)
                self._lr.append(bicubic_lr(hr, scale=self.scale))
                self.train_names.append(name)
        return validation

    @property
    def validation_names(self) -> list[str]:
        return self.validation.names

    def __repr__(self) -> str:
        return (f"TrainingPatches({self.name!r}, scale={self.scale}, lr_patch_size={self.lr_patch_size}, "
                f"train={len(self.train_names)}, validation={len(self.validation)}, skipped={len(self.skipped_names)})")

    def patch_draws(self, iteration: int, batch_size: int) -> list[PatchDraw]:
        """The random choices behind ``batch(iteration, batch_size)``: a pure function of (seed, iteration)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        generator = torch.Generator().manual_seed(_generator_seed(self.seed, iteration))
        image_index = torch.randint(len(self._hr), (batch_size,), generator=generator).tolist()
        position = torch.rand(batch_size, 2, generator=generator, dtype=torch.float64).tolist()
        transform = torch.randint(8, (batch_size,), generator=generator).tolist()
        draws = []
        for sample in range(batch_size):
            lr = self._lr[image_index[sample]]
            draws.append(PatchDraw(
                image=image_index[sample],
                top=int(position[sample][0] * (lr.shape[1] - self.lr_patch_size + 1)),
                left=int(position[sample][1] * (lr.shape[2] - self.lr_patch_size + 1)),
                transform=transform[sample] if self.augment else 0,
            ))
        return draws

    def batch(self, iteration: int, batch_size: int, *, part: int = 0, parts: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """(lr (B, 3, p, p), hr (B, 3, p*s, p*s)) float32 in [0, 1] on the CPU: a pure function of (seed, iteration).

        With ``parts`` > 1, only the ``part``-th of ``parts`` equal contiguous slices of that same batch
        (B / parts samples): a DDP rank's share of the global batch, so the ranks together see exactly
        the batch one process would, in the same order."""
        if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1 or batch_size % parts:
            raise ValueError(f"a batch of {batch_size} does not split into {parts!r} equal parts")
        if not 0 <= part < parts:
            raise ValueError(f"part {part!r} is not one of the {parts} parts")
        share = batch_size // parts
        patch, scale = self.lr_patch_size, self.scale
        lr_patches, hr_patches = [], []
        for draw in self.patch_draws(iteration, batch_size)[part * share : (part + 1) * share]:
            top, left = draw.top, draw.left
            lr_patch = self._lr[draw.image][:, top : top + patch, left : left + patch]
            hr_patch = self._hr[draw.image][:, top * scale : (top + patch) * scale, left * scale : (left + patch) * scale]
            lr_patches.append(_dihedral(lr_patch, draw.transform))
            hr_patches.append(_dihedral(hr_patch, draw.transform))
        return torch.stack(lr_patches).float().div_(255.0), torch.stack(hr_patches).float().div_(255.0)

    def training_image(self, index: int) -> BenchmarkPair:
        """The cached (name, LR, HR) uint8 tensors of training image ``index`` (as in ``train_names``)."""
        return BenchmarkPair(name=self.train_names[index], lr=self._lr[index], hr=self._hr[index])


def _split_key(image) -> tuple[int, str]:
    name, _, set_name = image
    qualified = name if "/" in name else f"{set_name}/{name}"
    return zlib.crc32(qualified.encode("utf-8")), qualified


def _centre_crop(hr: torch.Tensor, size: int | None, scale: int) -> torch.Tensor:
    if size is None:
        return hr
    size -= size % scale
    height, width = hr.shape[1:]
    crop_h, crop_w = min(height, size), min(width, size)
    top = (height - crop_h) // 2 // scale * scale
    left = (width - crop_w) // 2 // scale * scale
    return hr[:, top : top + crop_h, left : left + crop_w].contiguous()


def _shortened(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit} more)"
