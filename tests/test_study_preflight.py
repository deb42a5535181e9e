"""`fakd study` refuses user mistakes in one line with exit code 2 before its first notebook runs,
leaving no report and no run folder behind (and the user's file untouched)."""

import pytest

from fakd.cli import main


@pytest.fixture
def folders(tmp_path):
    taken = tmp_path / "taken.txt"
    taken.write_text("the user's file")
    empty_root = tmp_path / "data"
    (empty_root / "Set5" / "HR").mkdir(parents=True)
    return {"taken": taken, "empty_root": empty_root, "report": tmp_path / "report", "runs": tmp_path / "runs"}


def study(folders, *arguments):
    return ["study", "--out", str(folders["report"]), "--runs", str(folders["runs"]), *arguments]


@pytest.mark.parametrize("arguments, message", [
    (("--device", "bogus"), "unknown device 'bogus'"),
    (("--data-root", "/nope"), "data root is not an existing folder: /nope"),
    (("--profile", "cpu", "--data-root", "EMPTY_ROOT"), "unknown data set 'T91'"),
])
def test_study_mistakes_are_one_line_before_any_notebook(folders, capsys, arguments, message):
    arguments = [str(folders["empty_root"]) if argument == "EMPTY_ROOT" else argument for argument in arguments]
    assert main(study(folders, *arguments)) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and message in errors[0], errors
    assert not folders["report"].exists() and not folders["runs"].exists()


def test_study_output_that_is_a_file_is_refused(folders, capsys):
    assert main(["study", "--out", str(folders["taken"]), "--runs", str(folders["runs"])]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "report folder" in errors[0] and "is a file, not a folder" in errors[0]
    assert folders["taken"].read_text() == "the user's file" and not folders["runs"].exists()
    assert main(["study", "--out", str(folders["report"]), "--runs", "/proc/fakd-study-test"]) == 2
    assert "cannot write into runs folder" in capsys.readouterr().err
    assert not folders["report"].exists()

