"""The explorer's widgets before issue 20, kept only as the baseline of ``explorer_latency.py``.

``explorer_widgets`` below is ``fakd.analysis.explorer.explorer_widgets`` as of commit 488a510
(verbatim): dropdowns and two pixel sliders, and every change redraws the whole matplotlib figure
(``AffinityExplorer.figure``, which recomputes the features) into an Output widget.
"""

from fakd.analysis.explorer import ALL_TAPS, AffinityExplorer
from fakd.analysis.figures import plt


def explorer_widgets(explorer: AffinityExplorer, *, selection: dict | None = None, show=None):
    """ipywidgets: image / student / tap dropdowns and y / x sliders; ``show(figure)`` on every change.

    ``show`` defaults to displaying the figure in the widget's output area. Returns the container
    widget (display it) with ``.controls`` (name → widget) for programmatic use.
    """
    import ipywidgets as widgets
    from IPython.display import display

    selection = selection or explorer.default_selection()
    output = widgets.Output()
    controls = {
        "image": widgets.Dropdown(options=list(explorer.images), value=selection["image"], description="image"),
        "student": widgets.Dropdown(options=[s.name for s in explorer.students], value=selection["student"],
                                    description="student"),
        "tap": widgets.Dropdown(options=[ALL_TAPS, *explorer.taps], value=selection["tap"], description="tap"),
        "y": widgets.IntSlider(value=selection["pixel"][0], min=0, description="pixel y", continuous_update=False),
        "x": widgets.IntSlider(value=selection["pixel"][1], min=0, description="pixel x", continuous_update=False),
    }

    def fit_sliders() -> None:
        height, width = explorer.images[controls["image"].value].shape[-2:]
        controls["y"].max, controls["x"].max = height - 1, width - 1

    def draw(*_) -> None:
        fit_sliders()
        figure = explorer.figure(image=controls["image"].value, student=controls["student"].value,
                                 tap=controls["tap"].value, pixel=(controls["y"].value, controls["x"].value))
        if show is not None:
            show(figure)
            return
        with output:
            output.clear_output(wait=True)
            display(figure)
            plt.close(figure)

    fit_sliders()
    controls["y"].value, controls["x"].value = selection["pixel"]
    for control in controls.values():
        control.observe(draw, names="value")
    box = widgets.VBox([widgets.HBox([controls["image"], controls["student"], controls["tap"]]),
                        widgets.HBox([controls["y"], controls["x"]]), output])
    box.controls = controls
    box.draw = draw
    return box
