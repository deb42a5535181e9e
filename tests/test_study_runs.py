"""Study machinery with real kernels: papermill runs, reuse, failures, sweeps (parallel, resumable),
aggregation, HTML rendering and the study pipeline — on throwaway notebooks written by the tests.
A kernel start costs 1–3 s, so every test keeps the number of executions small."""

import json
import shutil
import sys

import nbformat
import pandas as pd
import pytest

from fakd.cli import main
from fakd.errors import FakdError
from fakd.study.grid import grid_from_mapping
from fakd.study.notebook_runner import DONE_MARKER, FAILED_MARKER, KernelSettings, NotebookFailed, run_notebook
from fakd.study.pipeline import Step, run_study
from fakd.study.render import render_notebook
from fakd.study.sweep import run_sweep

PARAMETERS = 'run_dir = ""\nweight: float = 10.0\nseed = 0\nmode = "ok"  # "fail" raises in a later cell\n'
WRITE_RESULTS = """\
import json, os, pathlib, sys
folder = pathlib.Path(run_dir)
with open(folder / "executions.txt", "a") as counter:  # one line per execution of this run
    counter.write("x\\n")
json.dump({"score": weight * 2 + seed, "python": sys.executable, "pid": os.getpid(),
           "threads": os.environ.get("OMP_NUM_THREADS"), "mmap_max": os.environ.get("MALLOC_MMAP_MAX_")},
          open(folder / "results.json", "w"))
"""
MAYBE_FAIL = 'if mode == "fail":\n    raise ValueError("deliberate failure for seed %d" % seed)\n'


