"""``fakd study``: the study's notebooks run in order into run folders, then rendered as one report.

    primer    00_kd_primer          teaching notebook
    teacher   02_train_teacher      trains the profile's teacher (demo profile: adopts the shipped cpu
                                    teacher instead, ``fakd.study.adopt``)
    students  sweep over the profile's grid (notebooks/grids/<grid>.yaml, 03_distill_student),
              with teacher_run_dir fixed to the teacher step's run folder
              (its results.csv is copied into the report's tables/)
    explorer  01_affinity_explorer  affinity maps of the trained teacher vs students (widgets fall
              back to a fixed selection headless)
    compare   04_compare            teacher vs students; its results.json rows are the headline table
    ablation  05_ablation_report    reads the students' sweep; its summary.md is the report's summary
                                    (the grid file's ``report`` parameters are passed to it)

The report is rendered into a staging folder and replaces the previous report only when every step
succeeded (``fakd.study.publish``). Every step reuses a finished run (same parameters, same notebook code), so a second ``fakd study``
only renders. With an archive folder (``fakd.study.archive``), the training steps' finished runs are
copied there as they finish and restored from there at start, so a study continues on another
machine from what was committed. The standard parameters ``profile``, ``data_root``, ``device`` are passed to a notebook
only when its parameters cell declares them (and ``data_root``/``device`` only when given); the links
between steps (``teacher_run_dir``, ``sweep_dir``) are always passed.
"""

import json
import shutil
from collections import Counter
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

from fakd.train.config import PROFILES, load_run_config
from fakd.train.runs import TEACHER_CACHE_FOLDER
from fakd.train.teacher_cache import prune_seeds
from fakd.errors import FakdError
from fakd.paths import check_output_folder
from fakd.analysis.results import default_test_sets
from fakd.study.adopt import adopt_model_file, adopt_shipped_model
from fakd.study.archive import DATA_PLACEHOLDER, RUNS_PLACEHOLDER, archive_run, restore_runs, scrub_folder
from fakd.study.migrate import migrate_archive
from fakd.study.compact import compact_png_file
from fakd.study.environment import kernel_environment
from fakd.study.estimate import MEASURED_PROFILES, estimate_lines, estimate_training
from fakd.study.grid import load_grid
from fakd.study.locations import grids_dir, resolve_notebook
from fakd.study.notebook_runner import KernelSettings, NotebookFailed, finished_run, run_notebook
from fakd.study.parameters import library_digest, notebook_parameters
from fakd.study.preflight import check_device, check_training_data
from fakd.study.publish import check_report_folder, publish, staging_folder, study_identity, write_marker
from fakd.study.steplog import StepClock
from fakd.study.render import (FIGURES_FOLDER, HTML_FOLDER, TABLES_FOLDER, ReportEntry, render_notebook,
                               write_report)
from fakd.analysis.results import read_results
from fakd.zoo.checkpoint import read_model_payload
from fakd.zoo.pretrained import file_sha256, resolve_checkpoint_path
from fakd.study.sweep import RUNS_FOLDER, finished_part, print_outcome, run_sweep

STUDY_GRIDS = {"smoke": "smoke.yaml", "demo": "demo.yaml", "cpu": "cpu_ablation.yaml", "cpu-x2": "cpu_x2.yaml",
               "paper": "paper_ablation.yaml"}
TEACHER_STEP = "teacher"
EXPLORER_STEP = "explorer"
# Profiles whose teacher is a shipped model, adopted instead of trained.
SHIPPED_TEACHERS = {"demo": "rcan-cpu-teacher-x4"}
SUMMARY_FILE = "summary.md"
LEAD_FILE, LEAD_FIGURE = "lead.md", "gap_closed.png"  # what the ablation step puts first in the report
HEADLINE_COLUMNS = ("model", "dataset", "scale", "psnr", "ssim")


