"""The training and model commands end to end on the smoke profile, and every error path:
exit code 2 with one line on stderr."""

import json

import numpy as np
import pytest

from fakd.cli import main
from fakd.data.image_io import read_image, write_image
from fakd.device import cpu_bf16_instructions
from fakd.models import build_model
from fakd.zoo.checkpoint import load_checkpoint, save_checkpoint

SMOKE = ["--config", "smoke", "--no-progress"]


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "teacher"
    assert main(["train", "--role", "teacher", *SMOKE, "--set", "teacher.iterations=4", "--out", str(out)]) == 0
    return out


def _one_error_line(capsys, code):
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_train_teacher_writes_a_run(teacher_run, capsys):
    summary = json.loads((teacher_run / "summary.json").read_text())
    assert summary["role"] == "teacher" and summary["model"] == "rcan-smoke-teacher"
    assert summary["final_iteration"] == 4 and summary["status"] == "finished"
    assert load_checkpoint(teacher_run / "checkpoints" / "best.pt")["model_config"]["arch"] == "rcan"


def test_train_student_and_resume_of_a_finished_run(tmp_path, capsys):
    args = ["train", "--role", "student", *SMOKE, "--set", "student.iterations=2", "--out", str(tmp_path / "s")]
    assert main(args) == 0
    assert "best validation PSNR" in capsys.readouterr().out
    assert main([*args, "--resume"]) == 0  # nothing left to do: it just reports again
    assert len((tmp_path / "s" / "metrics.jsonl").read_text().splitlines()) == 2


def test_distill_with_combined_methods(teacher_run, tmp_path):
    out = tmp_path / "distilled"
    code = main(["distill", "--teacher", str(teacher_run / "checkpoints" / "best.pt"), "--method", "fakd",
                 "--method", "at", "--weight", "5", "--weight", "100", "--taps", "body.1", "body_tail",
                 *SMOKE, "--set", "student.iterations=2", "--out", str(out)])
    assert code == 0
    config = (out / "config.yaml").read_text()
    assert "fakd: 5.0" in config and "at: 100.0" in config
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"l1_hr", "l1_teacher", "fakd", "at", "val_psnr"} <= set(record)
    # each term's share of the weighted total, in official units (feature weights vs L1 on 0-255)
    shares = {name: value for name, value in record.items() if name.startswith("share_")}
    assert set(shares) == {"share_l1_hr", "share_l1_teacher", "share_fakd", "share_at"}
    assert sum(shares.values()) == pytest.approx(1.0)
    official = {"l1_hr": 0.5 * 255 * record["l1_hr"], "l1_teacher": 0.5 * 255 * record["l1_teacher"],
                "fakd": 5.0 * record["fakd"], "at": 100.0 * record["at"]}
    for name, value in official.items():
        assert shares[f"share_{name}"] == pytest.approx(value / sum(official.values()), rel=1e-6)
    assert load_checkpoint(out / "checkpoints" / "best.pt")["model_name"] == "rcan-smoke-student fakd+at s0"


