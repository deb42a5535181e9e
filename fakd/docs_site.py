"""The documentation site's build steps (``make docs``: MkDocs with this module as its hook file).

MkDocs renders ``docs/*.md``; this module adds what is generated at build time, so nothing is copied by
hand and nothing goes stale:

- ``reference/cli.md`` — every ``fakd`` sub-command's ``--help``, from the argparse parsers ``fakd.cli``
  builds;
- ``lesson.md`` — the lesson notebook (``notebooks/00_kd_primer.ipynb``) executed headless, as a page:
  solutions collapsed, its figures beside it. The executed copy is kept in ``build/docs/`` under the
  notebook file's SHA-256 and reused while neither the notebook nor the library changed
  (``fakd.study.notebook_runner``), so a second build takes seconds and a build never shows yesterday's
  notebook;
- the committed study reports (``reports/cpu``, ``reports/cpu-x2``, ``reports/cpu-first-study``) and
  ``benchmarks/results`` as static files, so the pages and README's Result section link into them;
- README's "Result" section, included where a page says ``<!-- README: Result -->`` (one text, two places);
- formulas as MathML (``fakd.study.maths``): the site loads nothing from a network.

MkDocs imports this file by path (``hooks:`` in ``mkdocs.yml``); its ``on_*`` functions are MkDocs'
event hooks.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSON_NOTEBOOK = ROOT / "notebooks" / "00_kd_primer.ipynb"
LESSON_PAGE = "lesson.md"
LESSON_ASSETS = "lesson"
CLI_PAGE = "reference/cli.md"
BUILD_CACHE = ROOT / "build" / "docs"
CACHE_VARIABLE = "FAKD_DOCS_CACHE"  # another folder for the executed lesson (the tests use a temporary one)
# Committed files the pages link to, copied as they are (the rendered reports, the benchmark plots).
STATIC_FOLDERS = ("reports/cpu", "reports/cpu-x2", "reports/cpu-first-study", "benchmarks/results")
README_MARKER = re.compile(r"<!-- README: (?P<section>[^>]+?) -->")
HELP_COLUMNS = "100"


# ----------------------------------------------------------------------------------------------
# The CLI reference


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return dict(action.choices)


def cli_reference_markdown() -> str:
    """``fakd --help`` and every sub-command's ``--help``, as argparse prints them, one section each."""
    from fakd.cli import COMMANDS, build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS  # argparse wraps at the terminal's width: fix it
    try:
        parser = build_parser()
        parts = ["# Command-line reference", "",
                 "Generated from the `fakd` command's own argument parsers when the site is built "
                 "(`fakd.docs_site`), so it is what `--help` prints.", "",
                 "## fakd", "", "```text", parser.format_help().rstrip(), "```", ""]
        for name, parser_of_command in _subparsers(parser).items():
            parts += [f"## fakd {name}", "", COMMANDS[name][0].upper() + COMMANDS[name][1:] + ".", "",
                      "```text", parser_of_command.format_help().rstrip(), "```", ""]
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------------
# The lesson, executed


def executed_lesson(*, cache: Path | None = None, notebook: Path = LESSON_NOTEBOOK) -> Path:
    """The lesson executed with its default parameters: reused from ``cache`` (default: $FAKD_DOCS_CACHE,
    else ``build/docs``) when the notebook file and the library are unchanged, else executed now (a few
    minutes on two cores)."""
    from fakd.study.notebook_runner import run_notebook
    from fakd.study.parameters import library_digest

    cache = Path(cache or os.environ.get(CACHE_VARIABLE) or BUILD_CACHE)
    key = hashlib.sha256(Path(notebook).read_bytes()).hexdigest()[:16]
    run = run_notebook(Path(notebook), Path(cache) / f"lesson-{key}", {}, library=library_digest())
    return run.executed


def _solution_block(cell) -> str:
    code = cell.source.rstrip()
    outputs = "".join(output.get("text", "") for output in cell.get("outputs", []) if output.get("name") == "stdout")
    body = f"```python\n{code}\n```\n"
    if outputs.strip():
        body += f"\n```text\n{outputs.rstrip()}\n```\n"
    indented = "\n".join(f"    {line}" if line else "" for line in body.splitlines())
    return f'??? success "Solution"\n\n{indented}\n'


def lesson_markdown(executed: Path) -> tuple[str, dict[str, bytes]]:
    """(the page's Markdown, {file name: bytes} of its figures) of an executed lesson notebook.

    Cells tagged ``solution`` become a collapsed block (Material's ``???``); cells tagged ``exercise``
    keep their code and output under an "Exercise" label; the parameters cell is left out."""
    import nbformat
    from nbconvert import MarkdownExporter

    notebook = nbformat.read(str(executed), as_version=4)
    solutions: dict[str, str] = {}
    kept = []
    for cell in notebook.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if "parameters" in tags or "injected-parameters" in tags:
            continue
        if "solution" in tags:
            marker = f"FAKD-SOLUTION-{len(solutions)}"
            solutions[marker] = _solution_block(cell)
            cell = nbformat.v4.new_markdown_cell(marker)
        elif "exercise" in tags:
            kept.append(nbformat.v4.new_markdown_cell('<p class="fakd-exercise">Exercise — edit and run:</p>'))
        kept.append(cell)
    notebook.cells = kept
    body, resources = MarkdownExporter().from_notebook_node(
        notebook, resources={"output_files_dir": LESSON_ASSETS, "unique_key": "lesson"})
    for marker, block in solutions.items():
        body = body.replace(marker, block)
    return body, dict(resources.get("outputs", {}))


# ----------------------------------------------------------------------------------------------
# README sections


def readme_section(title: str, *, readme: Path = ROOT / "README.md") -> str:
    """The body of README's ``## <title>…`` section (up to the next ``## ``), without its heading line."""
    text = Path(readme).read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}[^\n]*\n(?P<body>.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise ValueError(f"README.md has no section '## {title}'")
    return match.group("body").strip() + "\n"


def include_readme_sections(markdown: str) -> str:
    """``markdown`` with every ``<!-- README: <title> -->`` replaced by that README section."""
    return README_MARKER.sub(lambda match: readme_section(match.group("section")), markdown)


# ----------------------------------------------------------------------------------------------
# MkDocs event hooks


class _StaticFile:
    """Builds MkDocs ``File`` objects that are copied as they are, Markdown included (the reports'
    ANALYSIS.md files are linked as files by the reports themselves)."""

    @staticmethod
    def make(path: Path, *, src_dir: Path, config):
        from mkdocs.structure.files import File

        class Static(File):
            def is_documentation_page(self) -> bool:
                return False

            def is_static_page(self) -> bool:
                return False

        return Static(path.relative_to(src_dir).as_posix(), src_dir=str(src_dir), dest_dir=config["site_dir"],
                      use_directory_urls=config["use_directory_urls"])


def on_files(files, config):
    """Add the generated pages (CLI reference, lesson and its figures) and the committed reports."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, CLI_PAGE, content=cli_reference_markdown()))
    page, figures = lesson_markdown(executed_lesson())
    files.append(File.generated(config, LESSON_PAGE, content=page))
    for name, content in figures.items():
        files.append(File.generated(config, name, content=content))
    for name in STATIC_FOLDERS:
        for path in sorted((ROOT / name).rglob("*")):
            if path.is_file():
                files.append(_StaticFile.make(path, src_dir=ROOT, config=config))
    return files


def on_page_markdown(markdown, page, config, files):
    """README sections included, formulas as MathML."""
    from fakd.study.maths import markdown_with_mathml

    return markdown_with_mathml(include_readme_sections(markdown))