def write_notebook(path, parameters_source, *cells):
    notebook = nbformat.v4.new_notebook()
    tagged = nbformat.v4.new_code_cell(parameters_source)
    tagged.metadata["tags"] = ["parameters"]
    notebook.cells = [tagged] + [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def notebook(tmp_path):
    return write_notebook(tmp_path / "scored.ipynb", PARAMETERS, WRITE_RESULTS, MAYBE_FAIL)


def executions(run_dir):
    return len((run_dir / "executions.txt").read_text().splitlines())


def test_run_executes_in_this_interpreter_and_reuses_a_finished_run(tmp_path, notebook):
    run_dir = tmp_path / "run"
    run = run_notebook(notebook, run_dir, {"weight": 1.5, "seed": 2},
                       kernel=KernelSettings(environment={"OMP_NUM_THREADS": "1"}))
    assert not run.reused and run.executed == run_dir / "scored.ipynb" and run.executed.is_file()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["score"] == 5.0
    assert results["threads"] == "1"
    assert results["python"] == sys.executable  # the venv's interpreter, not some other kernelspec's
    assert (run_dir / DONE_MARKER).is_file()
    executed = nbformat.read(run.executed, as_version=4)
    assert any("injected-parameters" in cell.metadata.get("tags", []) for cell in executed.cells)

    again = run_notebook(notebook, run_dir, {"seed": 2, "weight": 1.5})
    assert again.reused and executions(run_dir) == 1  # no kernel started the second time

    changed = run_notebook(notebook, run_dir, {"weight": 1.5, "seed": 3})
    assert not changed.reused and executions(run_dir) == 2


def test_parameters_are_checked_before_any_kernel_starts(tmp_path, notebook):
    with pytest.raises(FakdError, match=r"no parameter 'wieght'; its parameters are: run_dir, weight, seed, mode"):
        run_notebook(notebook, tmp_path / "typo", {"wieght": 1.0})
    with pytest.raises(FakdError, match="expects float"):
        run_notebook(notebook, tmp_path / "typed", {"weight": "high"})
    assert not (tmp_path / "typo").exists() and not (tmp_path / "typed").exists()


def test_failing_notebook_keeps_the_executed_notebook_and_says_why(tmp_path, notebook):
    run_dir = tmp_path / "failing"
    with pytest.raises(NotebookFailed, match="ValueError: deliberate failure for seed 4") as caught:
        run_notebook(notebook, run_dir, {"mode": "fail", "seed": 4})
    assert caught.value.executed == run_dir / "scored.ipynb"
    executed = nbformat.read(caught.value.executed, as_version=4)
    errors = [output for cell in executed.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.output_type == "error"]
    assert errors and errors[0].ename == "ValueError"
    assert not (run_dir / DONE_MARKER).exists()
    assert "deliberate failure" in json.loads((run_dir / FAILED_MARKER).read_text())["error"]

    html = render_notebook(caught.value.executed, tmp_path / "html" / "failing.html")
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "deliberate failure for seed 4" in page


@pytest.mark.slow
def test_sweep_parallel_failure_recorded_resume_and_table(tmp_path, notebook):
    grid = grid_from_mapping({
        "notebook": str(notebook),
        "parameters": {"weight": 1.0},
        "grid": [{"seed": [0, 1], "mode": ["ok"]}, {"seed": [7], "mode": ["fail"]}],
    })
    out = tmp_path / "sweep"
    report = run_sweep(grid, out, workers=2)
    assert [outcome.status for outcome in report.outcomes] == ["done", "done", "failed"]
    assert not report.ok
    failures = json.loads((out / "failures.json").read_text())
    assert len(failures) == 1 and failures[0]["parameters"]["seed"] == 7
    assert "deliberate failure for seed 7" in failures[0]["error"]
    assert nbformat.read(failures[0]["executed"], as_version=4)  # the executed notebook is kept

    table = pd.read_csv(out / "results.csv")
    assert table["seed"].tolist() == [0, 1] and table["score"].tolist() == [2.0, 3.0]
    assert set(table.columns) >= {"run", "run_dir", "weight", "seed", "mode", "score"}
    assert (table["threads"] == 1).all()  # one torch thread per point unless told otherwise
    assert (table["mmap_max"] == 0).all()  # the tuned allocator reached the kernels
    assert table["pid"].nunique() == 2

    # Resume: the finished points are skipped, the failed one is tried again (and fails again).
    again = run_sweep(grid, out, workers=2)
    assert [outcome.status for outcome in again.outcomes] == ["reused", "reused", "failed"]
    assert all(executions(outcome.run_dir) == 1 for outcome in again.outcomes[:2])
    assert pd.read_csv(out / "results.csv")["score"].tolist() == [2.0, 3.0]


@pytest.mark.slow
def test_sweep_command_exit_codes(tmp_path, notebook, capsys):
    grid_path = tmp_path / "grid.yaml"
    grid_path.write_text("notebook: scored.ipynb\ngrid:\n  seed: [3]\n  mode: [ok]\n")
    assert main(["sweep", str(grid_path), "--out", str(tmp_path / "out"), "--set", "weight=0.5"]) == 0
    assert pd.read_csv(tmp_path / "out" / "results.csv")["score"].tolist() == [4.0]
    assert "1 run, 0 reused, 0 failed" in capsys.readouterr().out

    assert main(["sweep", str(grid_path), "--out", str(tmp_path / "out"), "--set", "weight=0.5"]) == 0
    assert "0 run, 1 reused, 0 failed" in capsys.readouterr().out

    assert main(["sweep", str(grid_path), "--out", str(tmp_path / "bad"), "--set", "wieght=1"]) == 2
    assert "no parameter 'wieght'" in capsys.readouterr().err

    grid_path.write_text("notebook: scored.ipynb\ngrid:\n  seed: [3]\n  mode: [fail]\n")
    assert main(["sweep", str(grid_path), "--out", str(tmp_path / "out")]) == 1
    assert "FAILED" in capsys.readouterr().err


@pytest.mark.slow
def test_study_pipeline_runs_in_order_reuses_and_renders(tmp_path):
    first = write_notebook(tmp_path / "00_first.ipynb", 'run_dir = ""\nprofile = "cpu"\n', WRITE_RESULTS.replace(
        "weight * 2 + seed", "len(profile)"))
    compare = write_notebook(
        tmp_path / "04_compare.ipynb", 'run_dir = ""\nsweep_dir = ""\n',
        "import json, pathlib\n"
        "import pandas as pd\n"
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "table = pd.read_csv(pathlib.Path(sweep_dir) / 'results.csv')\n"
        "rows = [{'model': f'seed {s}', 'dataset': 'Set5', 'scale': 4, 'psnr': 30 + v, 'ssim': 0.9}\n"
        "        for s, v in zip(table['seed'], table['score'])]\n"
        "json.dump({'rows': rows}, open(pathlib.Path(run_dir) / 'results.json', 'w'))\n"
        "plt.plot([1, 2]); plt.title('a figure'); plt.savefig(pathlib.Path(run_dir) / 'curve.png')\n"
        "(pathlib.Path(run_dir) / 'summary.md').write_text('not the ablation summary')\n")
    scored = write_notebook(tmp_path / "scored.ipynb", PARAMETERS + 'profile = "cpu"\n', WRITE_RESULTS)
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"notebook: {scored}\nparameters: {{weight: 2.0}}\ngrid:\n  seed: [1]\n")
    steps = (
        Step("first", "First notebook", notebook=str(first)),
        Step("students", "Student sweep", grids={"smoke": str(grid)}),
        Step("compare", "Comparison", notebook=str(compare), figures=True,
             links=lambda context: {"sweep_dir": str(context.run_dir("students"))}),
    )
    report_dir, runs_dir = tmp_path / "report", tmp_path / "runs"
    report = run_study(profile="smoke", report_dir=report_dir, runs_dir=runs_dir, steps=steps, progress=False)
    assert report.failure is None
    assert [entry.status for entry in report.entries] == ["done", "done", "done"]
    assert json.loads((runs_dir / "first" / "results.json").read_text())["score"] == len("smoke")
    readme = report.readme.read_text()
    assert "| 4 | seed 1 | 35.00 / 0.9000 |" in readme  # headline: paper table from compare's rows
    assert "not the ablation summary" not in readme  # only the ablation step's summary.md is used
    assert "[First notebook](html/00_first.html)" in readme
    assert "![curve](figures/compare/curve.png)" in readme
    assert "[Student sweep](tables/students_results.csv): done" in readme
    assert pd.read_csv(report_dir / "tables" / "students_results.csv")["score"].tolist() == [5.0]
    assert "profile: `smoke`" in readme
    index = report.index.read_text()
    assert '<a href="html/04_compare.html">Comparison</a>' in index and "<table>" in index
    assert (report_dir / "html" / "00_first.html").is_file() and (report_dir / "figures/compare/curve.png").is_file()

    again = run_study(profile="smoke", report_dir=report_dir, runs_dir=runs_dir, steps=steps, progress=False)
    assert [entry.status for entry in again.entries] == ["reused", "done", "reused"]
    assert executions(runs_dir / "first") == 1
    assert "0 executed now" in again.entries[1].note


