"""The affinity explorer behind ``01_affinity_explorer`` and ``fakd explore``: images, models, maps.

``AffinityExplorer.figure(image=..., student=..., tap=..., pixel=...)`` draws the teacher's and the
chosen student's affinity rows of one LR pixel (all taps or one), their difference and agreement: the
figure the notebook saves headless (papermill) for the report. The interactive views
(``fakd.analysis.explorer_app``) read the same explorer through ``rows``, ``agreement_maps`` and
``crop_matrices``, which work on unit features computed once per image, model and tap
(``fakd.analysis.affinity_maps``; a bounded cache), so a new pixel costs a matrix-vector product per
tap. Any model may be the teacher or the student of a pair (``models``); images and models can be
added (``add_image``, ``add_model``: your photo, your checkpoint).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from fakd.analysis.affinity_maps import UnitFeatures, affinity_rows, agreement_map, crop_box, crop_matrix, unit_features
from fakd.analysis.affinity_view import compare_affinities
from fakd.analysis.compare import StudyModel
from fakd.analysis.figures import affinity_figure, plt
from fakd.data import open_benchmark_set, resolve_data_root
from fakd.errors import FakdError

ALL_TAPS = "all taps"
CACHE_ENTRIES = 24  # unit features (image, model) and agreement maps kept: ~0.5 MB per tap at 64x64x32


def centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size``×``size`` part of a (3, H, W) image (smaller sides are kept whole)."""
    height, width = image.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return image[..., top:top + size, left:left + size]


