"""Smaller report files: figures re-encoded as 256-colour palette PNGs.

Matplotlib writes full RGBA PNGs; a report with a dozen affinity figures, each also embedded in its
notebook's HTML page, grows to tens of MB. Heat maps, plots and photo crops at report size survive a
256-colour palette with no visible change, at about a third of the bytes. An image is only replaced
when the palette version is smaller.
"""

import base64
import io
import re
from pathlib import Path

from PIL import Image

from fakd.atomic import write_bytes_atomically

_EMBEDDED_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=\s]+)")


def compact_png_bytes(data: bytes, *, colors: int = 256) -> bytes:
    """``data`` (a PNG) as a palette PNG of at most ``colors`` colours, or ``data`` if that is not smaller."""
    with Image.open(io.BytesIO(data)) as image:
        if image.mode == "P":
            return data
        has_alpha = image.mode in ("RGBA", "LA") and image.getchannel("A").getextrema()[0] < 255
        rgb = image.convert("RGBA" if has_alpha else "RGB")
        method = Image.Quantize.FASTOCTREE if has_alpha else Image.Quantize.MEDIANCUT
        palette = rgb.quantize(colors=colors, method=method)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    smaller = buffer.getvalue()
    return smaller if len(smaller) < len(data) else data


def compact_png_file(path: Path) -> None:
    """Re-encode the PNG at ``path`` in place (atomically) when that makes it smaller."""
    path = Path(path)
    data = path.read_bytes()
    smaller = compact_png_bytes(data)
    if smaller is not data:
        write_bytes_atomically(path, smaller)


def compact_embedded_pngs(page: str) -> str:
    """An HTML page with every embedded base64 PNG re-encoded by ``compact_png_bytes``."""

    def replace(match: re.Match) -> str:
        data = base64.b64decode("".join(match.group(1).split()))
        return "data:image/png;base64," + base64.b64encode(compact_png_bytes(data)).decode("ascii")

    return _EMBEDDED_PNG.sub(replace, page)
