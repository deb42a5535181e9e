"""LaTeX formulas in Markdown pre-rendered as MathML, so a report shows its maths without a network.

nbconvert's pages leave ``$...$`` for MathJax, which they load from a CDN: offline, a reader sees raw
LaTeX. Browsers draw MathML themselves (MathML Core: Chromium 109+, Firefox, Safari), so the
formulas are converted once, when the page is rendered, with ``latex2mathml`` (pure Python).

Recognised: ``$$...$$`` (display, may span lines) and ``$...$`` (inline, within a paragraph), not
inside code (fenced blocks or backtick spans) and not ``\\$``. A formula latex2mathml cannot convert
is left as it was, so a check for raw ``$...$`` in the page finds it.
"""

from __future__ import annotations

import re

from latex2mathml.converter import convert

# Code first (kept as is), then display maths, then inline maths; one pass, left to right.
_PIECES = re.compile(
    r"(?P<fence>^(?P<ticks>`{3,}|~{3,})[^\n]*\n.*?^(?P=ticks)[ \t]*$)"
    r"|(?P<code>(?P<run>`+).+?(?P=run))"
    r"|(?<!\\)\$\$(?P<display>.+?)(?<!\\)\$\$"
    r"|(?<![\\$])\$(?P<inline>[^\s$](?:[^$\n]|\n(?!\s*\n))*?)(?<![\\\s])\$(?!\$)",
    re.DOTALL | re.MULTILINE,
)


def latex_to_mathml(latex: str, *, display: bool = False) -> str:
    """One formula as a ``<math>`` element (block when ``display``)."""
    return convert(latex.strip(), display="block" if display else "inline")


def _replace(match: re.Match) -> str:
    if match.group("fence") or match.group("code"):
        return match.group(0)
    display = match.group("display") is not None
    latex = match.group("display") if display else match.group("inline")
    try:
        return latex_to_mathml(latex, display=display)
    except Exception:  # noqa: BLE001 - latex2mathml raises many kinds; the raw formula stays visible
        return match.group(0)


def markdown_with_mathml(markdown: str) -> str:
    """``markdown`` with every formula outside code replaced by MathML."""
    return _PIECES.sub(_replace, markdown)


def notebook_with_mathml(notebook) -> object:
    """The nbformat notebook with the formulas of its Markdown cells and Markdown outputs converted
    (in place; returned for chaining)."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = markdown_with_mathml(cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data:
                text = data["text/markdown"]
                data["text/markdown"] = markdown_with_mathml("".join(text) if isinstance(text, list) else text)
    return notebook
