"""Rendered notebook pages work offline: formulas are MathML (no raw ``$...$`` left), no script from a CDN."""

import re
from html.parser import HTMLParser

import pytest

from fakd.study.locations import resolve_notebook
from fakd.study.maths import markdown_with_mathml
from fakd.study.render import render_notebook


class _MarkdownText(HTMLParser):
    """Text of the rendered Markdown cells, outside <math> elements; and every script's src."""

    def __init__(self):
        super().__init__()
        self.depth = 0  # inside a rendered-Markdown element
        self.in_math = 0
        self.text, self.scripts, self.maths = [], [], 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.scripts.append(attributes["src"])
        if tag == "math":
            self.in_math += 1
            self.maths += 1
        if self.depth or "jp-RenderedMarkdown" in (attributes.get("class") or ""):
            self.depth += tag not in ("br", "img", "hr", "mspace")

    def handle_endtag(self, tag):
        if tag == "math":
            self.in_math -= 1
        if self.depth and tag not in ("br", "img", "hr", "mspace"):
            self.depth -= 1

    def handle_data(self, data):
        if self.depth and not self.in_math:
            self.text.append(data)


def _parse(page: str) -> _MarkdownText:
    parser = _MarkdownText()
    parser.feed(page)
    return parser


RAW_FORMULA = re.compile(r"\$[^$\s][^$]*\$|\\[A-Za-z]+")  # $...$ or a LaTeX command such as \alpha


def test_the_primer_page_has_mathml_and_no_raw_latex(tmp_path):
    page = render_notebook(resolve_notebook("00_kd_primer"), tmp_path / "primer.html").read_text()
    parsed = _parse(page)
    text = "".join(parsed.text)
    assert "spatial affinity matrix" in text  # the Markdown cells were found
    assert not RAW_FORMULA.findall(text)
    assert parsed.maths >= 10  # the primer's formulas, each one <math> element
    assert 'display="block"' in page  # its loss, on a line of its own
    assert [src for src in parsed.scripts if re.match(r"(https?:)?//", src)] == []  # nothing from a network


def test_raw_formulas_are_what_the_check_finds():
    parsed = _parse('<div class="jp-RenderedMarkdown"><p>a $x^2$ and \\alpha</p></div>')
    assert RAW_FORMULA.findall("".join(parsed.text)) == ["$x^2$", "\\alpha"]


@pytest.mark.parametrize("markdown, kept", [
    ("costs `$HOME` and ``$a$``", True),            # code spans
    ("```\nprice = $5 + $6\n```\n", True),          # a fenced block
    ("an escaped \\$5 and \\$6", True),             # escaped dollars
    ("5$ and 6 $", True),                          # not a formula: space inside the closing $
])
def test_code_and_money_are_left_alone(markdown, kept):
    assert (markdown_with_mathml(markdown) == markdown) is kept


def test_inline_and_display_maths_become_mathml():
    converted = markdown_with_mathml("shape $(B, C)$ and\n\n$$A = F^\\top F$$\n\ntext")
    assert converted.count("<math") == 2 and "$" not in converted
    assert 'display="inline"' in converted and 'display="block"' in converted
    assert "<mi>B</mi>" in converted and "<msup>" in converted


def test_a_formula_that_cannot_be_converted_stays_visible():
    assert markdown_with_mathml("broken $\\frac{1}{$ here") == "broken $\\frac{1}{$ here"
