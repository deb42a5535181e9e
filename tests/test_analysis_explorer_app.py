"""The interactive explorer without a browser: what a click, an upload, a model or a toggle sends to
the canvas, checked against affinity rows computed independently in float64."""

import io

import numpy as np
import pytest
import torch
from guarantees_support import tiny_checkpoint
from PIL import Image

from fakd.analysis.affinity_canvas import quantise
from fakd.analysis.affinity_view import tap_features
from fakd.analysis.compare import StudyModel
from fakd.analysis.explorer import AffinityExplorer
from fakd.analysis.explorer_app import WITH_FAKD, WITHOUT_FAKD, explorer_app
from fakd.analysis.explorer_sources import explorer_model, fit_image, image_from_file
from fakd.errors import FakdError
from fakd.models import build_model


def smoke_model(name: str, preset: str, seed: int) -> StudyModel:
    torch.manual_seed(seed)
    return StudyModel(name, "student", build_model(preset, scale=4).eval(), False)


@pytest.fixture
def app():
    images = {"a": torch.randint(0, 256, (3, 12, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)),
              "b": torch.randint(0, 256, (3, 10, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))}
    explorer = AffinityExplorer(images, teacher=smoke_model("teacher", "rcan-smoke-teacher", 0),
                                students=[smoke_model("no KD", "rcan-smoke-student", 1),
                                          smoke_model("FAKD", "rcan-smoke-student", 2)])
    return explorer_app(explorer, max_side=24).app


def reference_row(model, lr, tap, pixel) -> np.ndarray:
    feat = tap_features(model, lr, [tap])[tap].double()[0].flatten(1)
    unit = feat / feat.norm(dim=0, keepdim=True)
    return (unit[:, pixel[0] * lr.shape[-1] + pixel[1]] @ unit).reshape(lr.shape[-2:]).numpy()


def panel_values(canvas, index: int) -> np.ndarray:
    spec = canvas.panels[index]
    flat = np.frombuffer(canvas.maps, dtype=np.uint8)[spec["offset"]:spec["offset"] + spec["height"] * spec["width"]]
    return flat.reshape(spec["height"], spec["width"])


def test_a_click_sends_the_pixels_rows_without_running_a_model(app):
    calls = []
    for entry in app.explorer.models:
        entry.model.register_forward_hook(lambda *_: calls.append(1))
    version = app.canvas.version
    app.canvas.pixel = [3, 11]  # what a click in the browser sets
    assert app.canvas.version == version + 1 and calls == []  # features were computed once, before
    teacher_panel, student_panel = app.canvas.panels[1], app.canvas.panels[2]
    assert teacher_panel["marker"] == [3, 11] and teacher_panel["clickable"]
    lr = app.explorer.images["a"]
    teacher = reference_row(app.explorer.teacher.model, lr, "body.2", (3, 11))
    student = reference_row(app.explorer.model("no KD").model, lr, "body.2", (3, 11))
    low = min(teacher.min(), student.min())
    for index, expected in ((1, teacher), (2, student)):
        got = panel_values(app.canvas, index).astype(int)
        assert np.abs(got - quantise(expected, limits=(low, 1.0)).astype(int)).max() <= 1  # rounding at a boundary
    assert len(app.canvas.panels) == 4 * 3 and "maps computed in" in app.message.value


def test_views_and_the_with_without_fakd_toggle(app):
    app.controls["view"].value = "agreement maps"
    assert [p["height"] for p in app.canvas.panels] == [12] * 6 and app.canvas.panels[1]["palette"] == "agreement"
    app.controls["view"].value = "crop matrices"
    assert app.canvas.panels[1]["height"] == 16 * 12 and app.canvas.panels[0]["box"] == [0, 0, 12, 16]
    app.controls["view"].value = "pixel rows"
    assert app.controls["student"].value == "no KD" and app.controls["fakd"].value == WITHOUT_FAKD
    app.controls["fakd"].value = WITH_FAKD
    assert app.controls["student"].value == "FAKD"
    app.controls["fakd"].value = WITHOUT_FAKD
    assert app.controls["student"].value == "no KD"


