"""A report folder a reader can open: executed notebooks as HTML, an ``index.html`` and a ``README.md``.

The HTML pages are nbconvert's ``lab`` template with figures embedded (as palette PNGs, see
``fakd.study.compact``), so each page stands alone. The
index and the README show the same things: the title, first the lead (the gap-closed figure and the
paper-format tables), then the table of every configuration, the verdicts, the other figures, one line per
notebook (linked) and the provenance (command, profile, commit, time) that docs/design.md asks every result
to state.
"""

import html
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fakd.analysis.tables import to_markdown
from fakd.atomic import write_text_atomically
from fakd.study.compact import compact_embedded_pngs

INDEX_FILE = "index.html"
README_FILE = "README.md"
# A report folder's sub-folders: executed notebooks as HTML, copied figures, result tables.
HTML_FOLDER, FIGURES_FOLDER, TABLES_FOLDER = "html", "figures", "tables"
ANALYSIS_FILE = "ANALYSIS.md"  # written by hand beside a committed report; renders never touch it

# Said first in a report of these profiles (its provenance names the profile): their numbers are no result.
PROFILE_CAVEATS = {
    "smoke": "**Smoke profile: these numbers mean nothing.** Tiny models trained for a few iterations on a "
             "few images check that the pipeline runs end to end; their PSNR differences and p-values say "
             "nothing about FAKD. The study's results come from the `cpu` profile (`make study`).",
    "demo": "**Demo profile: a demonstration, not a result.** Students trained 600 iterations on four embedded "
            "photographs by the shipped cpu teacher show the kit end to end with real models; their "
            "differences say little about FAKD. The study's answer is the `cpu` profile's report (reports/cpu; "
            "`make study DATA_ROOT=<folder>`).",
}


@dataclass(frozen=True)
class ReportEntry:
    """One line of the report's index: a rendered notebook (or a failed one) and a short note."""

    title: str
    page: Path | None = None  # what the title links to: the notebook's HTML page, a table, ...
    status: str = "done"
    note: str = ""


# nbconvert's lab template without its scripts from a CDN: require.js (only widgets and old
# JavaScript outputs use it), the widget manager (a saved page shows the widgets' text instead) and
# MathJax (the formulas are MathML already, ``fakd.study.maths``). Offline, those scripts fail to
# load, and the maths would stay raw LaTeX.
_OFFLINE_TEMPLATE = "fakd_offline.html.j2"
_OFFLINE_TEMPLATE_TEXT = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
"""


def render_notebook(executed: Path, html_path: Path) -> Path:
    """Write the executed notebook ``executed`` as one self-contained HTML page at ``html_path``:
    figures embedded, formulas as MathML, nothing loaded from the network."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    from fakd.study.maths import notebook_with_mathml

    notebook = notebook_with_mathml(nbformat.read(str(executed), as_version=4))
    exporter = HTMLExporter(template_name="lab", template_file=_OFFLINE_TEMPLATE,
                            extra_loaders=[DictLoader({_OFFLINE_TEMPLATE: _OFFLINE_TEMPLATE_TEXT})])
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": Path(executed).stem}})
    body = compact_embedded_pngs(body)
    return write_text_atomically(html_path, body)


def _link(target: Path | None, out_dir: Path) -> str | None:
    return None if target is None else Path(os.path.relpath(Path(target).resolve(), out_dir.resolve())).as_posix()


def _headline_markdown(headline: pd.DataFrame | str | None) -> str:
    if headline is None:
        return ""
    if isinstance(headline, pd.DataFrame):
        return to_markdown(headline if not isinstance(headline.index, pd.RangeIndex) else headline.set_index(
            headline.columns[0]))
    return str(headline).strip()


def report_markdown(out_dir: Path, *, title: str, entries: list[ReportEntry], headline=None,
                    summary: str = "", figures: list[Path] = (), provenance: dict | None = None,
                    home: Path | None = None, lead: str = "", lead_figures: list[Path] = ()) -> str:
    """The report as Markdown, with links relative to ``out_dir``: the title, the profile's caveat (if
    any), a link to the hand-written analysis (if ``home``, the folder the report is published into —
    default ``out_dir`` — has one), the lead (``lead_figures`` and ``lead``: what a reader sees first), the
    headline table of every configuration, summary, figures, notebooks and provenance."""
    lines = [f"# {title}", ""]
    caveat = PROFILE_CAVEATS.get(str((provenance or {}).get("profile")))
    if caveat:
        lines += [f"> {caveat}", ""]
    if (Path(home or out_dir) / ANALYSIS_FILE).is_file():
        lines += [f"The analysis — what held, what did not, and why — is in [{ANALYSIS_FILE}]({ANALYSIS_FILE}).", ""]
    lines += [f"![{Path(figure).stem}]({_link(figure, out_dir)})" for figure in lead_figures]
    if lead.strip():
        lines += ["", lead.strip(), ""]
    table = _headline_markdown(headline)
    if table:
        lines += (["## Every configuration", ""] if lead.strip() or lead_figures else []) + [table, ""]
    if summary.strip():
        lines += [summary.strip(), ""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{Path(figure).stem}]({_link(figure, out_dir)})" for figure in figures]
        lines.append("")
    lines += ["## Notebooks", ""]
    for entry in entries:
        page = _link(entry.page, out_dir)
        name = f"[{entry.title}]({page})" if page else entry.title
        note = f" — {entry.note}" if entry.note else ""
        lines.append(f"- {name}: {entry.status}{note}")
    if provenance:
        lines += ["", "## How this report was made", ""]
        lines += [f"- {key}: `{value}`" for key, value in provenance.items()]
    return "\n".join(lines) + "\n"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #bbb; padding: 0.3rem 0.7rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
code {{ background: #f3f3f3; padding: 0 0.2rem; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def write_report(out_dir: Path, *, title: str, entries: list[ReportEntry], headline=None, summary: str = "",
                 figures: list[Path] = (), provenance: dict | None = None,
                 home: Path | None = None, lead: str = "", lead_figures: list[Path] = ()) -> tuple[Path, Path]:
    """Write ``index.html`` and ``README.md`` into ``out_dir``; returns their paths.

    ``home``: the folder the report will be published into, when ``out_dir`` is a staging folder.
    ``headline``: a DataFrame (its first column or index labels the rows) or ready Markdown text;
    ``summary``: Markdown shown under it; ``figures``: image files inside ``out_dir`` shown inline;
    ``lead``/``lead_figures``: Markdown and images shown before everything else.
    """
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = report_markdown(out_dir, title=title, entries=entries, headline=headline, summary=summary,
                               figures=figures, provenance=provenance, home=home, lead=lead, lead_figures=lead_figures)
    readme = out_dir / README_FILE
    readme.write_text(markdown, encoding="utf-8")
    index = out_dir / INDEX_FILE
    index.write_text(_PAGE.format(title=html.escape(title), body=markdown2html_mistune(markdown)), encoding="utf-8")
    return index, readme
