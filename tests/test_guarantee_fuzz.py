"""Guarantee, fuzzed: over each command's argument space (hypothesis draws argument lists from each
command's options with good, bad and absurd values, plus junk), ``fakd`` exits 0 or 2, never with a
traceback, and leaves nothing half-written: no temporary file anywhere, and no file of the user's modified or deleted
(fakd may add its own files, e.g. a run beside the user's with --overwrite; they are removed between examples).

In-process (``fakd.cli.main``) so hundreds of argument lists run in seconds: an exception escaping
``main`` is exactly what would be a traceback on the command line.
"""

import shutil
import tempfile
from pathlib import Path

import pytest
from guarantees_support import random_image, snapshot, tiny_checkpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakd.cli import main

JUNK = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
NUMBERS = st.sampled_from(["0", "1", "2", "3", "4", "-1", "8", "1e9", "99999999999999999999", "nan", "inf",
                           "x", "", "2.5"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A user's files: images (one broken), a checkpoint, a finished run; never to be changed."""
    root = tmp_path_factory.mktemp("world")
    random_image(root / "photos" / "a.png", height=24, width=20)
    random_image(root / "photos" / "b.jpg", height=16, width=16, seed=1)
    (root / "broken").mkdir()
    (root / "broken" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    tiny_checkpoint(root / "tiny2.pt", scale=2)
    tiny_checkpoint(root / "tiny4.pt", scale=4)
    (root / "a_file.txt").write_text("mine")
    assert main(["train", "--role", "student", "--config", "smoke", "--no-progress", "--set",
                 "student.iterations=1", "--out", str(root / "run")]) == 0
    return root


def _paths(world: Path, out: Path):
    return st.sampled_from([str(world / "photos"), str(world / "photos" / "a.png"), str(world / "broken"),
                            str(world / "a_file.txt"), str(world / "nope"), str(world / "run"),
                            str(out / "new"), str(out), str(world / "photos" / "b.jpg")])


def _options(pairs) -> st.SearchStrategy[list[str]]:
    """A list of option fragments (each a list of tokens), shuffled and flattened, plus maybe junk."""
    fragment = st.one_of(*[st.tuples(st.just(option), values).map(list) if values is not None
                           else st.just([option]) for option, values in pairs])
    return st.tuples(st.lists(fragment, max_size=6), st.one_of(st.just([]), st.just([]), st.just([]), st.lists(JUNK, min_size=1, max_size=1))).map(
        lambda drawn: [token for part in drawn[0] for token in part] + drawn[1])


def _check(argv: list[str], world: Path, before: dict, out: Path, capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse: usage errors exit 2, --help exits 0
        code = stop.code
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, err)
    if code == 2:  # one line (a newline inside an echoed argument aside)
        assert "Traceback" not in err and len([line for line in err.strip().split("\n") if line]) <= 1 + sum(
            token.count("\n") for token in argv), (argv, err)
    after = snapshot(world)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, f"{argv} modified or deleted the user's {changed}"
    _remove_additions(world, keep=set(before))  # fakd's own new files (e.g. a run beside the user's): next example
    assert not [*out.rglob("*.tmp"), *world.rglob("*.tmp")], f"{argv} left a temporary file"


def _remove_additions(world: Path, *, keep: set[str]) -> None:
    for path in sorted(world.rglob("*"), key=lambda item: len(item.parts), reverse=True):
        name = str(path.relative_to(world))
        if path.is_file() and name not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()) and not any(item.startswith(name + "/") for item in keep):
            path.rmdir()


def _fuzz(command_options, world, capsys, *, examples: int):
    before = snapshot(world)

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(data=st.data())
    def run(data):
        out = Path(tempfile.mkdtemp(prefix="fakd-fuzz-"))
        try:
            argv = data.draw(command_options(out))
            _check(argv, world, before, out, capsys)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    run()


def test_fuzz_upscale(world, capsys):
    def options(out):
        paths = _paths(world, out)
        return st.tuples(st.lists(paths, min_size=0, max_size=2), _options([
            ("--checkpoint", st.sampled_from([str(world / "tiny2.pt"), str(world / "a_file.txt"), "fakd:nope"])),
            ("--output", paths), ("--tile", NUMBERS), ("--overlap", NUMBERS), ("--overwrite", None),
            ("--device", st.sampled_from(["cpu", "bogus", "cuda:9"])), ("--threads", NUMBERS)])).map(
            lambda drawn: ["upscale", *drawn[0], "--checkpoint", str(world / "tiny2.pt"), "--output",
                           str(out / "up"), *drawn[1]])
    _fuzz(options, world, capsys, examples=80)


def test_fuzz_degrade(world, capsys):
    def options(out):
        paths = _paths(world, out)
        return _options([("--scale", NUMBERS), ("--input", paths), ("--output", paths), ("--overwrite", None)]).map(
            lambda tokens: ["degrade", "--scale", "2", "--input", str(world / "photos"), "--output",
                            str(out / "lr"), *tokens])
    _fuzz(options, world, capsys, examples=80)


def test_fuzz_evaluate_profile_export(world, capsys):
    def options(out):
        paths = _paths(world, out)
        checkpoints = st.sampled_from([str(world / "tiny2.pt"), str(world / "tiny4.pt"), str(world / "a_file.txt"),
                                       "fakd:nope", "rcan-smoke-student"])
        evaluate = _options([("--model", st.sampled_from(["bicubic", "nearest"])), ("--checkpoint", checkpoints),
                             ("--dataset", st.sampled_from(["skimage-test", "Set5", str(world / "photos"),
                                                            str(world / "broken")])),
                             ("--scale", NUMBERS), ("--json", paths), ("--lr-source", st.sampled_from(["premade", "x"])),
                             ("--data-root", paths)]).map(
            lambda tokens: ["evaluate", "--model", "bicubic", "--dataset", str(world / "photos"), "--scale", "2",
                            *tokens])
        profile = _options([("--model", checkpoints), ("--scale", NUMBERS), ("--json", paths),
                            ("--latency-size", NUMBERS), ("--warmup", NUMBERS), ("--repeats", NUMBERS),
                            ("--device", st.sampled_from(["cpu", "bogus"]))]).map(
            lambda tokens: ["profile", "--model", str(world / "tiny2.pt"), "--scale", "2", "--no-latency", *tokens])
        export = st.tuples(st.lists(paths, max_size=1), _options([
            ("--name", st.sampled_from(["ok-name", "../evil", "", "UPPER"])), ("--out-dir", paths),
            ("--list", None), ("--data-root", paths)])).map(
            lambda drawn: ["export", *drawn[0], "--out-dir", str(out / "shipped"), *drawn[1]])
        return st.one_of(evaluate, profile, export)
    _fuzz(options, world, capsys, examples=80)


@pytest.mark.slow
def test_fuzz_train_and_distill(world, capsys):
    def options(out):
        paths = _paths(world, out)
        sets = st.sampled_from(["seed=1", "seed=99999999999999999999", "student.min_lr=-1", "data.batch_size=0",
                                "data.batch_size=1000000000", "student.model.overrides.n_feats=40000", "nope=1",
                                "student.lr=inf", "distill.weights.fakd=-1", "student.iterations=2", "scale=3",
                                "threads=0", "data.patch_size=99999"])
        common = [("--set", sets), ("--resume", None), ("--overwrite", None), ("--out", paths),
                  ("--device", st.sampled_from(["cpu", "bogus"])), ("--threads", NUMBERS)]
        train = _options([("--role", st.sampled_from(["teacher", "student", "ghost"])), *common]).map(
            lambda tokens: ["train", "--role", "student", "--config", "smoke", "--no-progress", "--set",
                            "student.iterations=1", "--out", str(out / "run"), *tokens])
        distill = _options([("--method", st.sampled_from(["fakd", "kd", "at", "magic"])), ("--weight", NUMBERS),
                            ("--teacher", st.sampled_from([str(world / "tiny4.pt"), str(world / "a_file.txt")])),
                            ("--p", NUMBERS), *common]).map(
            lambda tokens: ["distill", "--teacher", str(world / "run" / "checkpoints" / "best.pt"), "--config",
                            "smoke", "--no-progress", "--set", "student.iterations=1", "--out", str(out / "run"),
                            *tokens])
        return st.one_of(train, distill)
    _fuzz(options, world, capsys, examples=40)
