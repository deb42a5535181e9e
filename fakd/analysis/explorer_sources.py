"""Your image and your model in the explorer.

Images: a file path or an upload's bytes, read by ``fakd.data.image_io`` (the rules and errors of
``fakd upscale``: a corrupt file is one FakdError naming it). The image is what the models see, an
LR input, at full resolution: a photo larger than the explorer's ``side`` gives a ``side``×``side``
region (its centre first; ``photo_region`` takes another), never a shrunken copy, because the
per-position agreement map costs N² per tap and a shrunken photo is not what an SR model is given.
The whole photo stays in memory for choosing other regions (decoding dominates: 458 MB at the peak
for an 8000×6000 photo, 2026-12-06, and 144 MB kept). A smaller image is taken whole, with a note.

Models: ``fakd:<name>`` (shipped), a checkpoint file, or a run folder (``fakd train``/``distill``'s
``RUN/checkpoints/best.pt``, or a notebook run's ``RUN/train/checkpoints/best.pt``), at the
explorer's scale (another scale is one FakdError). The student shown first is the shipped FAKD
student with the best validation PSNR (the weight chosen on validation, as the study does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fakd.analysis.compare import StudyModel, study_models
from fakd.analysis.explorer import AffinityExplorer, explorer_images
from fakd.analysis.results import default_test_sets
from fakd.data import read_image
from fakd.data.image_io import decode_image
from fakd.errors import FakdError
from fakd.train.config import load_run_config
from fakd.train.rundir import RunDirectory
from fakd.train.runs import TRAIN_FOLDER
from fakd.zoo.checkpoint import load_model_from_checkpoint, resolve_checkpoint_path
from fakd.zoo.named_models import model_from_spec
from fakd.zoo.pretrained import PRETRAINED_PREFIX, pretrained_entry

MIN_SIDE = 4  # the smallest side the explorer draws
FAKD_LABEL = "FAKD"


@dataclass
class ExplorerImage:
    """An image for the explorer: its name, the LR image (uint8 (3, h, w)), a note ("" if nothing to
    say) and, for a region of a larger photo, the whole photo (H, W, 3)."""

    name: str
    lr: torch.Tensor
    note: str = ""
    photo: np.ndarray | None = None


def region_box(centre: tuple[int, int], *, side: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the ``side``×``side`` region centred on ``centre`` (y, x), kept
    inside a photo of ``size`` (h, w) (a shorter photo side is taken whole)."""
    height, width = size
    box_h, box_w = min(side, height), min(side, width)
    top = min(max(0, int(centre[0]) - box_h // 2), height - box_h)
    left = min(max(0, int(centre[1]) - box_w // 2), width - box_w)
    return top, left, box_h, box_w


def photo_region(photo: np.ndarray, *, name: str, side: int, centre: tuple[int, int] | None = None) -> ExplorerImage:
    """The region of ``photo`` (H, W, 3) the explorer shows: ``side`` px around ``centre`` (default: the
    photo's centre) at full resolution, with a note saying where it lies."""
    height, width = photo.shape[:2]
    centre = (height // 2, width // 2) if centre is None else centre
    top, left, box_h, box_w = region_box(centre, side=side, size=(height, width))
    lr = torch.from_numpy(np.ascontiguousarray(photo[top:top + box_h, left:left + box_w])).permute(2, 0, 1).contiguous()
    note = (f"{name}: {width}×{height} px; shown at full resolution: the {box_w}×{box_h} region of rows y "
            f"{top}–{top + box_h - 1}, columns x {left}–{left + box_w - 1} (click the photo to move it)")
    return ExplorerImage(name, lr, note, photo)


def fit_image(array: np.ndarray, *, name: str, max_side: int) -> ExplorerImage:
    """An RGB uint8 (H, W, 3) image as the explorer's LR image: a region of it when larger than
    ``max_side``, else whole (with a note when smaller)."""
    height, width = array.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise FakdError(f"{name} is {width}x{height} pixels: the explorer needs at least {MIN_SIDE} per side")
    if max(height, width) > max_side:
        return photo_region(array, name=name, side=max_side)
    lr = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()
    note = "" if min(height, width) == max_side else (
        f"{name}: {width}×{height} px, smaller than the explorer's {max_side}×{max_side} crop: taken whole, "
        f"{height * width} positions per map")
    return ExplorerImage(name, lr, note)


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


def explorer_model(spec: str, *, scale: int, role: str = "student", device=None) -> StudyModel:
    """A ×``scale`` model for the explorer from ``fakd:<name>``, a checkpoint file or a run folder (a
    model of another scale is a FakdError: its affinities are not the ones this explorer compares); a
    preset name gives fresh weights, named "(untrained)"."""
    spec = str(spec).strip()
    if not spec:
        raise FakdError("no model given: fakd:<name>, a checkpoint file or a run folder")
    folder = Path(spec).expanduser()
    if not spec.startswith(PRETRAINED_PREFIX) and folder.is_dir():
        entry = StudyModel(folder.resolve().name, role, load_model_from_checkpoint(run_checkpoint(folder), device),
                           True, folder, spec)
    elif resolve_checkpoint_path(spec).is_file():
        model = load_model_from_checkpoint(resolve_checkpoint_path(spec), device)
        entry = StudyModel(model.checkpoint_name, role, model, True, None, spec)
    else:
        _, model = model_from_spec(spec, scale=scale, device=device)  # a preset, or one clear error
        entry = StudyModel(f"{spec} (untrained)", role, model, False, None, spec)
    if entry.model.scale != scale:
        raise FakdError(f"{spec} is a ×{entry.model.scale} model; the explorer compares ×{scale} models "
                        f"(the profile sets the scale)")
    return entry


def chosen_student(students: list[StudyModel]) -> tuple[str, str]:
    """(the student to show first, why): the shipped FAKD student with the best validation PSNR, else
    the one labelled FAKD, else the first."""
    def validation_psnr(entry: StudyModel) -> float | None:
        if not entry.source.startswith(PRETRAINED_PREFIX):
            return None
        return pretrained_entry(entry.source[len(PRETRAINED_PREFIX):]).get("validation_psnr")

    fakd = [entry for entry in students if entry.name.split()[0] == FAKD_LABEL]
    scored = [(validation_psnr(entry), entry.name) for entry in fakd]
    scored = [(psnr, name) for psnr, name in scored if psnr is not None]
    if scored:
        psnr, name = max(scored)
        return name, (f"the FAKD student with the best validation PSNR ({psnr:.2f} dB) of the "
                      f"{len(fakd)} shipped FAKD students")
    if fakd:
        return fakd[0].name, "the FAKD student"
    return students[0].name, "the first student"


def explorer_from_sources(*, profile: str, data_root=None, device=None, teacher_run_dir="", sweep_dir="",
                          crop: int = 64, image_path: str = "", checkpoints=(), teacher_checkpoint: str = ""):
    """(the explorer of a profile's study or shipped models plus your image and models, the image and
    student to show first: yours when given, else "")."""
    scale = load_run_config(profile).scale
    models = study_models(profile=profile, teacher_run_dir=teacher_run_dir, sweep_dir=sweep_dir, device=device)
    teacher = (explorer_model(teacher_checkpoint, scale=scale, role="teacher", device=device)
               if teacher_checkpoint else models[0])
    images = explorer_images(default_test_sets(data_root), scale=scale, data_root=data_root, crop=crop)
    chosen, why = chosen_student(models[1:])
    explorer = AffinityExplorer(images, teacher=teacher, students=models[1:], scale=scale, chosen=chosen,
                                chosen_why=why)
    added = [explorer.add_model(explorer_model(spec, scale=scale, device=device)) for spec in checkpoints]
    first_image = ""
    if image_path:
        yours = image_from_file(image_path, max_side=crop)
        first_image = explorer.add_image(yours.name, yours.lr, note=yours.note, photo=yours.photo)
    return explorer, {"image": first_image, "student": added[0] if added else ""}
