"""Report compaction: palette PNGs are smaller and look the same; embedded images stay valid."""

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from fakd.study.compact import compact_embedded_pngs, compact_png_bytes, compact_png_file  # noqa: E402


def _heat_map_png() -> bytes:
    """A figure like the report's: a smooth heat map with a colour bar, title and labels."""
    y, x = np.mgrid[0:64, 0:64]
    figure, axis = plt.subplots(figsize=(4, 3), dpi=100)
    shown = axis.imshow(np.cos(x / 9.0) * np.sin(y / 7.0), cmap="magma")
    figure.colorbar(shown, ax=axis, label="cosine similarity")
    axis.set(title="affinity row", xlabel="x", ylabel="y")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_palette_png_is_smaller_and_visually_equal():
    original = _heat_map_png()
    smaller = compact_png_bytes(original)
    assert len(smaller) < 0.7 * len(original)
    difference = np.abs(_pixels(smaller) - _pixels(original))
    assert difference.shape[:2] == _pixels(original).shape[:2]
    assert difference.mean() < 2.0 and np.percentile(difference, 99) <= 12


def test_already_small_images_are_kept_as_they_are(tmp_path):
    tiny = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).quantize().save(tiny, format="PNG")
    assert compact_png_bytes(tiny.getvalue()) == tiny.getvalue()
    path = tmp_path / "figure.png"
    path.write_bytes(_heat_map_png())
    before = path.stat().st_size
    compact_png_file(path)
    assert path.stat().st_size < before and Image.open(path).mode == "P"


def test_embedded_pngs_in_html_are_compacted_and_still_decode():
    original = _heat_map_png()
    encoded = base64.b64encode(original).decode("ascii")
    page = f'<p>text</p><img src="data:image/png;base64,{encoded}"/><img src="data:image/jpeg;base64,AAAA"/>'
    compacted = compact_embedded_pngs(page)
    assert len(compacted) < len(page) and "data:image/jpeg;base64,AAAA" in compacted
    new_data = base64.b64decode(compacted.split("data:image/png;base64,")[1].split('"')[0])
    assert np.abs(_pixels(new_data) - _pixels(original)).mean() < 2.0
