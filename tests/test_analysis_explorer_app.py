"""The interactive explorer without a browser: what a click, an upload, a region, a model or a view
sends to the canvas, checked against affinity rows computed independently in float64, and what the
page says about it (headers, captions naming the models, colour bars with the maps' ranges)."""

import html
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
from fakd.analysis.explorer_app import explorer_app
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
                                          smoke_model("FAKD", "rcan-smoke-student", 2)],
                                scale=4, chosen="FAKD", chosen_why="the FAKD student")
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
    student = reference_row(app.explorer.model("FAKD").model, lr, "body.2", (3, 11))
    low = min(teacher.min(), student.min())
    for index, expected in ((1, teacher), (2, student)):
        got = panel_values(app.canvas, index).astype(int)
        assert np.abs(got - quantise(expected, limits=(low, 1.0)).astype(int)).max() <= 1  # rounding at a boundary
    assert len(app.canvas.panels) == 1 + 5 * 3 and "maps computed in" in app.message.value


def test_the_page_names_the_models_and_draws_colour_bars_with_the_maps_ranges(app):
    canvas = app.canvas
    assert [column["header"] for column in canvas.columns] == [
        "image", "<b>teacher</b>", "student: <b>FAKD</b>", "cos",
        "difference <i>A</i><sub>s</sub> − <i>A</i><sub>t</sub>", "Δ"]
    assert [column["kind"] for column in canvas.columns] == ["map", "map", "map", "bar", "map", "bar"]
    image, teacher, student, difference, cosine_bar, difference_bar = canvas.panels[:6]
    assert image["source"] == "image" and [p["source"] for p in canvas.panels].count("image") == 1  # the image once
    assert teacher["title"].startswith("<b>teacher</b> · body.2") and student["title"].startswith("<b>FAKD</b> · body.2")
    assert difference["title"].startswith("<b>FAKD</b> − <b>teacher</b> · body.2")
    rows = app.explorer.rows(image="a", teacher="teacher", student="FAKD", pixel=tuple(canvas.pixel))[0]
    low = min(rows["teacher_row"].min(), rows["student_row"].min())
    spread = np.abs(rows["difference"]).max()
    assert cosine_bar["source"] == "bar" and cosine_bar["limits"] == pytest.approx([low, 1.0])
    assert difference_bar["palette"] == "difference" and difference_bar["limits"] == pytest.approx([-spread, spread])
    assert "red: student<br>&gt; teacher" in difference_bar["title"]
    assert "share one colour scale" in canvas.legend and "blended with the image's grey levels" in canvas.legend


def test_one_student_control_the_chosen_student_first_and_labelled_views(app):
    assert "fakd" not in app.controls and app.controls["student"].value == "FAKD"
    assert ("FAKD (chosen)", "FAKD") in app.controls["student"].options
    assert "student FAKD: the FAKD student" in app.message.value
    view_row = app.widget.children[1].children
    assert view_row[0].value == "view" and view_row[1] is app.controls["view"]
    app.controls["student"].value = "no KD"
    assert "student: <b>no KD</b>" == app.canvas.columns[2]["header"] and "the FAKD student" not in app.message.value


def test_views_agreement_and_crop_matrices(app):
    app.controls["view"].value = "agreement maps"
    assert [p["height"] for p in app.canvas.panels if p["source"] == "map"] == [12] * 3
    assert app.canvas.panels[1]["palette"] == "agreement" and app.canvas.panels[2]["source"] == "bar"
    app.canvas.pixel = [5, 9]
    app.controls["view"].value = "crop matrices"
    image, teacher = app.canvas.panels[:2]
    assert teacher["height"] == 16 * 12 and image["box"] == [0, 0, 12, 16]
    assert teacher["line"] == 5 * 16 + 9  # the clicked pixel's row of the matrix, row-major in the crop
    assert "rows y 0–11, columns x 0–15" in image["title"] and "position n = 89" in image["title"]
    assert "row-major" in app.canvas.legend
    values = panel_values(app.canvas, 1)
    assert values.shape == (192, 192) and (np.diag(values) == 255).all()  # cos of a position with itself is 1


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


def test_a_large_upload_is_a_full_resolution_region_chosen_on_the_whole_photo(app):
    photo = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    data = io.BytesIO()
    Image.fromarray(photo).save(data, format="PNG")
    upload(app, "mine.png", data.getvalue())
    assert app.controls["image"].value == "mine.png" and app.canvas.image_size == [24, 24]
    assert np.array_equal(app.explorer.images["mine.png"].permute(1, 2, 0).numpy(), photo[138:162, 88:112])
    assert "mine.png: 200×300 px; shown at full resolution: the 24×24 region of rows y 138–161, columns x 88–111" \
        in app.message.value
    assert app.picker.layout.display == "" and app.picker.box == [138, 88, 24, 24] and app.picker.photo_size == [300, 200]
    before = app.canvas.maps
    app.picker.centre = [5, 190]  # a click on the photo: the region moves there, kept inside the photo
    assert app.picker.box == [0, 176, 24, 24] and app.canvas.maps != before
    assert np.array_equal(app.explorer.images["mine.png"].permute(1, 2, 0).numpy(), photo[0:24, 176:200])
    assert "rows y 0–23, columns x 176–199" in app.message.value
    app.controls["image"].value = "a"
    assert app.picker.layout.display == "none"


