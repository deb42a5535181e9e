"""Committed reports show today's code: every fakd name a rendered notebook imports still resolves.

A report whose pages import a module that no longer exists (a step reused across a restructure)
would show readers code they cannot run; ``fakd study`` re-executes report notebooks when the library
changes, and this test fails when a committed page still carries a stale import."""

import ast
import html
import importlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPORTS = Path(__file__).resolve().parents[1] / "reports"
PAGES = sorted(REPORTS.glob("*/html/*.html"))


class _CodeCells(HTMLParser):
    """The text of every ``<pre>`` inside a highlighted Python code cell of an nbconvert page."""

    def __init__(self):
        super().__init__()
        self.cells, self._depth, self._in_code = [], 0, 0

    def handle_starttag(self, tag, attrs):
        classes = dict(attrs).get("class") or ""
        if tag == "div" and "hl-ipython3" in classes:
            self._in_code = 1
        elif tag == "pre" and self._in_code:
            self.cells.append("")
            self._depth = 1

    def handle_endtag(self, tag):
        if tag == "pre" and self._depth:
            self._depth, self._in_code = 0, 0

    def handle_data(self, data):
        if self._depth:
            self.cells[-1] += data


def code_cells(page_html: str) -> list[str]:
    parser = _CodeCells()
    parser.feed(page_html)
    return [html.unescape(cell) for cell in parser.cells]


def unresolved_fakd_imports(source: str) -> list[str]:
    """``module.name`` of every fakd import in ``source`` that does not resolve today."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            missing += [alias.name for alias in node.names
                        if alias.name.split(".")[0] == "fakd" and not _module_exists(alias.name)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "fakd":
            if not _module_exists(node.module):
                missing.append(node.module)
                continue
            module = importlib.import_module(node.module)
            missing += [f"{node.module}.{alias.name}" for alias in node.names
                        if not hasattr(module, alias.name) and not _module_exists(f"{node.module}.{alias.name}")]
    return missing


def _module_exists(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        return False
    return True


def test_the_checker_finds_a_stale_import():
    page = ('<div class="highlight hl-ipython3"><pre><span class="kn">from</span> fakd.engine.config '
            '<span class="kn">import</span> load_run_config\nfrom fakd.train.config import load_run_config, '
            'no_such_name\nimport fakd.data\n%matplotlib inline</pre></div>')
    assert unresolved_fakd_imports(code_cells(page)[0]) == ["fakd.engine.config", "fakd.train.config.no_such_name"]


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(REPORTS)) for page in PAGES])
def test_committed_report_pages_import_only_what_exists(page):
    missing = sorted({name for cell in code_cells(page.read_text()) for name in unresolved_fakd_imports(cell)})
    assert not missing, f"{page.relative_to(REPORTS.parent)} imports names today's fakd lacks: {missing}"