def test_render_only_trains_nothing_and_report_steps_follow_the_library(tmp_path, monkeypatch):
    """A report notebook's finished run is reused only while the library is unchanged (so a rendered report
    never shows code today's library lacks); a sweep's finished training runs are reused whatever the
    library; --render-only runs no new point and names the ones not trained yet."""
    first = write_notebook(tmp_path / "00_first.ipynb", 'run_dir = ""\nprofile = "cpu"\n', WRITE_RESULTS.replace(
        "weight * 2 + seed", "len(profile)"))
    scored = write_notebook(tmp_path / "scored.ipynb", PARAMETERS + 'profile = "cpu"\n', WRITE_RESULTS)
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"notebook: {scored}\nparameters: {{weight: 2.0}}\ngrid:\n  seed: [1]\n")
    steps = (Step("first", "First notebook", notebook=str(first)),
             Step("students", "Student sweep", grids={"smoke": str(grid)}, archived=True))
    report_dir, runs_dir = tmp_path / "report", tmp_path / "runs"
    assert run_study(profile="smoke", report_dir=report_dir, runs_dir=runs_dir, steps=steps,
                     progress=False).failure is None
    grid.write_text(f"notebook: {scored}\nparameters: {{weight: 2.0}}\ngrid:\n  seed: [1, 2]\n")
    monkeypatch.setattr("fakd.study.pipeline.library_digest", lambda: "another library")
    again = run_study(profile="smoke", report_dir=report_dir, runs_dir=runs_dir, steps=steps, progress=False,
                      render_only=True)
    assert again.failure is None and [entry.status for entry in again.entries] == ["done", "done"]
    assert executions(runs_dir / "first") == 2  # the report notebook ran again for the new library
    point_runs = sorted((runs_dir / "students" / "runs").iterdir())
    assert len(point_runs) == 1 and executions(point_runs[0]) == 1  # training reused, seed 2 not run
    assert "1 of the grid's 2 runs not trained yet (render only)" in again.entries[1].note
    assert json.loads((runs_dir / "first" / DONE_MARKER).read_text())["library_sha256"] == "another library"


