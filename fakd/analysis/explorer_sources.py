"""Your image and your model in the explorer.

Images: a file path or an upload's bytes, read by ``fakd.data.image_io`` (the rules and errors of
``fakd upscale``: a corrupt file is one FakdError naming it). The image is what the models see, an
LR input. One larger than the explorer's ``max_side`` is shrunk (MATLAB bicubic, antialiased) to fit,
with a note saying so: the per-position agreement map costs N² per tap, so N stays bounded. Memory:
decoding dominates (``read_image``: Pillow's copy and the array; 458 MB at the peak for an 8000×6000
photo, 2026-12-06); then Pillow's box filter (``reduce``) to at most twice the target size before the
bicubic step, never a float copy of the full image.

Models: ``fakd:<name>`` (shipped), a checkpoint file, or a run folder (``fakd train``/``distill``'s
``RUN/checkpoints/best.pt``, or a notebook run's ``RUN/train/checkpoints/best.pt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fakd.analysis.compare import StudyModel, study_models
from fakd.analysis.explorer import AffinityExplorer, explorer_images
from fakd.analysis.results import default_test_sets
from fakd.data import imresize, read_image
from fakd.data.image_io import decode_image
from fakd.errors import FakdError
from fakd.train.config import load_run_config
from fakd.train.rundir import RunDirectory
from fakd.train.runs import TRAIN_FOLDER
from fakd.zoo.checkpoint import load_model_from_checkpoint, resolve_checkpoint_path
from fakd.zoo.named_models import model_from_spec
from fakd.zoo.pretrained import PRETRAINED_PREFIX

MIN_SIDE = 4  # the smallest side the explorer draws (after shrinking)


@dataclass
class ExplorerImage:
    """An image for the explorer: its name, the LR image (uint8 (3, h, w)) and a note ("" if kept whole)."""

    name: str
    lr: torch.Tensor
    note: str = ""


def fit_image(array: np.ndarray, *, name: str, max_side: int) -> ExplorerImage:
    """An RGB uint8 (H, W, 3) image as the explorer's LR image: shrunk to fit ``max_side`` if larger."""
    height, width = array.shape[:2]
    if max(height, width) <= max_side:
        if min(height, width) < MIN_SIDE:
            raise FakdError(f"{name} is {width}x{height} pixels: the explorer needs at least {MIN_SIDE} per side")
        return ExplorerImage(name, torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous())
    factor = max_side / max(height, width)
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    if min(size) < MIN_SIDE:
        raise FakdError(f"{name} is {width}x{height} pixels: too narrow to shrink to {max_side} px and keep "
                        f"{MIN_SIDE} px on the short side")
    reduce = max(height, width) // (2 * max_side)
    if reduce >= 2:  # a box filter first, so the bicubic step works on a small image
        array = np.array(Image.fromarray(array).reduce(reduce))
    small = imresize(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1), size=size)
    note = (f"{name}: {width}×{height} px shrunk to {size[1]}×{size[0]} (the explorer shows at most "
            f"{max_side} px per side)")
    return ExplorerImage(name, small.contiguous(), note)


def image_from_file(path: str | Path, *, max_side: int) -> ExplorerImage:
    """An image file as the explorer's LR image (FakdError for a missing or corrupt file)."""
    path = Path(path).expanduser()
    return fit_image(read_image(path), name=path.name, max_side=max_side)


def image_from_upload(data: bytes, *, name: str, max_side: int) -> ExplorerImage:
    """An uploaded file's bytes as the explorer's LR image (FakdError for empty or corrupt data)."""
    return fit_image(decode_image(bytes(data), name=name), name=name, max_side=max_side)


def run_checkpoint(folder: Path) -> Path:
    """The best checkpoint of a run folder: an engine run's or a training notebook run's."""
    for candidate in (RunDirectory(folder).best_checkpoint, RunDirectory(folder / TRAIN_FOLDER).best_checkpoint):
        if candidate.is_file():
            return candidate
    raise FakdError(f"{folder} is a folder without a trained model (checkpoints/best.pt or "
                    f"{TRAIN_FOLDER}/checkpoints/best.pt)")


def explorer_model(spec: str, *, role: str = "student", device=None) -> StudyModel:
    """A model for the explorer from ``fakd:<name>``, a checkpoint file or a run folder (any scale:
    the explorer works at LR); a preset name gives fresh weights, named "(untrained)"."""
    spec = str(spec).strip()
    if not spec:
        raise FakdError("no model given: fakd:<name>, a checkpoint file or a run folder")
    folder = Path(spec).expanduser()
    if not spec.startswith(PRETRAINED_PREFIX) and folder.is_dir():
        model = load_model_from_checkpoint(run_checkpoint(folder), device)
        return StudyModel(folder.resolve().name, role, model, True, folder, spec)
    path = resolve_checkpoint_path(spec)
    if path.is_file():
        model = load_model_from_checkpoint(path, device)
        return StudyModel(model.checkpoint_name, role, model, True, None, spec)
    _, model = model_from_spec(spec, scale=4, device=device)  # a preset, or one clear error
    return StudyModel(f"{spec} (untrained)", role, model, False, None, spec)


def explorer_from_sources(*, profile: str, data_root=None, device=None, teacher_run_dir="", sweep_dir="",
                          crop: int = 64, image_path: str = "", checkpoints=(), teacher_checkpoint: str = ""):
    """(the explorer of a profile's study or shipped models plus your image and models, the image and
    student to show first: yours when given, else "")."""
    scale = load_run_config(profile).scale
    models = study_models(profile=profile, teacher_run_dir=teacher_run_dir, sweep_dir=sweep_dir, device=device)
    teacher = explorer_model(teacher_checkpoint, role="teacher", device=device) if teacher_checkpoint else models[0]
    images = explorer_images(default_test_sets(data_root), scale=scale, data_root=data_root, crop=crop)
    explorer = AffinityExplorer(images, teacher=teacher, students=models[1:])
    added = [explorer.add_model(explorer_model(spec, device=device)) for spec in checkpoints]
    first_image = ""
    if image_path:
        yours = image_from_file(image_path, max_side=crop)
        first_image = explorer.add_image(yours.name, yours.lr, note=yours.note)
    return explorer, {"image": first_image, "student": added[0] if added else ""}
