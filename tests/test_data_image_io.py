"""Image reading/writing: one RGB uint8 representation, documented conversions, clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from fakd.data.image_io import image_to_tensor, list_images, read_image, tensor_to_image, write_image
from fakd.errors import FakdError


def random_rgb(height=13, width=17, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_png_and_bmp_round_trip_exactly(tmp_path):
    image = random_rgb()
    write_image(tmp_path / "a.png", image)
    Image.fromarray(image).save(tmp_path / "a.bmp")
    for name in ("a.png", "a.bmp"):
        read = read_image(tmp_path / name)
        assert read.dtype == np.uint8 and read.shape == (13, 17, 3) and read.flags.writeable
        np.testing.assert_array_equal(read, image)


def test_jpeg_reads_as_rgb(tmp_path):
    smooth = np.zeros((32, 32, 3), dtype=np.uint8)
    smooth[..., 0] = 200
    smooth[..., 2] = np.arange(32, dtype=np.uint8)[None, :] * 4
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95)
    read = read_image(tmp_path / "a.jpg")
    assert read.shape == (32, 32, 3) and read.dtype == np.uint8
    assert np.abs(read.astype(int) - smooth).mean() < 2


@pytest.mark.parametrize("mode", ["L", "1"])
def test_greyscale_becomes_three_equal_channels(tmp_path, mode):
    grey = np.random.default_rng(1).integers(0, 256, (9, 7), dtype=np.uint8)
    Image.fromarray(grey).convert(mode).save(tmp_path / "g.png")
    read = read_image(tmp_path / "g.png")
    expected = np.asarray(Image.fromarray(grey).convert(mode).convert("L"))
    assert read.shape == (9, 7, 3)
    for channel in range(3):
        np.testing.assert_array_equal(read[..., channel], expected)


def test_sixteen_bit_greyscale_is_scaled_to_eight_bits(tmp_path):
    wide = np.array([[0, 65535, 257 * 100, 32768]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    assert Image.open(tmp_path / "w.png").mode.startswith("I")
    read = read_image(tmp_path / "w.png")
    np.testing.assert_array_equal(read[0, :, 0], [0, 255, 100, 128])  # 32768 * 255 / 65535 = 127.50...
    assert np.array_equal(read[..., 0], read[..., 2])


def test_palette_is_expanded_through_its_palette(tmp_path):
    image = random_rgb(8, 8, seed=2)
    palette = Image.fromarray(image).quantize(colors=16)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), np.asarray(palette.convert("RGB")))


def test_alpha_is_flattened_over_white(tmp_path):
    rgba = np.array([[[10, 20, 30, 255], [10, 20, 30, 0], [200, 100, 0, 128]]], dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    read = read_image(tmp_path / "t.png")
    a = 128 / 255
    expected_third = [round(a * 200 + (1 - a) * 255), round(a * 100 + (1 - a) * 255), round((1 - a) * 255)]
    np.testing.assert_array_equal(read[0], [[10, 20, 30], [255, 255, 255], expected_third])
    la = np.array([[[50, 0], [50, 255]]], dtype=np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png")[0], [[255] * 3, [50] * 3])


def test_palette_with_transparency_is_flattened_over_white(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "pt.png", transparency=0)
    np.testing.assert_array_equal(read_image(tmp_path / "pt.png")[0], [[255, 255, 255], [0, 0, 255]])


def test_unreadable_files_raise_an_error_naming_the_file(tmp_path):
    good = tmp_path / "good.png"
    write_image(good, random_rgb(64, 64))
    data = good.read_bytes()
    cases = {
        "missing.png": None,
        "empty.png": b"",
        "truncated.png": data[: len(data) // 2],
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        "text.jpg": b"this is not an image at all",
    }
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(FakdError, match=name.replace(".", r"\.")):
            read_image(tmp_path / name)
    with pytest.raises(FakdError, match="folder"):
        read_image(tmp_path)


def test_write_is_png_only_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "out.png"
    first = random_rgb(seed=3)
    write_image(target, first)
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]

    def failing_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError):
        write_image(target, random_rgb(seed=4))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(target), first)  # the old file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]
    with pytest.raises(ValueError, match="PNG"):  # a programmer error: fakd writes .png names
        write_image(tmp_path / "out.jpg", first)
    with pytest.raises(TypeError):
        write_image(tmp_path / "f.png", first.astype(np.float32))
    grey = first[..., 0]
    write_image(tmp_path / "grey.png", grey)
    np.testing.assert_array_equal(read_image(tmp_path / "grey.png"), np.repeat(grey[..., None], 3, axis=2))


def test_tensor_conversions():
    image = random_rgb(seed=5)
    tensor = image_to_tensor(image)
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 13, 17)
    assert torch.equal(tensor[1], torch.from_numpy(image[..., 1]).float() / 255)
    np.testing.assert_array_equal(tensor_to_image(tensor), image)
    np.testing.assert_array_equal(tensor_to_image(tensor[None]), image)
    np.testing.assert_array_equal(tensor_to_image(torch.from_numpy(image).permute(2, 0, 1)), image)
    odd = torch.tensor([-0.2, 1.3, 0.5 / 255, 0.49 / 255, 254.5 / 255]).reshape(1, 1, 5).expand(3, 1, 5)
    np.testing.assert_array_equal(tensor_to_image(odd)[0, :, 0], [0, 255, 1, 0, 255])
    with pytest.raises(TypeError):
        image_to_tensor(image.astype(np.float32))


def test_list_images(tmp_path):
    for name in ("b.png", "a.JPG", "c.bmp", "d.jpeg", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.bmp", "d.jpeg"]
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "absent", tmp_path / "notes.txt"):
        with pytest.raises(FakdError, match=folder.name):
            list_images(folder)



def test_decoding_bytes_follows_the_rules_of_reading_the_file(tmp_path):
    """An upload's bytes decode to exactly what reading the same file gives (16-bit colour, alpha, JPEG)."""
    import png

    from fakd.data.image_io import decode_image

    wide = np.random.default_rng(3).integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    with open(tmp_path / "wide.png", "wb") as stream:
        png.Writer(width=6, height=5, bitdepth=16, greyscale=False).write(stream, wide.reshape(5, -1).tolist())
    rgba = np.random.default_rng(4).integers(0, 256, (7, 8, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(random_rgb()).save(tmp_path / "photo.jpg", quality=90)
    for name in ("wide.png", "alpha.png", "photo.jpg"):
        data = (tmp_path / name).read_bytes()
        np.testing.assert_array_equal(decode_image(data, name=name), read_image(tmp_path / name))


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n" + b"junk" * 10, b"hello"])
def test_decoding_bad_bytes_is_one_error_naming_the_upload(data):
    from fakd.data.image_io import decode_image

    with pytest.raises(FakdError) as caught:
        decode_image(data, name="holiday.png")
    assert "holiday.png" in str(caught.value) and "BytesIO" not in str(caught.value)