def centre_crop_pair(pair, *, size: int, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned central crops of a ``BenchmarkPair``: LR ``size``² and the HR ``(size·scale)``² above it."""
    height, width = pair.lr.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    lr = pair.lr[..., top:top + size, left:left + size]
    hr = pair.hr[..., top * scale:(top + size) * scale, left * scale:(left + size) * scale]
    return lr, hr


def explorer_images(test_sets: Sequence[str], *, scale: int, data_root=None, crop: int = 96,
                    limit: int = 6) -> dict[str, torch.Tensor]:
    """``{"<set>/<name>": LR uint8 (3, h, w)}``, centre-cropped to ``crop`` LR pixels, at most ``limit``."""
    images = {}
    for name in test_sets:
        for pair in open_benchmark_set(name, scale=scale, data_root=resolve_data_root(data_root)):
            if len(images) >= limit:
                return images
            images[f"{name}/{pair.name}"] = centre_crop(pair.lr, crop)
    if not images:
        raise FakdError(f"no images in {list(test_sets)}")
    return images


@dataclass
class AffinityExplorer:
    """Images, the teacher, the students and their common taps; draws one selection."""

    images: dict[str, torch.Tensor]
    teacher: StudyModel
    students: list[StudyModel]
    notes: dict[str, str] = field(default_factory=dict)  # image → how it was made to fit ("" when whole)
    photos: dict[str, np.ndarray] = field(default_factory=dict)  # image → the whole photo it is a region of
    scale: int | None = None  # the scale every model must have (None: not checked)
    chosen: str = ""  # the student shown first ("": the first); ``chosen_why`` says why it is that one
    chosen_why: str = ""

    def __post_init__(self):
        if not self.students:
            raise FakdError("the explorer needs at least one student model")
        self.taps = list(self.students[0].model.default_taps)
        self._features: OrderedDict = OrderedDict()
        self._agreements: OrderedDict = OrderedDict()

    @property
    def models(self) -> list[StudyModel]:
        """Every model, the teacher first: any of them may be either side of a pair."""
        return [self.teacher, *self.students]

    def student(self, name: str) -> StudyModel:
        return _named(self.students, name, kind="student")

    def model(self, name: str) -> StudyModel:
        return _named(self.models, name, kind="model")

    def add_image(self, name: str, lr: torch.Tensor, *, note: str = "", photo: np.ndarray | None = None) -> str:
        """Add an LR uint8 (3, h, w) image (a name already taken gets a number); returns its name.
        ``photo``: the whole (H, W, 3) photo ``lr`` is a region of (another region can be chosen)."""
        key = _unique(name, self.images)
        self.images[key] = lr
        self.notes[key] = note
        if photo is not None:
            self.photos[key] = photo
        return key

    def replace_image(self, name: str, lr: torch.Tensor, *, note: str = "") -> None:
        """Put another LR image under ``name`` (another region of a photo); its cached maps are dropped."""
        self.images[name] = lr
        self.notes[name] = note
        for cache in (self._features, self._agreements):
            for key in [key for key in cache if key[0] == name]:
                del cache[key]

    def same_model(self, entry: StudyModel) -> str | None:
        """The name of a listed model loaded from the same checkpoint file as ``entry``, or None."""
        path = _checkpoint_file(entry)
        return next((model.name for model in self.models if path and _checkpoint_file(model) == path), None)

    def add_model(self, entry: StudyModel) -> str:
        """Add a model as a student; returns its name. A model already listed (the same checkpoint file)
        is not added twice: its name is returned. Another scale than the explorer's is a FakdError."""
        if self.scale is not None and getattr(entry.model, "scale", self.scale) != self.scale:
            raise FakdError(f"{entry.source or entry.name} is a ×{entry.model.scale} model; this explorer compares "
                            f"×{self.scale} models")
        listed = self.same_model(entry)
        if listed is not None:
            return listed
        entry.name = _unique(entry.name, [model.name for model in self.models])
        self.students.append(entry)
        return entry.name

    def taps_of(self, student: str) -> list[str]:
        """The taps shown for a student: its default taps (the teacher uses the same names)."""
        return list(self.model(student).model.default_taps)

    def features(self, *, image: str, model: str, taps: Sequence[str]) -> UnitFeatures:
        """Unit features of ``model`` on ``image`` at ``taps``, computed once (kept in a bounded cache)."""
        if image not in self.images:
            raise FakdError(f"unknown image {image!r}; images: {', '.join(self.images)}")
        return _cached(self._features, (image, model, tuple(taps)),
                       lambda: unit_features(self.model(model).model, self.images[image], taps=taps))

    def rows(self, *, image: str, teacher: str, student: str, pixel: tuple[int, int]) -> list[dict]:
        """Per tap of ``student``: the teacher's and student's affinity rows of ``pixel`` and their difference."""
        taps = self.taps_of(student)
        teacher_rows = affinity_rows(self.features(image=image, model=teacher, taps=taps), pixel)
        student_rows = affinity_rows(self.features(image=image, model=student, taps=taps), pixel)
        return [{"tap": tap, "teacher_row": teacher_rows[tap], "student_row": student_rows[tap],
                 "difference": student_rows[tap] - teacher_rows[tap]} for tap in taps]

    def agreement_maps(self, *, image: str, teacher: str, student: str) -> dict[str, np.ndarray]:
        """Per tap: mean_m |A_s[n, m] − A_t[n, m]| at every position n, as an (h, w) map (cached)."""
        taps = self.taps_of(student)

        def compute() -> dict[str, np.ndarray]:
            ours = self.features(image=image, model=student, taps=taps)
            theirs = self.features(image=image, model=teacher, taps=taps)
            return {tap: agreement_map(ours.units[tap], theirs.units[tap], size=ours.size) for tap in taps}

        return _cached(self._agreements, (image, teacher, student, tuple(taps)), compute)

    def crop_matrices(self, *, image: str, teacher: str, student: str, pixel: tuple[int, int],
                      side: int) -> tuple[tuple[int, int, int, int], list[dict]]:
        """(box, per tap the teacher's and student's full affinity matrices of the crop around ``pixel``)."""
        taps = self.taps_of(student)
        ours = self.features(image=image, model=student, taps=taps)
        theirs = self.features(image=image, model=teacher, taps=taps)
        box = crop_box(pixel, side=side, size=ours.size)
        return box, [{"tap": tap, "teacher": crop_matrix(theirs.units[tap], box=box, size=theirs.size),
                      "student": crop_matrix(ours.units[tap], box=box, size=ours.size)} for tap in taps]

    def default_selection(self) -> dict:
        """First image, the chosen student (else the first), all taps, the image's centre pixel."""
        image = next(iter(self.images))
        height, width = self.images[image].shape[-2:]
        return {"image": image, "student": self.chosen or self.students[0].name, "tap": ALL_TAPS,
                "pixel": (height // 2, width // 2)}

    def selection(self, *, image: str = "", student: str = "", tap: str = "",
                  pixel: Sequence[int] = ()) -> dict:
        """The default selection with the given (non-empty) choices put in, checked."""
        chosen = self.default_selection()
        if image:
            if image not in self.images:
                raise FakdError(f"unknown image {image!r}; images: {', '.join(self.images)}")
            chosen["image"] = image
            height, width = self.images[image].shape[-2:]
            chosen["pixel"] = (height // 2, width // 2)
        if student:
            chosen["student"] = self.student(student).name
        if tap:
            if tap != ALL_TAPS and tap not in self.taps:
                raise FakdError(f"unknown tap {tap!r}; taps: {ALL_TAPS}, {', '.join(self.taps)}")
            chosen["tap"] = tap
        if pixel:
            if len(pixel) != 2:
                raise FakdError(f"pixel is [y, x], got {list(pixel)}")
            chosen["pixel"] = (int(pixel[0]), int(pixel[1]))
        return chosen

    def agreement(self, image: str) -> list[dict]:
        """Per student and tap: mean |A_s − A_t| and the correlation of A_s with A_t on ``image``."""
        rows = []
        height, width = self.images[image].shape[-2:]
        for entry in self.students:
            for view in self.views(image=image, student=entry.name, pixel=(height // 2, width // 2)):
                rows.append({"model": entry.name, "tap": view["tap"], "l1": view["l1"],
                             "correlation": view["correlation"], "trained": entry.trained})
        return rows

    def views(self, *, image: str, student: str, tap: str = ALL_TAPS, pixel: tuple[int, int]) -> list[dict]:
        if image not in self.images:
            raise FakdError(f"unknown image {image!r}; images: {', '.join(self.images)}")
        taps = self.taps if tap == ALL_TAPS else [tap]
        return compare_affinities(self.teacher.model, self.student(student).model, self.images[image],
                                  pixel=pixel, taps=taps)

    def figure(self, *, image: str, student: str, tap: str = ALL_TAPS, pixel: tuple[int, int]) -> plt.Figure:
        views = self.views(image=image, student=student, tap=tap, pixel=pixel)
        return affinity_figure(self.images[image], views, pixel=pixel, teacher_name=self.teacher.name,
                               student_name=student,
                               title=f"{image}: affinity of pixel (y={pixel[0]}, x={pixel[1]}), "
                                     f"{self.teacher.name} vs {student}")


def _named(entries: Sequence[StudyModel], name: str, *, kind: str) -> StudyModel:
    """The entry called ``name``; FakdError listing the names when there is none."""
    for entry in entries:
        if entry.name == name:
            return entry
    raise FakdError(f"unknown {kind} {name!r}; {kind}s: {', '.join(entry.name for entry in entries)}")


def _checkpoint_file(entry: StudyModel) -> str:
    """The real path of the checkpoint file a model was loaded from ("" for a model built in memory)."""
    path = getattr(entry.model, "checkpoint_path", "")
    return os.path.realpath(path) if path else ""


def _cached(cache: OrderedDict, key, compute):
    """``cache[key]``, computed on a miss; the least recently used entries go beyond ``CACHE_ENTRIES``."""
    if key not in cache:
        cache[key] = compute()
    cache.move_to_end(key)
    while len(cache) > CACHE_ENTRIES:
        cache.popitem(last=False)
    return cache[key]


def _unique(name: str, taken) -> str:
    """``name``, or ``name (2)``, ``name (3)``, ... — the first not in ``taken``."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name} ({number})"
    return candidate