def test_profile_paper_pair(tmp_path, capsys):
    out = tmp_path / "cost.json"
    code = main(["profile", "--model", "rcan-teacher", "--model", "rcan-student", "--scale", "4",
                 "--no-latency", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    teacher, student = result["rows"]
    assert teacher["params"] == pytest.approx(15.59e6, rel=0.01)
    assert student["params"] == pytest.approx(5.17e6, rel=0.01)
    assert result["ratios"][0]["multi_adds"] == pytest.approx(teacher["multi_adds"] / student["multi_adds"])
    assert "ratio rcan-teacher / rcan-student" in capsys.readouterr().out


def test_profile_latency_of_a_checkpoint(teacher_run, capsys):
    code = main(["profile", "--model", str(teacher_run / "checkpoints" / "best.pt"), "--scale", "4",
                 "--latency-size", "8", "--repeats", "2", "--warmup", "1"])
    assert code == 0
    assert "rcan-smoke-teacher teacher s0" in capsys.readouterr().out


def test_upscale_tiles_and_writes_pngs(teacher_run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "photo.png", image)
    code = main(["upscale", "--checkpoint", str(teacher_run / "checkpoints" / "best.pt"),
                 str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--tile", "16", "--overlap", "8"])
    assert code == 0
    assert read_image(tmp_path / "out" / "photo.png").shape == (160, 208, 3)


@pytest.mark.parametrize("case", [
    "garbage teacher", "missing teacher", "unknown method", "unknown tap", "unknown preset",
    "unknown profile key", "different run", "wrong-scale checkpoint", "wrong-architecture checkpoint",
    "unknown profile model", "upscale garbage checkpoint", "weights count",
])
def test_errors_exit_2_with_one_line(case, teacher_run, tmp_path, capsys):
    teacher = str(teacher_run / "checkpoints" / "best.pt")
    out = str(tmp_path / "run")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    distill = ["distill", *SMOKE, "--set", "student.iterations=1", "--out", out]
    commands = {
        "garbage teacher": [*distill, "--teacher", str(garbage)],
        "missing teacher": [*distill, "--teacher", str(tmp_path / "nope.pt")],
        "unknown method": [*distill, "--teacher", teacher, "--method", "magic"],
        "unknown tap": [*distill, "--teacher", teacher, "--taps", "body.99"],
        "unknown preset": ["train", "--role", "student", *SMOKE, "--set", "student.model=rcan-huge", "--out", out],
        "unknown profile key": ["train", "--role", "student", *SMOKE, "--set", "student.epochs=3", "--out", out],
        "different run": ["train", "--role", "teacher", *SMOKE, "--set", "seed=9", "--out", str(teacher_run),
                          "--resume"],
        "wrong-scale checkpoint": ["profile", "--model", teacher, "--scale", "2", "--no-latency"],
        "wrong-architecture checkpoint": [*distill, "--teacher", str(tmp_path / "edsr.pt")],
        "unknown profile model": ["profile", "--model", "rcan-huge", "--scale", "4"],
        "upscale garbage checkpoint": ["upscale", "--checkpoint", str(garbage), teacher, "--output", out],
        "weights count": [*distill, "--teacher", teacher, "--method", "fakd", "--method", "at",
                          "--weight", "1", "--weight", "2", "--weight", "3"],
    }
    if case == "wrong-architecture checkpoint":  # an RCAN config holding EDSR weights
        payload = load_checkpoint(teacher)
        payload["model_state"] = build_model("edsr-baseline", scale=4, n_resblocks=1, n_feats=8).state_dict()
        save_checkpoint(payload, tmp_path / "edsr.pt")
    line = _one_error_line(capsys, main(commands[case]))
    assert line.startswith("fakd ") and "error:" in line
    expected = {
        "garbage teacher": "unreadable", "missing teacher": "not found", "unknown method": "magic",
        "unknown tap": "body.99", "unknown preset": "rcan-huge", "unknown profile key": "student.epochs",
        "different run": "different run", "wrong-scale checkpoint": "×4 model, but ×2",
        "wrong-architecture checkpoint": "do not fit", "unknown profile model": "rcan-huge",
        "upscale garbage checkpoint": "unreadable", "weights count": "3 --weight values",
    }[case]
    assert expected in line


def test_amp_on_a_cpu_run_says_what_it_runs_in(tmp_path, capsys):
    code = main(["train", "--role", "student", *SMOKE, "--device", "cpu", "--amp", "--set", "student.iterations=2",
                 "--out", str(tmp_path / "amp")])
    assert code == 0, capsys.readouterr().err
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("amp: ")]
    assert lines in (["amp: bfloat16 autocast on cpu (" + ", ".join(cpu_bf16_instructions()) + ")"],
                     ["amp: this CPU has no bfloat16 instructions (amx_bf16 or avx512_bf16); training in float32"])
    assert json.loads((tmp_path / "amp" / "summary.json").read_text())["status"] == "finished"


def test_evaluate_checkpoints_by_name(teacher_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    best = str(teacher_run / "checkpoints" / "best.pt")
    code = main(["evaluate", "--checkpoint", best, "--checkpoint", str(teacher_run / "checkpoints" / "last.pt"),
                 "--model", "bicubic", "--dataset", "skimage-test", "--scale", "4", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    models = {row["model"] for row in json.loads(out.read_text())["rows"]}
    assert models == {"bicubic", "rcan-smoke-teacher teacher s0 [teacher/best]",
                      "rcan-smoke-teacher teacher s0 [teacher/last]"}
    line = _one_error_line(capsys, main(["evaluate", "--checkpoint", best, "--dataset", "skimage-test",
                                         "--scale", "2"]))
    assert "×4 model, but ×2" in line
