"""The interactive affinity explorer: click a pixel, see its affinity maps update at once.

``explorer_app(explorer, selection=...)`` returns one ipywidgets box (JupyterLab, Voilà for
``fakd explore``): image, teacher, student, tap and view choices, a with/without-FAKD toggle, an
upload and path fields for your image and your model, a message line, and the ``AffinityCanvas``.
A click on any map selects the pixel; only its maps are recomputed (matrix-vector products on
cached unit features) and drawn in the browser. A user mistake (a corrupt upload, a missing
checkpoint) is shown as one line in the message, never as a traceback.
"""

from __future__ import annotations

import html
import time

import ipywidgets as widgets

from fakd.analysis.affinity_canvas import AffinityCanvas
from fakd.analysis.explorer import ALL_TAPS, AffinityExplorer
from fakd.analysis.explorer_panels import VIEWS, Choice
from fakd.analysis.explorer_sources import explorer_model, image_from_file, image_from_upload
from fakd.errors import FakdError

WITH_FAKD, WITHOUT_FAKD = "student with FAKD", "student without FAKD"
NO_KD_LABEL = "no KD"  # the shipped / sweep student trained without distillation


class ExplorerApp:
    """The widgets and their wiring around one ``AffinityExplorer``; ``.widget`` is what to display."""

    def __init__(self, explorer: AffinityExplorer, *, selection: dict | None = None, max_side: int = 64):
        self.explorer, self.max_side = explorer, max_side
        selection = selection or explorer.default_selection()
        self.canvas = AffinityCanvas(pixel=list(selection["pixel"]))
        self.message = widgets.HTML()
        self.controls = self._controls(selection)
        self._fakd_student = self._student_with_kd(selection["student"])
        self._fitting = False
        self._wire()
        self.widget = self._layout()
        self.widget.app = self
        self._shown_image = None  # the image the canvas holds: sent again only when it changes
        self.redraw()

    def _controls(self, selection: dict) -> dict:
        names = [model.name for model in self.explorer.models]
        return {
            "image": widgets.Dropdown(options=list(self.explorer.images), value=selection["image"], description="image"),
            "teacher": widgets.Dropdown(options=names, value=self.explorer.teacher.name, description="teacher"),
            "student": widgets.Dropdown(options=names, value=selection["student"], description="student"),
            "fakd": widgets.ToggleButtons(options=[WITH_FAKD, WITHOUT_FAKD], value=WITH_FAKD,
                                          description="student"),  # labelled with the students' names
            "tap": widgets.Dropdown(options=[ALL_TAPS, *self.explorer.taps], value=selection["tap"], description="tap"),
            "view": widgets.ToggleButtons(options=list(VIEWS), value="pixel rows"),
            "hover": widgets.Checkbox(value=False, description="follow the pointer", indent=False),
            "upload": widgets.FileUpload(accept="image/*", multiple=False, description="your image"),
            "image_path": widgets.Text(placeholder="or an image file path", description="image file"),
            "open_image": widgets.Button(description="open image"),
            "model_path": widgets.Text(placeholder="fakd:<name>, a checkpoint or a run folder", description="model"),
            "add_model": widgets.Button(description="add model"),
        }

    def _layout(self) -> widgets.VBox:
        c = self.controls
        return widgets.VBox([
            widgets.HBox([c["image"], c["upload"], c["image_path"], c["open_image"]]),
            widgets.HBox([c["teacher"], c["student"], c["model_path"], c["add_model"]]),
            widgets.HBox([c["fakd"], c["tap"]]),
            widgets.HBox([c["view"], c["hover"]]),
            self.message, self.canvas,
        ])

    def _wire(self) -> None:
        c = self.controls
        c["image"].observe(lambda _: self._guard(self._new_image), names="value")
        for name in ("teacher", "tap", "view"):
            c[name].observe(lambda _: self._guard(self.redraw), names="value")
        c["student"].observe(lambda _: self._guard(self._new_student), names="value")
        c["fakd"].observe(lambda _: self._guard(self._toggle_fakd), names="value")
        c["hover"].observe(lambda change: setattr(self.canvas, "hover", bool(change["new"])), names="value")
        c["upload"].observe(lambda _: self._guard(self._uploaded), names="value")
        c["open_image"].on_click(lambda _: self._guard(self._open_image))
        c["add_model"].on_click(lambda _: self._guard(self._add_model))
        self.canvas.observe(lambda _: self._guard(self.redraw), names="pixel")
        self._fit_toggle()

    def choice(self) -> Choice:
        c = self.controls
        return Choice(image=c["image"].value, teacher=c["teacher"].value, student=c["student"].value,
                      tap=c["tap"].value, pixel=tuple(int(v) for v in self.canvas.pixel))

    def redraw(self) -> None:
        """Recompute the chosen view's maps and send them to the canvas (the image too when it changed)."""
        started = time.perf_counter()
        choice = self.choice()
        panels = VIEWS[self.controls["view"].value](self.explorer, choice)
        new_image = choice.image != self._shown_image
        image = self.explorer.images[choice.image].permute(1, 2, 0).numpy() if new_image else None
        self.canvas.show(panels, image=image)
        self._shown_image = choice.image
        note = self.explorer.notes.get(choice.image, "")
        timing = f"maps computed in {1000 * (time.perf_counter() - started):.0f} ms"
        self._say(f"{html.escape(note)}{' · ' if note else ''}{timing}")

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
        colour = "#b00020" if error else "inherit"
        self.message.value = f'<span class="fakd-explorer-message" style="color: {colour}">{text}</span>'

    def _new_image(self) -> None:
        height, width = self.explorer.images[self.controls["image"].value].shape[-2:]
        if list(self.canvas.pixel) == [height // 2, width // 2]:
            self.redraw()
        else:
            self.canvas.pixel = [height // 2, width // 2]  # its observer redraws

    def _new_student(self) -> None:
        if self.controls["student"].value != self._no_kd():
            self._fakd_student = self.controls["student"].value
        self._fit_toggle()
        self.redraw()

    def _student_with_kd(self, chosen: str) -> str:
        """The student the toggle's "with FAKD" side shows: ``chosen``, or a FAKD student when ``chosen``
        is the one without KD."""
        if chosen != self._no_kd():
            return chosen
        students = [model.name for model in self.explorer.students if model.name != chosen]
        return next((name for name in students if "FAKD" in name), students[0] if students else chosen)

    def _no_kd(self) -> str | None:
        return next((model.name for model in self.explorer.models if model.name == NO_KD_LABEL), None)

    def _fit_toggle(self) -> None:
        """The toggle flips between the chosen student and the one trained without KD (when there is one).

        Its two sides carry those students' names, so it never says "FAKD" for, e.g., an output-KD student.
        """
        toggle, no_kd = self.controls["fakd"], self._no_kd()
        wanted = WITHOUT_FAKD if self.controls["student"].value == no_kd else WITH_FAKD
        self._fitting = True  # relabelling resets the value: that is not a user's flip
        try:
            toggle.options = [(self._fakd_student, WITH_FAKD), (no_kd or NO_KD_LABEL, WITHOUT_FAKD)]
            toggle.value = wanted
        finally:
            self._fitting = False
        toggle.disabled = no_kd is None or self._fakd_student == no_kd

    def _toggle_fakd(self) -> None:
        if self._fitting:
            return
        no_kd = self._no_kd()
        target = no_kd if self.controls["fakd"].value == WITHOUT_FAKD else self._fakd_student
        if target and self.controls["student"].value != target:
            self.controls["student"].value = target

    def _show_image(self, name: str, lr, note: str) -> None:
        key = self.explorer.add_image(name, lr, note=note)
        self.controls["image"].options = list(self.explorer.images)
        self.controls["image"].value = key  # observers redraw with the new image

    def _uploaded(self) -> None:
        files = self.controls["upload"].value
        if not files:
            return
        upload = files[0]
        image = image_from_upload(upload["content"], name=upload["name"], max_side=self.max_side)
        self._show_image(image.name, image.lr, image.note)

    def _open_image(self) -> None:
        image = image_from_file(self.controls["image_path"].value.strip() or ".", max_side=self.max_side)
        self._show_image(image.name, image.lr, image.note)

    def _add_model(self) -> None:
        entry = explorer_model(self.controls["model_path"].value, device=next(
            self.explorer.teacher.model.parameters()).device)
        name = self.explorer.add_model(entry)
        names = [model.name for model in self.explorer.models]
        for key in ("teacher", "student"):
            self.controls[key].options = names
        self.controls["student"].value = name


def explorer_app(explorer: AffinityExplorer, *, selection: dict | None = None, max_side: int = 64) -> widgets.VBox:
    """The explorer's widget box (display it); ``.app`` is the ``ExplorerApp`` behind it."""
    return ExplorerApp(explorer, selection=selection, max_side=max_side).widget