TEACHER_LIKE = """\
import pathlib
folder = pathlib.Path(run_dir)
with open(folder / "executions.txt", "a") as counter:
    counter.write("x\\n")
(folder / "train" / "checkpoints").mkdir(parents=True, exist_ok=True)
(folder / "train" / "checkpoints" / "best.pt").write_bytes(b"weights of " + profile.encode())
"""
STUDENT_LIKE = """\
import json, pathlib
folder = pathlib.Path(run_dir)
with open(folder / "executions.txt", "a") as counter:
    counter.write("x\\n")
teacher = (pathlib.Path(teacher_run_dir) / "train" / "checkpoints" / "best.pt").read_bytes()
images = sorted(p.name for p in (pathlib.Path(data_root) / "Set5" / "HR").iterdir())
json.dump({"rows": [{"dataset": "Set5", "psnr": 30 + seed + len(teacher) / 100, "images": len(images)}]},
          open(folder / "results.json", "w"))
"""


def test_a_study_moved_with_its_runs_archive_and_data_trains_nothing_again(tmp_path):
    """Identity by content: the same study in other folders (a new machine) reuses every run."""
    from PIL import Image

    teacher = write_notebook(tmp_path / "teacher.ipynb", 'run_dir = ""\nprofile = "cpu"\ndata_root = ""\n', TEACHER_LIKE)
    student = write_notebook(tmp_path / "student.ipynb", 'run_dir = ""\nprofile = "cpu"\ndata_root = ""\n'
                             'teacher_run_dir = ""\nseed = 0\n', STUDENT_LIKE)
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"notebook: {student}\ngrid:\n  seed: [0, 1]\n")
    steps = (Step("teacher", "Teacher", notebook=str(teacher), archived=True),
             Step("students", "Students", grids={"smoke": str(grid)}, archived=True,
                  links=lambda context: {"teacher_run_dir": str(context.run_dir("teacher").resolve())}))
    first = tmp_path / "machine-a"
    (first / "data" / "Set5" / "HR").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(first / "data" / "Set5" / "HR" / "x.png")

    def study(root):
        return run_study(profile="smoke", report_dir=root / "report", runs_dir=root / "runs", steps=steps,
                         archive=root / "archive", data_root=str(root / "data"), progress=False)

    before = study(first)
    assert before.failure is None
    archived = (first / "archive").rglob("*")
    assert not any(str(first) in path.read_text(errors="ignore") for path in archived if path.is_file()
                   and path.suffix in (".json", ".ipynb"))  # the archive holds no path of machine A
    second = tmp_path / "machine-b"
    shutil.copytree(first, second)
    shutil.rmtree(first)
    after = study(second)
    assert after.failure is None and after.entries[0].status == "reused" and "0 executed now" in after.entries[1].note
    assert sorted(executions(run) for run in (second / "runs").rglob("executions.txt") for run in [run.parent]) == [1, 1, 1]
    table = pd.read_csv(second / "report" / "tables" / "students_results.csv")
    weights = len(b"weights of smoke") / 100  # the students read the teacher the first study trained
    assert sorted(table["psnr"]) == pytest.approx([30 + weights, 31 + weights])
    shutil.rmtree(second / "runs")  # a new machine with only the committed archive and the data
    again = study(second)
    assert again.failure is None and again.entries[0].status == "reused" and "0 executed now" in again.entries[1].note
