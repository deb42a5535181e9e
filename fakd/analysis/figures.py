"""Figures over images: affinity rows as heat maps (teacher vs student), zoomed crops, the primer's steps.

Every function returns a matplotlib ``Figure`` with titles, labelled axes and colour bars; ``save_figure``
writes it as PNG and closes it. Headless use (papermill, CI) needs no display: importing this module
selects the Agg backend unless a backend is already active (e.g. inline in Jupyter).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

if "inline" not in matplotlib.get_backend() and "ipympl" not in matplotlib.get_backend():
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

AFFINITY_MAP = "magma"
DIFFERENCE_MAP = "RdBu_r"


def _inline_backend() -> bool:
    return "inline" in matplotlib.get_backend()


def save_figure(figure: plt.Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Write ``figure`` as PNG to ``path`` and close it; returns the path. In a notebook (inline
    backend) the figure is also shown, so the executed notebook and its HTML carry it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    if _inline_backend():
        from IPython.display import display

        display(figure)
    plt.close(figure)
    return path


def as_display_image(image) -> np.ndarray:
    """An RGB image as (H, W, 3) uint8 for imshow: uint8 HWC arrays, uint8/float (3, H, W) tensors."""
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.dim() == 4:
            tensor = tensor[0]
        if tensor.is_floating_point():
            tensor = (tensor.clamp(0, 1) * 255).round().to(torch.uint8)
        image = tensor.permute(1, 2, 0).numpy()
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3) or (3, H, W), got shape {array.shape}")
    return array


def _grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0


def _pixel_axes(axis, *, title: str) -> None:
    axis.set_title(title, fontsize=9)
    axis.set_xlabel("x (LR pixels)")
    axis.set_ylabel("y (LR pixels)")


def _heat_over_image(figure, axis, image: np.ndarray, values: np.ndarray, *, title: str, cmap: str,
                     limits: tuple[float, float], label: str, pixel=None):
    """``values`` (h, w) drawn over the greyscale image (resized to the map), with a colour bar."""
    height, width = values.shape
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    axis.imshow(_grey(image), cmap="gray", extent=extent, vmin=0, vmax=1)
    shown = axis.imshow(values, cmap=cmap, alpha=0.75, vmin=limits[0], vmax=limits[1], extent=extent)
    if pixel is not None:
        axis.plot(pixel[1], pixel[0], marker="+", color="cyan", markersize=12, markeredgewidth=2)
    _pixel_axes(axis, title=title)
    figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.04, label=label)


def affinity_figure(image, views: Sequence[dict], *, pixel: tuple[int, int], title: str,
                    teacher_name: str = "teacher", student_name: str = "student") -> plt.Figure:
    """One row per tap: the image with the chosen pixel, the teacher's and the student's affinity rows
    of that pixel as heat maps over the image, and student − teacher; titles carry the agreement.

    ``views`` are ``fakd.analysis.affinity_view.compare_affinities`` entries; ``image`` is the LR image.
    """
    if not views:
        raise ValueError("no taps to show")
    image = as_display_image(image)
    figure, axes = plt.subplots(len(views), 4, figsize=(17, 3.9 * len(views)), squeeze=False)
    for axis_row, view in zip(axes, views):
        low = float(min(view["teacher_row"].min(), view["student_row"].min()))
        spread = float(np.abs(view["difference"]).max()) or 1e-6
        axis_row[0].imshow(image)
        axis_row[0].plot(pixel[1], pixel[0], marker="+", color="cyan", markersize=14, markeredgewidth=2)
        _pixel_axes(axis_row[0], title=f"LR image, pixel (y={pixel[0]}, x={pixel[1]})")
        _heat_over_image(figure, axis_row[1], image, view["teacher_row"], cmap=AFFINITY_MAP, limits=(low, 1.0),
                         title=f"{teacher_name} at {view['tap']}", label="cosine similarity", pixel=pixel)
        _heat_over_image(figure, axis_row[2], image, view["student_row"], cmap=AFFINITY_MAP, limits=(low, 1.0),
                         title=f"{student_name} at {view['tap']}", label="cosine similarity", pixel=pixel)
        _heat_over_image(figure, axis_row[3], image, view["difference"], cmap=DIFFERENCE_MAP,
                         limits=(-spread, spread), label="student − teacher", pixel=pixel,
                         title=f"difference at {view['tap']}: mean |ΔA| {view['l1']:.3f}, r {view['correlation']:.2f}")
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    return figure


def crops_figure(images: dict[str, np.ndarray], *, box: tuple[int, int, int], title: str,
                 scores: dict[str, str] | None = None) -> plt.Figure:
    """Each image whole, with the crop ``box`` = (top, left, size) outlined and shown zoomed in an inset."""
    if not images:
        raise ValueError("no images to show")
    top, left, size = box
    figure, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images), 4.6), squeeze=False)
    for axis, (name, image) in zip(axes[0], images.items()):
        image = as_display_image(image)
        axis.imshow(image)
        axis.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, edgecolor="yellow", linewidth=1.5))
        inset = axis.inset_axes([0.52, 0.52, 0.46, 0.46])
        inset.imshow(image[top:top + size, left:left + size], interpolation="nearest")
        inset.set_xticks([])
        inset.set_yticks([])
        for spine in inset.spines.values():
            spine.set_edgecolor("yellow")
            spine.set_linewidth(1.5)
        label = name if not scores or name not in scores else f"{name}\n{scores[name]}"
        axis.set_title(label, fontsize=9)
        axis.set_xlabel("x (HR pixels)")
        axis.set_ylabel("y (HR pixels)")
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    return figure


def pick_crop_box(hr, *, size: int) -> tuple[int, int, int]:
    """(top, left, size) of the square with the most detail (largest grey-level variance) on a coarse grid."""
    grey = _grey(as_display_image(hr))
    height, width = grey.shape
    size = int(min(size, height, width))
    best, best_box = -1.0, (0, 0, size)
    step = max(1, size // 2)
    for top in range(0, height - size + 1, step):
        for left in range(0, width - size + 1, step):
            value = float(grey[top:top + size, left:left + size].var())
            if value > best:
                best, best_box = value, (top, left, size)
    return best_box


# ----------------------------------------------------------------------------------------------
# The primer's pictures


def feature_steps_figure(image, feat: torch.Tensor, *, pixel: tuple[int, int], row: np.ndarray,
                         channels: int = 3) -> plt.Figure:
    """Spatial affinity step by step: the image, some channels of F, the per-position norm ‖f_n‖
    (what normalisation removes), and the affinity row of ``pixel``."""
    image = as_display_image(image)
    feat = feat[0] if feat.dim() == 4 else feat
    shown = min(channels, feat.shape[0])
    columns = 3  # rows of three panels: readable at page width (one row of six is not)
    rows = -(-(shown + 3) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(13.5, 4.6 * rows), squeeze=False)
    axes = list(grid.flat)
    for axis in axes[shown + 3:]:
        axis.axis("off")
    axes[0].imshow(image)
    axes[0].plot(pixel[1], pixel[0], marker="+", color="cyan", markersize=14, markeredgewidth=2)
    _pixel_axes(axes[0], title="1. LR input, chosen pixel")
    for index in range(shown):
        values = feat[index].numpy()
        picture = axes[index + 1].imshow(values, cmap="viridis")
        _pixel_axes(axes[index + 1], title=f"2. feature channel {index} of {feat.shape[0]}")
        figure.colorbar(picture, ax=axes[index + 1], fraction=0.046, pad=0.04, label="activation")
    norms = torch.linalg.vector_norm(feat, dim=0).numpy()
    picture = axes[shown + 1].imshow(norms, cmap="cividis")
    _pixel_axes(axes[shown + 1], title="3. length ‖f_n‖ of each position's vector")
    figure.colorbar(picture, ax=axes[shown + 1], fraction=0.046, pad=0.04, label="L2 norm over channels")
    _heat_over_image(figure, axes[shown + 2], image, row, cmap=AFFINITY_MAP, limits=(float(row.min()), 1.0),
                     title="4. affinity row: cos(f_pixel, f_n)", label="cosine similarity", pixel=pixel)
    for axis in axes[:shown + 3]:
        axis.title.set_fontsize(11)
    figure.suptitle("Spatial affinity, step by step", fontsize=13)
    figure.tight_layout()
    return figure


def affinity_matrix_figure(matrices: dict[str, np.ndarray], *, title: str) -> plt.Figure:
    """Whole N×N affinity matrices side by side (one colour scale), e.g. a 64- and a 256-channel feature."""
    figure, axes = plt.subplots(1, len(matrices), figsize=(5.2 * len(matrices), 4.6), squeeze=False)
    low = min(float(matrix.min()) for matrix in matrices.values())
    for axis, (name, matrix) in zip(axes[0], matrices.items()):
        picture = axis.imshow(matrix, cmap=AFFINITY_MAP, vmin=low, vmax=1.0, interpolation="nearest")
        axis.set_title(f"{name}: A is {matrix.shape[0]}×{matrix.shape[1]}", fontsize=10)
        axis.set_xlabel("position m (row-major)")
        axis.set_ylabel("position n (row-major)")
        figure.colorbar(picture, ax=axis, fraction=0.046, pad=0.04, label="cosine similarity A[n, m]")
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    return figure


def affinity_rows_figure(image, rows: dict[str, np.ndarray], *, pixel: tuple[int, int], title: str) -> plt.Figure:
    """Several affinity rows of the same pixel (e.g. features of different widths) over the image."""
    image = as_display_image(image)
    figure, axes = plt.subplots(1, len(rows), figsize=(4.8 * len(rows), 4.2), squeeze=False)
    low = min(float(row.min()) for row in rows.values())
    for axis, (name, row) in zip(axes[0], rows.items()):
        _heat_over_image(figure, axis, image, row, cmap=AFFINITY_MAP, limits=(low, 1.0), title=name,
                         label="cosine similarity", pixel=pixel)
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    return figure