@dataclass(frozen=True)
class StudyContext:
    """What every step may use: the profile, the folders, and the user's data root and device."""

    profile: str
    runs_dir: Path
    report_dir: Path
    data_root: str | None = None
    device: str | None = None
    archive: Path | None = None
    teacher: Path | None = None  # ``fakd study --teacher FILE``: adopted as the teacher step's run
    teacher_sha256: str = ""
    render_only: bool = False  # train nothing: finished training runs only (``fakd study --render-only``)
    cache_freed: dict = field(default_factory=dict, compare=False)  # seed -> bytes of teacher cache deleted

    def run_dir(self, step: str) -> Path:
        """The step's run folder; an adopted teacher file's is named by its sha256, so students distilled from
        another teacher are never reused for it."""
        if step == TEACHER_STEP and self.teacher is not None:
            return self.runs_dir / f"{step}-{self.teacher_sha256[:12]}"
        return self.runs_dir / step

    @property
    def machine_paths(self) -> dict[str, str]:
        """This machine's runs folder and data root → the placeholders records show instead."""
        replacements = {str(self.runs_dir.resolve()): RUNS_PLACEHOLDER}
        if self.data_root:
            replacements[str(Path(self.data_root).resolve())] = DATA_PLACEHOLDER  # (a relative one is no machine path)
        return replacements

    def keep(self, run_dir: Path, *, keep_model: bool) -> None:
        """Copy a finished training run into the archive (same relative path), if there is one, with this
        machine's runs folder and data root written as placeholders (``fakd.study.archive``)."""
        if self.archive is not None:
            archive_run(run_dir, self.archive / Path(run_dir).relative_to(self.runs_dir), keep_model=keep_model,
                        replacements=self.machine_paths)

    def standard(self) -> dict:
        values = {"profile": self.profile, "data_root": self.data_root, "device": self.device}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class Step:
    """A notebook run (``notebook``) or a sweep (``grid`` per profile) with its links to earlier steps."""

    name: str
    title: str
    notebook: str | None = None
    grids: dict | None = None
    links: Callable[[StudyContext], dict] = lambda context: {}
    shipped: dict | None = None  # profile -> shipped model adopted as this step's run instead of the notebook's
    figures: bool = False  # copy the run's PNG figures into the report
    archived: bool = False  # a training step: its finished runs go to the study's archive


# The lesson's mini-experiment under the smoke profile (tiny runs, seconds): a few iterations per student.
SMOKE_LESSON = {"experiment_iterations": 12}

STUDY_STEPS = (
    Step("primer", "Knowledge distillation primer", notebook="00_kd_primer",
         links=lambda context: dict(SMOKE_LESSON) if context.profile == "smoke" else {}),
    Step("teacher", "Teacher training", notebook="02_train_teacher", archived=True, shipped=SHIPPED_TEACHERS),
    Step("students", "Student sweep", grids=STUDY_GRIDS, archived=True,
         links=lambda context: {"teacher_run_dir": str(context.run_dir("teacher").resolve())}),
    Step("explorer", "Affinity explorer", notebook="01_affinity_explorer", figures=True,
         links=lambda context: {"teacher_run_dir": str(context.run_dir("teacher").resolve()),
                                "sweep_dir": str(context.run_dir("students").resolve())}),
    Step("compare", "Teacher vs students", notebook="04_compare", figures=True,
         links=lambda context: {"teacher_run_dir": str(context.run_dir("teacher").resolve()),
                                "sweep_dir": str(context.run_dir("students").resolve())}),
    Step("ablation", "Ablation report", notebook="05_ablation_report", figures=True,
         links=lambda context: {"sweep_dir": str(context.run_dir("students").resolve()),
                                **_grid_report_parameters(context, notebook="05_ablation_report")}),
)


def _grid_report_parameters(context: StudyContext, *, notebook: str) -> dict:
    """The ``report`` parameters of the profile's grid file (e.g. the ×2 grid: where its weights were chosen),
    checked against the report notebook's parameters cell."""
    report = load_grid(grids_dir() / STUDY_GRIDS[context.profile]).report
    unknown = sorted(set(report) - set(notebook_parameters(resolve_notebook(notebook))))
    if unknown:
        raise FakdError(f"grids/{STUDY_GRIDS[context.profile]}: report parameter(s) {', '.join(unknown)} are not "
                        f"parameters of {notebook}")
    return report


@dataclass
class StudyReport:
    """Where the report is, each step's outcome, and the first failure (None when all went well)."""

    index: Path
    readme: Path
    entries: list[ReportEntry] = field(default_factory=list)
    cache_freed: int = 0  # bytes of teacher cache deleted as seeds finished
    failure: str | None = None  # then index/readme are the partial report's; the previous one is untouched


def _notebook_parameters(notebook: Path, context: StudyContext, step: Step) -> dict:
    declared = notebook_parameters(notebook)
    standard = {name: value for name, value in context.standard().items() if name in declared}
    return {**standard, **step.links(context)}


