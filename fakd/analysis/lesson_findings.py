"""What the kit's own study found, for the lesson: the committed report's figures, shown where they are.

The cpu study's rendered report is committed in the repository (``reports/cpu``), not in the wheel:
in a checkout the lesson embeds its figures; in an installed package it says where to read them.
"""

from __future__ import annotations

from pathlib import Path

import fakd

STUDY_REPORT = Path("reports") / "cpu"
# lesson -> the report's figure that shows it
FINDING_FIGURES = {
    "units": "figures/ablation/psnr_vs_weight.png",
    "validation": "figures/ablation/weight_selection.png",
    "convergence": "figures/ablation/convergence.png",
}


def committed_report() -> Path | None:
    """The checkout's ``reports/cpu`` beside the ``fakd`` package, or None in an installed package."""
    folder = Path(fakd.__file__).resolve().parent.parent / STUDY_REPORT
    return folder if (folder / "index.html").is_file() else None


def finding_figure(name: str) -> Path | None:
    """The committed figure of lesson ``name`` (a key of ``FINDING_FIGURES``), or None without the report."""
    if name not in FINDING_FIGURES:
        raise ValueError(f"unknown finding {name!r}: use {', '.join(FINDING_FIGURES)}")
    report = committed_report()
    return None if report is None else report / FINDING_FIGURES[name]


def show_finding(name: str, *, width: int = 760) -> Path | None:
    """Display the figure of lesson ``name`` in the notebook (embedded), or say where it is published."""
    from IPython.display import Image, display

    path = finding_figure(name)
    if path is None or not path.is_file():
        print(f"The study's figure ({STUDY_REPORT / FINDING_FIGURES[name]}) is in the fakd repository, "
              "not in this installed package.")
        return None
    display(Image(filename=str(path), embed=True, width=width))
    return path
