"""A report rendered by fakd, opened in headless Chromium: no broken image or link, no console error.

Needs Chromium (Debian: ``apt-get install chromium``); without it the tests skip, except under CI
(the environment variable CI set), where they fail.
"""

import base64
import io

from matplotlib.figure import Figure
import nbformat
import pytest

from fakd.study.locations import resolve_notebook
from fakd.study.render import ANALYSIS_FILE, ReportEntry, render_notebook, write_report

from browser_check import check_report

pytestmark = pytest.mark.slow


def _png() -> bytes:
    figure = Figure(figsize=(2, 1.5))
    figure.add_subplot().plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _executed_primer(path):
    """The primer notebook with what an executed one carries: a figure output, saved widget state."""
    notebook = nbformat.read(str(resolve_notebook("00_kd_primer")), as_version=4)
    code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("display_data", data={
        "image/png": base64.b64encode(_png()).decode("ascii"), "text/plain": "<Figure>"})]
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                                  "version_minor": 0}}
    nbformat.write(notebook, str(path))
    return path


@pytest.fixture
def report(tmp_path):
    """A small report: the index, a notebook page (maths, an embedded figure), a figure, a table, the analysis."""
    page = render_notebook(_executed_primer(tmp_path / "primer.ipynb"), tmp_path / "html" / "00_kd_primer.html")
    figure = tmp_path / "figures" / "gain.png"
    figure.parent.mkdir()
    figure.write_bytes(_png())
    table = tmp_path / "tables" / "students_results.csv"
    table.parent.mkdir()
    table.write_text("run,psnr\na,20.0\n")
    (tmp_path / ANALYSIS_FILE).write_text("# Analysis\n")
    entries = [ReportEntry("Primer", page=page), ReportEntry("Students", page=table)]
    index, _ = write_report(tmp_path, title="FAKD study (smoke profile)", entries=entries, figures=[figure],
                            provenance={"profile": "smoke"})
    return index


def test_a_rendered_report_has_no_broken_image_link_or_console_error(chromium, report):
    assert check_report(report, executable=chromium) == []


def test_the_check_finds_a_broken_image_link_and_script(chromium, report):
    (report.parent / "figures" / "gain.png").unlink()
    (report.parent / "tables" / "students_results.csv").unlink()
    page = report.parent / "html" / "00_kd_primer.html"
    page.write_text(page.read_text().replace("</body>", '<script>throw new Error("boom")</script></body>'))
    problems = "\n".join(check_report(report, executable=chromium))
    assert "broken image" in problems and "gain.png" in problems
    assert "broken link" in problems and "students_results.csv" in problems
    assert "boom" in problems