def _copy_figures(run_dir: Path, target: Path) -> list[Path]:
    """The run's PNG figures (top level of its folder) copied into the report, as palette PNGs."""
    copied = []
    for figure in sorted(Path(run_dir).glob("*.png")):
        target.mkdir(parents=True, exist_ok=True)
        copy = Path(shutil.copy2(figure, target / figure.name))
        compact_png_file(copy)
        copied.append(copy)
    return copied


def _headline(context: StudyContext) -> pd.DataFrame | None:
    """The paper-format table from the compare step's result rows (call only when that step succeeded)."""
    from fakd.analysis.tables import paper_table

    try:
        rows = pd.DataFrame(read_results(context.run_dir("compare")))
    except FakdError:
        return None
    if rows.empty or not set(HEADLINE_COLUMNS) <= set(rows.columns):
        return None
    return paper_table(rows)


def _provenance(context: StudyContext, *, command: str, started: float, started_at: str) -> dict:
    from fakd.train.rundir import git_commit

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return {
        "command": command,
        "profile": context.profile,
        "data root": context.data_root or "$FAKD_DATA_ROOT or the embedded scikit-image sets",
        "device": context.device or "auto",
        "git commit": git_commit() or "unknown",
        "runs folder": str(context.runs_dir),
        **({"teacher": f"{context.teacher.name} (sha256 {context.teacher_sha256})"} if context.teacher else {}),
        "started (UTC)": started_at,
        "wall time": f"{time.monotonic() - started:.0f} s",
        "python / torch": f"{sys.version.split()[0]} / {torch_version}",
    }


def _model_points(grid) -> set[str]:
    """Keys of the points whose model a later step loads: the lowest seed of each configuration."""
    lowest = {}
    for point in grid.points:
        configuration = json.dumps({k: v for k, v in point.varied.items() if k != "seed"}, sort_keys=True)
        seed = point.parameters.get("seed", 0)
        if configuration not in lowest or seed < lowest[configuration][0]:
            lowest[configuration] = (seed, point.key)
    return {key for _, key in lowest.values()}


def _sweep_callback(grid, context: StudyContext, *, archived: bool, progress: bool):
    """Per finished point: archive it (training steps), print a progress line, and once every point of its
    seed has finished, delete that seed's teacher outputs from the cache (``fakd.train.teacher_cache``)."""
    keep_model = _model_points(grid)
    left = Counter(int(point.parameters.get("seed", 0)) for point in grid.points)

    def on_outcome(outcome, finished: int, total: int) -> None:
        if archived and outcome.status in ("done", "reused"):
            context.keep(outcome.run_dir, keep_model=outcome.point.key in keep_model)
        if progress:
            print_outcome(outcome, finished, total)
        seed = int(outcome.point.parameters.get("seed", 0))
        left[seed] -= outcome.status in ("done", "reused")
        if left[seed] == 0 and not context.render_only:
            freed = prune_seeds(context.run_dir("teacher") / TEACHER_CACHE_FOLDER, [seed])
            context.cache_freed[seed] = context.cache_freed.get(seed, 0) + freed
            if progress and freed:
                print(f"study: every run of seed {seed} has finished: its teacher outputs deleted from the cache "
                      f"({freed / 1e9:.1f} GB freed)", flush=True)

    return on_outcome


def _run_step(step: Step, context: StudyContext, *, workers: int, progress: bool, scheduler: str | None = None,
              gpus_per_point: int = 0) -> ReportEntry:
    """Run (or reuse) one step; NotebookFailed / a failed sweep point ends up in the entry's status."""
    run_dir = context.run_dir(step.name)
    if step.name == TEACHER_STEP and context.teacher is not None:
        adopted = adopt_model_file(context.teacher, run_dir, scale=load_run_config(context.profile).scale,
                                   data_root=context.data_root, device=context.device)
        return ReportEntry(title=f"{step.title}: your model {context.teacher.name}",
                           status="reused" if adopted.reused else "done", note=f"adopted, {adopted.seconds:.0f} s")
    if step.name == EXPLORER_STEP and context.teacher is not None:
        unpaired = _explorer_unpaired_taps(context)
        if unpaired:
            return ReportEntry(title=step.title, status="skipped", note=unpaired)
    if step.shipped and context.profile in step.shipped:
        adopted = adopt_shipped_model(step.shipped[context.profile], run_dir, data_root=context.data_root,
                                      device=context.device)
        return ReportEntry(title=f"{step.title}: shipped model fakd:{step.shipped[context.profile]}",
                           status="reused" if adopted.reused else "done", note=f"adopted, {adopted.seconds:.0f} s")
    if step.grids is not None:
        return _sweep_step(step, context, run_dir=run_dir, workers=workers, progress=progress, scheduler=scheduler,
                           gpus_per_point=gpus_per_point)
    return _notebook_step(step, context, run_dir=run_dir, progress=progress)


