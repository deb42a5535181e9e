"""The documentation site: its generated pages, and the whole site built and opened in headless Chromium.

The build test runs ``mkdocs build --strict`` (what ``make docs`` runs) into a temporary folder — the
lesson notebook executed afresh in a temporary cache (or reused from $FAKD_DOCS_CACHE) — and opens every page reachable
from the landing page: no console error, no failed load, no broken image or internal link. Needs
Chromium (skips without it, fails under CI).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fakd import docs_site
from fakd.cli import COMMANDS, build_parser

from site_check import check_site

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_every_parsers_own_help():
    page = docs_site.cli_reference_markdown()
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)).choices
    assert list(commands) == list(COMMANDS)
    for name, command in commands.items():
        assert f"## fakd {name}\n" in page
        for action in command._actions:  # every option of every sub-command, as its parser spells it
            for option in action.option_strings:
                assert option in page, f"fakd {name} {option} missing"
    assert page.count("```text") == len(COMMANDS) + 1


def test_readme_sections_are_included_whole(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# t\n\n## Result — at x4\n\nline one\n\n| a |\n|---|\n\n## Next\n\nother\n")
    assert docs_site.readme_section("Result", readme=readme) == "line one\n\n| a |\n|---|\n"
    with pytest.raises(ValueError, match="no section '## Missing'"):
        docs_site.readme_section("Missing", readme=readme)
    assert "FAKD at its validation-chosen weight" in docs_site.include_readme_sections("<!-- README: Result -->")


def test_the_lesson_page_collapses_solutions_and_keeps_exercises(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("## A section"),
        nbformat.v4.new_code_cell("answer = None", metadata={"tags": ["exercise"]},
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="… not answered yet\n")]),
        nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"], "jupyter": {"source_hidden": True}},
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="✓ right: 42\n")]),
    ]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook, str(path))
    page, figures = docs_site.lesson_markdown(path)
    assert "x = 1" not in page and "## A section" in page and figures == {}
    assert "answer = None" in page and "not answered yet" in page and "Exercise" in page
    solution = page[page.index('??? success "Solution"'):]
    assert "    answer = 42" in solution and "    ✓ right: 42" in solution  # indented: inside the collapsed block


@pytest.mark.slow
def test_the_built_site_has_no_broken_link_or_console_error(chromium, tmp_path):
    site = tmp_path / "site"
    # the lesson executed afresh, unless $FAKD_DOCS_CACHE names a cache to reuse (e.g. build/docs after make docs)
    environment = {docs_site.CACHE_VARIABLE: str(tmp_path / "cache"), **os.environ}
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                           cwd=ROOT, capture_output=True, text=True, timeout=1200, env=environment)
    assert build.returncode == 0, build.stderr[-3000:]
    pages, problems = check_site(site, executable=chromium)
    assert problems == []
    for page in ("index.html", "getting-started.html", "lesson.html", "study.html", "reference/cli.html",
                 "reference/distill.html", "reference/analysis.html", "guarantees.html", "architecture.html",
                 "reports/cpu/index.html"):
        assert page in pages, f"{page} not reachable from the landing page"
    lesson = (site / "lesson.html").read_text()
    assert lesson.count("✓ right") >= 4 and "<math" in lesson and "$$" not in lesson
    assert "<details" in lesson  # the solutions, collapsed