def test_the_toggle_is_labelled_with_the_students_it_flips_between(app):
    toggle = app.controls["fakd"]
    assert [label for label, _ in toggle.options] == ["FAKD", "no KD"] and toggle.value == WITHOUT_FAKD
    app.explorer.add_model(smoke_model("output KD", "rcan-smoke-student", 3))
    app.controls["student"].options = [model.name for model in app.explorer.models]
    app.controls["student"].value = "output KD"  # a KD student that is not FAKD: the toggle must not say FAKD
    assert [label for label, _ in toggle.options] == ["output KD", "no KD"] and toggle.value == WITH_FAKD
    toggle.value = WITHOUT_FAKD
    assert app.controls["student"].value == "no KD"
    toggle.value = WITH_FAKD
    assert app.controls["student"].value == "output KD"


def upload(app, name: str, data: bytes) -> None:
    from datetime import datetime

    app.controls["upload"].value = ({"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
                                     "last_modified": datetime.now()},)


def test_a_corrupt_upload_is_one_visible_line_and_changes_nothing(app):
    maps, images = app.canvas.maps, dict(app.explorer.images)
    upload(app, "holiday.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert "cannot read image holiday.png" in app.message.value and "#b00020" in app.message.value
    assert "Traceback" not in app.message.value
    assert app.canvas.maps == maps and app.explorer.images.keys() == images.keys()


def test_a_large_upload_is_shrunk_with_a_note_and_shown(app):
    photo = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)).save(photo, format="PNG")
    upload(app, "mine.png", photo.getvalue())
    assert app.controls["image"].value == "mine.png" and app.canvas.image_size == [24, 16]
    assert "mine.png: 200×300 px shrunk to 16×24" in app.message.value
    assert app.canvas.pixel == [12, 8]


@pytest.mark.slow  # loads a checkpoint and computes its features: seconds on a loaded machine
def test_your_model_from_a_run_folder_or_a_bad_path(app, tmp_path):
    app.controls["model_path"].value = str(tmp_path / "nothing.pt")
    app._guard(app._add_model)
    assert "not found" in app.message.value and "#b00020" in app.message.value
    tiny_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    app.controls["model_path"].value = str(tmp_path / "run")
    app._guard(app._add_model)
    assert app.controls["student"].value == "run" and "run" in app.controls["teacher"].options


def test_fit_image_keeps_small_images_and_refuses_slivers(tmp_path):
    small = np.zeros((10, 20, 3), dtype=np.uint8)
    kept = fit_image(small, name="s.png", max_side=64)
    assert kept.note == "" and tuple(kept.lr.shape) == (3, 10, 20)
    with pytest.raises(FakdError, match="too narrow"):
        fit_image(np.zeros((2000, 40, 3), dtype=np.uint8), name="sliver.png", max_side=64)
    with pytest.raises(FakdError, match="not found"):
        image_from_file(tmp_path / "missing.png", max_side=64)
    with pytest.raises(FakdError, match="without a trained model"):
        explorer_model(str(tmp_path))


def test_the_notebooks_explorer_takes_your_image_and_models(tmp_path, monkeypatch):
    """explorer_from_sources (what 01_affinity_explorer and fakd explore call): yours added and shown first."""
    from guarantees_support import random_image

    from fakd.analysis.explorer_sources import explorer_from_sources

    monkeypatch.delenv("FAKD_DATA_ROOT", raising=False)
    photo = random_image(tmp_path / "mine.png", height=40, width=30)
    tiny_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    explorer, yours = explorer_from_sources(profile="smoke", crop=16, image_path=str(photo),
                                            checkpoints=[str(tmp_path / "run")])
    assert yours == {"image": "mine.png", "student": "run"}
    assert tuple(explorer.images["mine.png"].shape) == (3, 16, 12) and "shrunk to 12×16" in explorer.notes["mine.png"]
    assert explorer.models[-1].name == "run" and explorer.teacher.name == "teacher (untrained)"
    with pytest.raises(FakdError, match="not found"):
        explorer_from_sources(profile="smoke", crop=16, image_path=str(tmp_path / "missing.png"))
