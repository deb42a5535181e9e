"""The interactive affinity explorer: click a pixel, see its affinity maps update at once.

``explorer_app(explorer, selection=...)`` returns one ipywidgets box (JupyterLab, Voilà for
``fakd explore``): the controls on top (image, teacher, student, view, tap; your image and your
model), one message line, the region picker for a photo larger than the crop, and the
``AffinityCanvas`` with column headers, colour bars and a legend. A click on any map selects the pixel;
only its maps are recomputed (matrix-vector products on cached unit features) and drawn in the
browser. A user mistake (a corrupt upload, a missing checkpoint, a model of another scale) is shown
as one red line in the message, never as a traceback.
"""

from __future__ import annotations

import html
import time

import ipywidgets as widgets

from fakd.analysis.affinity_canvas import AffinityCanvas
from fakd.analysis.explorer import ALL_TAPS, AffinityExplorer
from fakd.analysis.explorer_panels import VIEWS, Choice
from fakd.analysis.explorer_sources import (explorer_model, image_from_file, image_from_upload, photo_region,
                                            region_box)
from fakd.analysis.region_picker import RegionPicker
from fakd.errors import FakdError

ERROR_COLOUR = "#b00020"


class ExplorerApp:
    """The widgets and their wiring around one ``AffinityExplorer``; ``.widget`` is what to display."""

    def __init__(self, explorer: AffinityExplorer, *, selection: dict | None = None, max_side: int = 64):
        self.explorer, self.max_side = explorer, max_side
        selection = selection or explorer.default_selection()
        self.canvas = AffinityCanvas(pixel=list(selection["pixel"]))
        self.picker = RegionPicker()
        self.message = widgets.HTML()
        self.controls = self._controls(selection)
        self._wire()
        self.widget = self._layout()
        self.widget.app = self
        self._shown_image = None  # the image the canvas holds: sent again only when it changes
        self._centres: dict[str, tuple[int, int]] = {}  # image → the centre of its region in its photo
        self._show_picker()
        self.redraw()

    def _controls(self, selection: dict) -> dict:
        names = [model.name for model in self.explorer.models]
        wide = widgets.Layout(width="300px")
        return {
            "image": widgets.Dropdown(options=list(self.explorer.images), value=selection["image"], description="image",
                                      layout=wide),
            "teacher": widgets.Dropdown(options=names, value=self.explorer.teacher.name, description="teacher",
                                        layout=wide),
            "student": widgets.Dropdown(options=self._student_options(), value=selection["student"],
                                        description="student", layout=wide),
            "view": widgets.ToggleButtons(options=list(VIEWS), value="pixel rows", tooltips=[
                "the pixel's affinity row in teacher and student, and their difference",
                "mean |A_s - A_t| at every position: where the student differs from the teacher",
                "the full affinity matrices of a 16x16 crop around the pixel"], style={"button_width": "150px"},
                layout=widgets.Layout(flex="0 0 auto", width="auto")),
            "tap": widgets.Dropdown(options=[ALL_TAPS, *self.explorer.taps], value=selection["tap"], description="tap",
                                    layout=widgets.Layout(width="220px")),
            "hover": widgets.Checkbox(value=False, description="follow the pointer", indent=False),
            "upload": widgets.FileUpload(accept="image/*", multiple=False, description="upload your image",
                                         layout=widgets.Layout(width="auto", flex="0 0 auto")),
            "image_path": widgets.Text(placeholder="or an image file path", description="image file"),
            "open_image": widgets.Button(description="open image"),
            "model_path": widgets.Text(placeholder="fakd:<name>, a checkpoint or a run folder", description="your model"),
            "add_model": widgets.Button(description="add model"),
        }

    def _student_options(self) -> list[tuple[str, str]]:
        """Every model by name; the chosen student says so."""
        return [(f"{model.name} (chosen)" if model.name == self.explorer.chosen else model.name, model.name)
                for model in self.explorer.models]

    def _layout(self) -> widgets.VBox:
        c = self.controls
        return widgets.VBox([
            widgets.HBox([c["image"], c["teacher"], c["student"]]),
            widgets.HBox([widgets.Label("view", layout=widgets.Layout(width="84px")), c["view"], c["tap"], c["hover"]]),
            widgets.HBox([c["upload"], c["image_path"], c["open_image"], c["model_path"], c["add_model"]]),
            self.message, self.picker, self.canvas,
        ], layout=widgets.Layout(width="100%"))

    def _wire(self) -> None:
        c = self.controls
        c["image"].observe(lambda _: self._guard(self._new_image), names="value")
        for name in ("teacher", "student", "tap", "view"):
            c[name].observe(lambda _: self._guard(self.redraw), names="value")
        c["hover"].observe(lambda change: setattr(self.canvas, "hover", bool(change["new"])), names="value")
        c["upload"].observe(lambda _: self._guard(self._uploaded), names="value")
        c["open_image"].on_click(lambda _: self._guard(self._open_image))
        c["add_model"].on_click(lambda _: self._guard(self._add_model))
        self.canvas.observe(lambda _: self._guard(self.redraw), names="pixel")
        self.picker.observe(lambda _: self._guard(self._move_region), names="centre")

    def choice(self) -> Choice:
        c = self.controls
        return Choice(image=c["image"].value, teacher=c["teacher"].value, student=c["student"].value,
                      tap=c["tap"].value, pixel=tuple(int(v) for v in self.canvas.pixel))

    def redraw(self, *, notice: str = "") -> None:
        """Recompute the chosen view's maps and send them to the canvas (the image too when it changed)."""
        started = time.perf_counter()
        choice = self.choice()
        view = VIEWS[self.controls["view"].value](self.explorer, choice)
        new_image = choice.image != self._shown_image
        image = self.explorer.images[choice.image].permute(1, 2, 0).numpy() if new_image else None
        self.canvas.show(view.panels, columns=view.columns, legend=view.legend, image=image)
        self._shown_image = choice.image
        parts = [notice, self.explorer.notes.get(choice.image, "")]
        if choice.student == self.explorer.chosen and self.explorer.chosen_why:
            parts.append(f"student {choice.student}: {self.explorer.chosen_why}")
        parts.append(f"maps computed in {1000 * (time.perf_counter() - started):.0f} ms")
        self._say(" · ".join(html.escape(part) for part in parts if part))

    def _guard(self, action) -> None:
        """Run a UI action; a mistake becomes one line in the message, never a traceback."""
        try:
            action()
        except FakdError as error:
            self._say(html.escape(str(error)), error=True)
        except Exception as error:  # a bug: still one line in the UI (the traceback goes to the log)
            self._say(html.escape(f"unexpected error ({type(error).__name__}): {error}"), error=True)
            self.canvas.log.exception("explorer action failed")

    def _say(self, text: str, *, error: bool = False) -> None:
        colour = ERROR_COLOUR if error else "inherit"
        self.message.value = f'<span class="fakd-explorer-message" style="color: {colour}">{text}</span>'

    def _new_image(self) -> None:
        height, width = self.explorer.images[self.controls["image"].value].shape[-2:]
        self._show_picker()
        if list(self.canvas.pixel) == [height // 2, width // 2]:
            self.redraw()
        else:
            self.canvas.pixel = [height // 2, width // 2]  # its observer redraws

    def _show_picker(self) -> None:
        """The region picker under the controls when the image is a region of a larger photo."""
        name = self.controls["image"].value
        photo = self.explorer.photos.get(name)
        self.picker.layout.display = "none" if photo is None else ""
        if photo is not None:
            top, left, height, width = self._region(name)
            self.picker.show(photo, box=(top, left, height, width),
                             caption=f"{name}: the whole photo, {photo.shape[1]}×{photo.shape[0]} px. The yellow box is "
                                     f"the {width}×{height} region the models see at full resolution: click the "
                                     f"photo to centre it elsewhere.")

    def _region(self, name: str) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the region of its photo that image ``name`` shows now."""
        photo = self.explorer.photos[name]
        centre = self._centres.get(name, (photo.shape[0] // 2, photo.shape[1] // 2))
        return region_box(centre, side=self.max_side, size=photo.shape[:2])

    def _move_region(self) -> None:
        name = self.controls["image"].value
        if name not in self.explorer.photos:
            return
        centre = tuple(int(value) for value in self.picker.centre)
        self._centres[name] = centre
        region = photo_region(self.explorer.photos[name], name=name, side=self.max_side, centre=centre)
        self.explorer.replace_image(name, region.lr, note=region.note)
        self._shown_image = None  # send the new region's pixels
        self._show_picker()
        self.redraw()

    def _show_image(self, image) -> None:
        key = self.explorer.add_image(image.name, image.lr, note=image.note, photo=image.photo)
        self.controls["image"].options = list(self.explorer.images)
        self.controls["image"].value = key  # observers redraw with the new image

    def _uploaded(self) -> None:
        files = self.controls["upload"].value
        if not files:
            return
        upload = files[0]
        self._show_image(image_from_upload(upload["content"], name=upload["name"], max_side=self.max_side))

    def _open_image(self) -> None:
        self._show_image(image_from_file(self.controls["image_path"].value.strip() or ".", max_side=self.max_side))

    def _add_model(self) -> None:
        spec = self.controls["model_path"].value
        scale = self.explorer.scale or self.explorer.teacher.model.scale
        entry = explorer_model(spec, scale=scale, device=next(self.explorer.teacher.model.parameters()).device)
        listed = self.explorer.same_model(entry)
        name = self.explorer.add_model(entry)
        names = [model.name for model in self.explorer.models]
        self.controls["teacher"].options = names
        with self.controls["student"].hold_trait_notifications():
            self.controls["student"].options = self._student_options()
        self.controls["student"].value = name  # its observer redraws when it changes
        if listed:
            self.redraw(notice=f"{spec.strip()} is already listed as {name}: shown, not added again")


def explorer_app(explorer: AffinityExplorer, *, selection: dict | None = None, max_side: int = 64) -> widgets.VBox:
    """The explorer's widget box (display it); ``.app`` is the ``ExplorerApp`` behind it."""
    return ExplorerApp(explorer, selection=selection, max_side=max_side).widget
