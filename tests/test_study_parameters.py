"""A notebook's parameters (declarations and checks) and the digests that decide a run's reuse.
(Notebook executions are in test_study_runs.py.)"""

import nbformat
import pandas as pd
import pytest

from fakd.errors import FakdError
from fakd.study.parameters import check_parameters, notebook_digest, notebook_parameters, parameters_digest

PARAMETERS_CELL = """\
run_dir = ""  # where the results go
weight: float = 10.0
seed = 0
taps = ["body.3", "body.7"]
flag = True
label = None
options: dict = {}
shape = (1, 2)
scale: float | None = None  # annotated: None allowed, else a float
"""


def write_notebook(path, parameters_source, *cells):
    notebook = nbformat.v4.new_notebook()
    tagged = nbformat.v4.new_code_cell(parameters_source)
    tagged.metadata["tags"] = ["parameters"]
    notebook.cells = [nbformat.v4.new_markdown_cell("# test"), tagged]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def notebook(tmp_path):
    return write_notebook(tmp_path / "nb.ipynb", PARAMETERS_CELL, "print(weight)")


def test_declared_parameters_are_read_with_defaults_types_and_help(notebook):
    declared = notebook_parameters(notebook)
    assert list(declared) == ["run_dir", "weight", "seed", "taps", "flag", "label", "options", "shape", "scale"]
    assert declared["run_dir"].help == "where the results go"
    assert declared["weight"].expected_type is float and declared["weight"].default == 10.0
    assert declared["seed"].expected_type is int
    assert declared["taps"].default == ["body.3", "body.7"]
    assert declared["label"].expected_type is None and declared["label"].accepts_none
    assert declared["scale"].expected_type is float and declared["scale"].accepts_none


@pytest.mark.parametrize("given", [
    {"weight": 1, "seed": 3, "taps": ["body.1"], "flag": False, "label": "x", "options": {"a": 1}},
    {"weight": 2.5, "label": 7, "shape": [3, 4], "scale": None},
    {"scale": 2},
    {},
])
def test_well_typed_values_pass(notebook, given):
    check_parameters(notebook, given)


def test_unknown_name_is_an_error_listing_the_valid_names(notebook):
    with pytest.raises(FakdError, match=r"no parameter 'wieght'.*run_dir, weight, seed, taps, flag"):
        check_parameters(notebook, {"wieght": 1.0})


@pytest.mark.parametrize("given, expected", [
    ({"weight": "10"}, "expects float"),
    ({"weight": True}, "expects float"),
    ({"seed": 1.5}, "expects int"),
    ({"seed": False}, "expects int"),
    ({"taps": "body.3"}, "expects list"),
    ({"flag": 1}, "expects bool"),
    ({"options": [1]}, "expects dict"),
    ({"seed": None}, "may not be None"),
    ({"scale": "x2"}, "expects float"),
])
def test_wrongly_typed_value_is_an_error(notebook, given, expected):
    with pytest.raises(FakdError, match=expected):
        check_parameters(notebook, given)


def test_notebook_without_parameters_cell_is_an_error(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(notebook, tmp_path / "plain.ipynb")
    with pytest.raises(FakdError, match="no code cell tagged 'parameters'"):
        notebook_parameters(tmp_path / "plain.ipynb")
    with pytest.raises(FakdError, match="notebook not found"):
        notebook_parameters(tmp_path / "missing.ipynb")


def test_digests_ignore_key_order_and_prose(tmp_path, notebook):
    assert parameters_digest({"a": 1, "b": [1, 2]}) == parameters_digest({"b": [1, 2], "a": 1})
    assert parameters_digest({"a": 1}) != parameters_digest({"a": 2})
    before = notebook_digest(notebook)
    content = nbformat.read(notebook, as_version=4)
    content.cells[0].source = "# other prose"
    nbformat.write(content, notebook)
    assert notebook_digest(notebook) == before
    content.cells[2].source = "print(seed)"
    nbformat.write(content, notebook)
    assert notebook_digest(notebook) != before


def _code_notebook(path, *cells):
    content = nbformat.v4.new_notebook()
    content.cells = [nbformat.v4.new_markdown_cell("# prose")] + [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(content, path)
    return path


def test_notebook_digest_ignores_imports_comments_and_layout(tmp_path):
    first = _code_notebook(tmp_path / "a.ipynb", "from fakd.report.runs import train_student\nimport pandas as pd",
                           "%matplotlib inline", "x = train_student(run_dir, 1)\nif x:\n    from os import path\n"
                           "    y = pd.DataFrame(x)")
    second = _code_notebook(tmp_path / "b.ipynb", "from fakd.train.notebook import (\n    train_student)\n",
                            "%matplotlib inline", "# a comment\nimport pandas as pd\nx = train_student( run_dir,1 )"
                            "\nif x:  # why\n    y = pd.DataFrame(x)\n")
    assert notebook_digest(first) == notebook_digest(second)
    changed = _code_notebook(tmp_path / "c.ipynb", "from fakd.report.runs import train_student", "%matplotlib inline",
                             "x = train_student(run_dir, 2)\nif x:\n    y = pd.DataFrame(x)")
    assert notebook_digest(changed) != notebook_digest(first)
    magic = _code_notebook(tmp_path / "d.ipynb", "from fakd.report.runs import train_student", "%matplotlib notebook",
                           "x = train_student(run_dir, 1)\nif x:\n    y = pd.DataFrame(x)")
    assert notebook_digest(magic) != notebook_digest(first)  # an unparsable cell counts as written
