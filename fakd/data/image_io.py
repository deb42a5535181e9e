"""Image files <-> one in-memory representation: RGB, uint8, (H, W, 3) numpy arrays.

Reading (Pillow; PNG, JPEG, BMP and anything else Pillow decodes):

- greyscale (modes 1, L, I;16, I) is copied into three equal channels; palette images are
  expanded to RGB through their palette (with their transparency, if any);
- 16-bit samples (greyscale, and 16-bit-per-channel colour PNGs, which are decoded with pypng
  because Pillow would keep only their high byte) are scaled to 8 bits: ``round(v * 255 / 65535)``,
  halves rounded up; a 16-bit alpha channel is scaled the same way before flattening;
- an alpha channel (RGBA, LA, PA) is flattened over a WHITE background:
  ``out = round(a * colour + (1 - a) * 255)`` with ``a = alpha / 255`` (fully transparent pixels
  become white, fully opaque pixels keep their colour exactly);
- pixel data are taken as stored: EXIF orientation tags are not applied;
- a missing, empty (0 bytes), truncated, corrupt or undecodable file raises ``FakdError`` naming it;
  ``decode_image`` reads a file's bytes (an upload in the explorer) by the same rules.

In torch, images are float32 ``(3, H, W)`` in [0, 1] (``image_to_tensor``) and back to uint8 HWC by
clamping and rounding half up (``tensor_to_image``). Writing is PNG only, atomic (a temporary file
in the same folder, then ``os.replace``), so an interrupted write never leaves a half-written image.
``write_png_bands`` encodes an image given band by band (for ``fakd upscale``, whose outputs are never
held whole in memory).
"""

import io
import os
from pathlib import Path

import numpy as np
import png
import torch
from PIL import Image

from fakd.atomic import write_bytes_atomically
from fakd.errors import FakdError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); see the module docstring for the conversion rules."""
    path = Path(path)
    if not path.exists():
        raise FakdError(f"image file not found: {path}")
    if not path.is_file():
        raise FakdError(f"not an image file (it is a folder or special file): {path}")
    if path.stat().st_size == 0:
        raise FakdError(f"image file is empty (0 bytes): {path}")
    try:
        with open(path, "rb") as stream:
            head = stream.read(26)
    except OSError as error:
        raise FakdError(f"cannot read image {path}: {error}") from None
    return _decode(path, head=head, source=str(path))


def decode_image(data: bytes, *, name: str) -> np.ndarray:
    """An image file's bytes (an upload) as RGB uint8 (H, W, 3), by the same rules as ``read_image``;
    empty, truncated or corrupt data raise ``FakdError`` naming ``name``."""
    if not data:
        raise FakdError(f"image file is empty (0 bytes): {name}")
    return _decode(io.BytesIO(data), head=bytes(data[:26]), source=name)


def _decode(stream, *, head: bytes, source: str) -> np.ndarray:
    """Decode a path or binary stream; any decoding failure becomes one FakdError naming ``source``."""
    try:
        if _is_wide_colour_png(head):
            return _read_wide_colour_png(stream, source=source)
        with Image.open(stream) as image:
            image.load()  # decode now, so truncated or corrupt data fail here
            return _pil_to_rgb_uint8(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, png.Error) as error:
        reason = str(error)
        if isinstance(stream, io.BytesIO) and reason.startswith("cannot identify image file"):
            reason = "not an image format Pillow can decode"  # its message would name a BytesIO object
        raise FakdError(f"cannot read image {source}: {reason}") from None


def _is_wide_colour_png(head: bytes) -> bool:
    """A PNG whose IHDR says 16 bits per sample and colour type RGB, grey+alpha or RGBA."""
    return (len(head) >= 26 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] == 16
            and head[25] in (2, 4, 6))


def _read_wide_colour_png(stream, *, source: str) -> np.ndarray:
    reader = png.Reader(file=stream) if hasattr(stream, "read") else png.Reader(filename=str(stream))
    width, height, rows, info = reader.asDirect()
    if width * height > Image.MAX_IMAGE_PIXELS:
        raise FakdError(f"cannot read image {source}: {width}x{height} pixels is beyond Pillow's limit")
    wide = np.asarray(np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]), dtype=np.float64)
    narrow = np.floor(wide * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    return to_rgb_uint8(narrow.reshape(height, width, info["planes"]))


def _pil_to_rgb_uint8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image).astype(np.float64)
        grey = np.floor(np.clip(wide, 0, 65535) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
        return to_rgb_uint8(grey)
    if mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA"):
        image = image.convert("RGBA")
    elif mode == "La":
        image = image.convert("LA")
    elif mode == "RGBa":
        image = image.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, F, ...
    return to_rgb_uint8(np.asarray(image))


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Bring a uint8 array (H, W), (H, W, 1|2|3|4) to RGB (H, W, 3): grey copied, alpha over white."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"to_rgb_uint8 expects uint8 samples, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image array (H, W[, 1-4]), got shape {array.shape}")
    channels = array.shape[2]
    if channels in (2, 4):
        colour = array[:, :, :-1].astype(np.float64)
        alpha = array[:, :, -1:].astype(np.float64) / 255.0
        array = np.floor(alpha * colour + (1.0 - alpha) * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()


def write_image(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 (H, W, 3) or (H, W) array as PNG, atomically; parent folders are created."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"write_image writes PNG files; give a .png name, not {path}")
    write_bytes_atomically(path, encode_png(array))


def encode_png(array: np.ndarray) -> bytes:
    """A uint8 (H, W, 3) or (H, W) array as the bytes of a PNG file."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise TypeError(f"write_image expects uint8 (H, W, 3) or (H, W), got {array.dtype} {array.shape}")
    encoded = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(encoded, format="PNG")
    return encoded.getvalue()


def write_png_bands(stream, *, width: int, height: int, bands) -> None:
    """Encode an RGB image given as uint8 (rows, width, 3) bands, top to bottom, as PNG into ``stream``
    (pypng, zlib level 6): only one band is in memory at a time."""

    def packed_rows():
        written = 0
        for band in bands:
            band = np.ascontiguousarray(band, dtype=np.uint8)
            if band.ndim != 3 or band.shape[1:] != (width, 3):
                raise TypeError(f"write_png_bands expects (rows, {width}, 3) uint8 bands, got {band.shape}")
            written += band.shape[0]
            yield from band.reshape(band.shape[0], width * 3)
        if written != height:
            raise ValueError(f"write_png_bands got {written} rows for an image of height {height}")

    png.Writer(width, height, greyscale=False, bitdepth=8, compression=6).write_packed(stream, packed_rows())


def image_to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) array -> float32 (3, H, W) tensor in [0, 1]."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise TypeError(f"image_to_tensor expects uint8 (H, W, 3), got {array.dtype} {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().div_(255.0)


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) tensor -> uint8 (H, W, 3); float input is clamped to [0, 1] and rounded."""
    if tensor.ndim == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise TypeError(f"tensor_to_image expects (3, H, W), got shape {tuple(tensor.shape)}")
    tensor = tensor.detach()
    if tensor.dtype != torch.uint8:
        tensor = torch.floor(tensor.float().clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
    return np.ascontiguousarray(tensor.permute(1, 2, 0).cpu().numpy())


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files (png/jpg/jpeg/bmp, hidden files ignored) directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.exists():
        raise FakdError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise FakdError(f"not a folder: {folder}")
    images = sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in IMAGE_SUFFIXES
    )
    if not images:
        raise FakdError(f"no images (png/jpg/jpeg/bmp) in folder: {folder}")
    return images