def test_a_small_image_is_taken_whole_with_a_note(app):
    data = io.BytesIO()
    Image.fromarray(np.zeros((10, 20, 3), dtype=np.uint8)).save(data, format="PNG")
    upload(app, "small.png", data.getvalue())
    assert app.canvas.image_size == [10, 20] and "small.png: 20×10 px, smaller than the explorer's 24×24 crop" \
        in html.unescape(app.message.value)


@pytest.mark.slow  # loads checkpoints and computes their features: seconds on a loaded machine
def test_your_model_from_a_run_folder_a_bad_path_another_scale_or_twice(app, tmp_path):
    app.controls["model_path"].value = str(tmp_path / "nothing.pt")
    app._guard(app._add_model)
    assert "not found" in app.message.value and "#b00020" in app.message.value
    tiny_checkpoint(tmp_path / "x2.pt", scale=2)
    app.controls["model_path"].value = str(tmp_path / "x2.pt")
    app._guard(app._add_model)
    assert "is a ×2 model; the explorer compares ×4 models" in app.message.value and "#b00020" in app.message.value
    assert len(app.explorer.models) == 3
    tiny_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", scale=4)
    app.controls["model_path"].value = str(tmp_path / "run")
    app._guard(app._add_model)
    assert app.controls["student"].value == "run" and "run" in app.controls["teacher"].options
    app.controls["student"].value = "FAKD"
    app.controls["model_path"].value = str(tmp_path / "run" / "checkpoints" / "best.pt")  # the same file again
    app._guard(app._add_model)
    assert app.controls["student"].value == "run" and len(app.explorer.models) == 4
    assert "is already listed as run: shown, not added again" in app.message.value


def test_fit_image_keeps_small_images_and_refuses_slivers(tmp_path):
    small = np.zeros((10, 20, 3), dtype=np.uint8)
    kept = fit_image(small, name="s.png", max_side=64)
    assert tuple(kept.lr.shape) == (3, 10, 20) and kept.photo is None
    assert kept.note == "s.png: 20×10 px, smaller than the explorer's 64×64 crop: taken whole, 200 positions per map"
    tall = fit_image(np.arange(2000 * 40 * 3, dtype=np.uint8).reshape(2000, 40, 3), name="tall.png", max_side=64)
    assert tall.lr.shape == (3, 64, 40) and tall.photo.shape == (2000, 40, 3)  # a 40 px side is kept whole
    assert np.array_equal(tall.lr.permute(1, 2, 0).numpy(), tall.photo[968:1032])
    with pytest.raises(FakdError, match="needs at least 4 per side"):
        fit_image(np.zeros((2000, 3, 3), dtype=np.uint8), name="sliver.png", max_side=64)
    with pytest.raises(FakdError, match="not found"):
        image_from_file(tmp_path / "missing.png", max_side=64)
    with pytest.raises(FakdError, match="without a trained model"):
        explorer_model(str(tmp_path), scale=4)


def test_the_notebooks_explorer_takes_your_image_and_models(tmp_path, monkeypatch):
    """explorer_from_sources (what 01_affinity_explorer and fakd explore call): yours added and shown first."""
    from guarantees_support import random_image

    from fakd.analysis.explorer_sources import explorer_from_sources

    monkeypatch.delenv("FAKD_DATA_ROOT", raising=False)
    photo = random_image(tmp_path / "mine.png", height=40, width=30)
    tiny_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", scale=4)
    explorer, yours = explorer_from_sources(profile="smoke", crop=16, image_path=str(photo),
                                            checkpoints=[str(tmp_path / "run"), str(tmp_path / "run")])
    assert yours == {"image": "mine.png", "student": "run"} and [m.name for m in explorer.models].count("run") == 1
    assert tuple(explorer.images["mine.png"].shape) == (3, 16, 16) and "16×16 region" in explorer.notes["mine.png"]
    assert explorer.chosen == "student (untrained)" and explorer.chosen_why == "the first student"
    assert explorer.models[-1].name == "run" and explorer.teacher.name == "teacher (untrained)"
    with pytest.raises(FakdError, match="not found"):
        explorer_from_sources(profile="smoke", crop=16, image_path=str(tmp_path / "missing.png"))


def test_the_chosen_student_is_the_shipped_fakd_student_best_on_validation():
    """Against the manifest read here: the x4 cpu FAKD student with the highest validation PSNR."""
    import json
    from pathlib import Path

    from fakd.analysis.explorer_sources import chosen_student

    manifest = json.loads((Path(__file__).parents[1] / "fakd" / "pretrained" / "manifest.json").read_text())["models"]
    fakd = [entry for entry in manifest if entry["method"] == "fakd" and entry["profile"] == "cpu" and entry["scale"] == 4]
    best = max(fakd, key=lambda entry: entry["validation_psnr"])
    students = [StudyModel("no KD", "student", None, True, None, "fakd:rcan-cpu-student-none-x4-s0"),
                StudyModel("FAKD", "student", None, True, None, "fakd:rcan-cpu-student-fakd-x4-s0"),
                StudyModel("FAKD w=10", "student", None, True, None, "fakd:rcan-cpu-student-fakd-w10-x4-s0"),
                StudyModel("FAKD w=100", "student", None, True, None, "fakd:rcan-cpu-student-fakd-w100-x4-s0")]
    name, why = chosen_student(students)
    assert best["name"] == "rcan-cpu-student-fakd-w100-x4-s0" and name == "FAKD w=100"
    assert why == (f"the FAKD student with the best validation PSNR ({best['validation_psnr']:.2f} dB) of the 3 shipped "
                   "FAKD students")
    assert chosen_student(students[:1]) == ("no KD", "the first student")