def _sweep_step(step: Step, context: StudyContext, *, run_dir: Path, workers: int, progress: bool,
                scheduler: str | None, gpus_per_point: int) -> ReportEntry:
    """The profile's grid as a sweep (render only: its finished points); its results table into the report."""
    grid_path = grids_dir() / step.grids[context.profile]
    grid = load_grid(grid_path)
    grid = grid.with_fixed(_notebook_parameters(grid.notebook, context, step))
    planned = len(grid.points)
    if context.render_only:
        grid = finished_part(grid, run_dir)
        if not grid.points:
            return ReportEntry(title=step.title, status="pending", note="render only: no run has finished")
    report = run_sweep(grid, run_dir, workers=workers, scheduler=scheduler, gpus_per_point=gpus_per_point,
                       progress=progress,
                       on_outcome=_sweep_callback(grid, context, archived=step.archived, progress=progress))
    ran = sum(outcome.status == "done" for outcome in report.outcomes)
    note = (f"{len(grid.points)} runs of {grid.notebook.name} from grids/{grid_path.name} "
            f"({ran} executed now); {len(report.results)} result rows")
    if len(grid.points) < planned:
        note += f"; {planned - len(grid.points)} of the grid's {planned} runs not trained yet (render only)"
    status = f"{len(report.failures)} failed (see {report.failures_path})" if report.failures else "done"
    table = context.report_dir / TABLES_FOLDER / f"{step.name}_results.csv"  # the report stands alone
    table.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(report.results_path, table)
    return ReportEntry(title=step.title, page=table, status=status, note=note)


def _notebook_step(step: Step, context: StudyContext, *, run_dir: Path, progress: bool) -> ReportEntry:
    """One notebook, re-executed unless its finished run was made by today's library (a finished training
    run then continues at no cost); render only: a training notebook that has not finished is pending."""
    notebook = resolve_notebook(step.notebook)
    parameters = _notebook_parameters(notebook, context, step)
    html = context.report_dir / HTML_FOLDER / f"{notebook.stem}.html"
    if context.render_only and step.archived and finished_run(notebook, run_dir, parameters) is None:
        return ReportEntry(title=step.title, status="pending", note="render only: its training has not finished")
    try:
        run = run_notebook(notebook, run_dir, parameters, progress=progress, library=library_digest(),
                           kernel=KernelSettings(environment=kernel_environment()))
    except NotebookFailed as failure:
        render_notebook(failure.executed, html)
        return ReportEntry(title=step.title, page=html, status="FAILED", note=failure.error)
    rendering = time.monotonic()
    render_notebook(run.executed, html)
    if step.archived:
        context.keep(run_dir, keep_model=True)
    state = "reused" if run.reused else "done"
    return ReportEntry(title=step.title, page=html, status=state,
                       note=f"{run.seconds:.0f} s, rendered in {time.monotonic() - rendering:.0f} s")


def report_identity(profile: str, *, data_root: str | None = None) -> dict:
    """What a report of this study shows (``fakd.study.publish``): profile, training and test sets."""
    return study_identity(profile=profile, train_sets=load_run_config(profile).data.train_sets,
                          test_sets=default_test_sets(data_root))


def run_study(*, profile: str, report_dir: Path, runs_dir: Path, data_root: str | None = None,
              device: str | None = None, workers: int = 1, command: str = "fakd study",
              archive: Path | None = None, scheduler: str | None = None, gpus_per_point: int = 0,
              steps: tuple[Step, ...] = STUDY_STEPS, progress: bool = True, render_only: bool = False,
              on_step: Callable[[ReportEntry], None] | None = None, teacher: str | Path | None = None) -> StudyReport:
    """Run the study's steps in order (stopping at the first failed notebook), then write the report.

    The student grid runs on ``workers`` local Dask worker processes, or on the cluster at ``scheduler``
    (``fakd.study.sweep``). User mistakes (folders, device, data, a report folder of another study) are
    refused before any step runs. The report replaces the one in ``report_dir`` only when all succeeded.
    ``render_only`` trains nothing: the report shows the finished training runs (the sweep's unfinished
    points are named as not trained yet; an unfinished teacher stops the study). ``teacher``: a model file
    (fakd checkpoint, official RCAN/EDSR weights, BasicSR, .safetensors) adopted as the teacher instead of
    training the profile's; checked (readable, the profile's scale) before anything runs.
    """
    identity = _preflight(profile=profile, report_dir=report_dir, runs_dir=runs_dir, archive=archive,
                          data_root=data_root, device=device, local=scheduler is None)
    teacher_path, teacher_sha256 = _check_teacher_file(teacher, profile=profile)
    context = StudyContext(profile=profile, runs_dir=Path(runs_dir), report_dir=staging_folder(report_dir, identity=identity),
                           data_root=data_root, device=device, archive=None if archive is None else Path(archive),
                           render_only=render_only, teacher=teacher_path, teacher_sha256=teacher_sha256)
    if context.archive is not None:
        migrated = migrate_archive(context.archive, data_root=data_root) if context.archive.is_dir() else {}
        if progress and migrated:
            print(f"study: {len(migrated)} archived run(s) made with path identities migrated to content identities "
                  f"(fakd.study.migrate)", flush=True)
        restored = restore_runs(context.archive, context.runs_dir)
        if progress and restored:
            print(f"study: restored {len(restored)} finished run(s) from {context.archive}", flush=True)
    if progress and profile in MEASURED_PROFILES and not render_only:
        print("\n".join(_estimate_lines(steps, context, workers=workers)), flush=True)
    started, started_at = time.monotonic(), datetime.now(timezone.utc).isoformat(timespec="seconds")
    clock = StepClock(len(steps), enabled=progress)
    entries, figures, failure = _run_steps(steps, context, workers=workers, progress=progress, scheduler=scheduler,
                                           gpus_per_point=gpus_per_point, on_step=on_step, clock=clock)
    provenance = {**_provenance(context, command=command, started=started, started_at=started_at),
                  "time per step": clock.summary()}
    writing = time.monotonic()
    index, readme = _write_report(steps, entries, context, figures=figures, provenance=provenance,
                                  home=Path(report_dir))
    write_marker(context.report_dir, identity=identity, provenance=provenance)
    scrub_folder(context.report_dir, context.machine_paths)  # a committed report holds no path of this machine
    freed = sum(context.cache_freed.values())
    if failure is not None:
        return StudyReport(index=index, readme=readme, entries=entries, failure=failure, cache_freed=freed)
    publish(context.report_dir, Path(report_dir))
    clock.timed("report", writing)
    return StudyReport(index=Path(report_dir) / index.name, readme=Path(report_dir) / readme.name, entries=entries,
                       cache_freed=freed)


def _estimate_lines(steps, context: StudyContext, *, workers: int) -> list[str]:
    """The training still to do (finished runs skipped) and its expected wall time (fakd.study.estimate)."""
    config, teacher_iterations, students, total = load_run_config(context.profile), 0, [], 0
    for step in steps:
        if step.notebook == "02_train_teacher" and context.teacher is None:
            notebook = resolve_notebook(step.notebook)
            if finished_run(notebook, context.run_dir(step.name), _notebook_parameters(notebook, context, step)) is None:
                teacher_iterations = config.teacher.iterations
        elif step.grids is not None:
            grid = load_grid(grids_dir() / step.grids[context.profile])
            grid = grid.with_fixed(_notebook_parameters(grid.notebook, context, step))
            total += len(grid.points)
            students += [(point.parameters.get("method"), point.parameters.get("iterations") or config.student.iterations)
                         for point in grid.points
                         if finished_run(grid.notebook, context.run_dir(step.name) / RUNS_FOLDER / point.key,
                                         point.parameters) is None]
    estimate = estimate_training(teacher_iterations=teacher_iterations, students=students, total_runs=total,
                                 workers=workers)
    return estimate_lines(estimate, profile=context.profile, workers=workers)


def _explorer_unpaired_taps(context: StudyContext) -> str:
    """Why the explorer cannot show an adopted teacher of another depth ("" when it can): it pairs the
    student's taps with the teacher's of the same name, while distillation pairs each model's default taps
    (the relative-depth rule)."""
    from fakd.models import build_model
    from fakd.train.runs import load_best_model

    config = load_run_config(context.profile)
    student = build_model(config.student.model.preset, scale=config.scale, **config.student.model.overrides)
    teacher = load_best_model(context.run_dir(TEACHER_STEP), scale=config.scale)
    missing = [tap for tap in student.default_taps if tap not in teacher.tap_names()]
    if not missing:
        return ""
    return (f"the explorer pairs the student's taps ({', '.join(student.default_taps)}) with the teacher's of the "
            f"same name, and {context.teacher.name} has no {', '.join(missing)}; the students were distilled at its "
            f"taps {', '.join(teacher.default_taps)} (same relative depths)")


def _check_teacher_file(teacher, *, profile: str) -> tuple[Path | None, str]:
    """(path, sha256) of ``fakd study --teacher FILE`` after checking it loads as a model of the profile's scale."""
    if teacher is None:
        return None, ""
    path = resolve_checkpoint_path(teacher)
    read_model_payload(path, scale=load_run_config(profile).scale)  # one line on what it holds; FakdError if bad
    return path.resolve(), file_sha256(path)


def _preflight(*, profile, report_dir, runs_dir, archive, data_root, device, local: bool) -> dict:
    """Refuse user mistakes before anything runs; returns the study's identity for its report."""
    if profile not in PROFILES:
        raise FakdError(f"unknown profile {profile!r}; the profiles are {', '.join(PROFILES)}")
    if profile not in STUDY_GRIDS:  # a variant for sweeps beside a study (cpu-bf16: docs/precision.md)
        raise FakdError(f"profile {profile!r} has no study of its own (studies: {', '.join(STUDY_GRIDS)}); "
                        f"run its grid with fakd sweep")
    for folder, what in ((report_dir, "report folder"), (runs_dir, "runs folder"), (archive, "archive folder")):
        if folder is not None:
            check_output_folder(Path(folder), label=what)
    check_device(device, local=local)
    check_training_data(profile, data_root=data_root)
    identity = report_identity(profile, data_root=data_root)
    check_report_folder(Path(report_dir), identity=identity)
    return identity


def _run_steps(steps, context: StudyContext, *, workers, progress, scheduler, gpus_per_point, on_step,
               clock: StepClock):
    """(entries, copied figures, first failure or None) of running the steps in order; ``clock`` says
    when each starts and ends."""
    entries, figures, failure = [], [], None
    for step in steps:
        clock.start(step.name, step.title)
        entry = _run_step(step, context, workers=workers, progress=progress, scheduler=scheduler,
                          gpus_per_point=gpus_per_point)
        if step.figures and entry.status != "FAILED":  # compacting the PNGs takes seconds: part of the step's time
            figures += _copy_figures(context.run_dir(step.name), context.report_dir / FIGURES_FOLDER / step.name)
        clock.end(entry.status)
        entries.append(entry)
        if on_step is not None:
            on_step(entry)
        if entry.status == "FAILED":
            failure = f"step {step.name} failed: {entry.note} (see {entry.page})"
            break
        if entry.status not in ("done", "reused", "skipped"):
            failure = f"step {step.name}: {entry.status}"  # failed sweep points; later steps still run
    return entries, figures, failure


def _write_report(steps, entries, context: StudyContext, *, figures, provenance, home: Path) -> tuple[Path, Path]:
    """index.html and README.md in the context's (staging) report folder."""
    # Results of earlier runs may still lie in a step's folder: use them only if the step succeeded now.
    succeeded = {step.name for step, entry in zip(steps, entries) if entry.status in ("done", "reused")}
    ablation = context.run_dir("ablation")
    summary, lead = ((ablation / name).read_text() if "ablation" in succeeded and (ablation / name).is_file() else ""
                     for name in (SUMMARY_FILE, LEAD_FILE))
    headline = _headline(context) if "compare" in succeeded else None
    lead_figures = [figure for figure in figures if Path(figure).name == LEAD_FIGURE and "ablation" in succeeded]
    return write_report(context.report_dir, title=f"FAKD study ({context.profile} profile)", entries=entries,
                        headline=headline, summary=summary, figures=[f for f in figures if f not in lead_figures],
                        provenance=provenance, home=home, lead=lead, lead_figures=lead_figures)
