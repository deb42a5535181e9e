"""fakd study --teacher FILE: a downloaded teacher (official layout here) adopted as the teacher step's run."""

import json

import pytest
import torch

from fakd.errors import FakdError
from fakd.models import build_model
from fakd.study.adopt import ADOPTED_FILE, adopt_model_file
from fakd.study.pipeline import StudyContext, _check_teacher_file
from fakd.zoo.checkpoint import load_checkpoint, load_model_from_checkpoint
from fakd.zoo.official import official_state_dict
from fakd.zoo.pretrained import file_sha256


@pytest.fixture()
def official_teacher(tmp_path):
    torch.manual_seed(0)
    model = build_model("rcan-smoke-teacher", scale=4, n_resgroups=4).eval()
    path = tmp_path / "RCAN_BIX4.pt"
    torch.save(official_state_dict(model), path)
    return path, model


def test_adopted_file_is_a_finished_teacher_run(tmp_path, official_teacher):
    path, model = official_teacher
    run_dir = tmp_path / "runs" / "teacher"
    adopted = adopt_model_file(path, run_dir, scale=4)
    assert not adopted.reused
    payload = load_checkpoint(run_dir / "train" / "checkpoints" / "best.pt")
    assert payload["source"]["sha256"] == file_sha256(path) and payload["model_config"]["n_resgroups"] == 4
    record = json.loads((run_dir / ADOPTED_FILE).read_text())
    assert record["model"] == "RCAN_BIX4.pt" and record["sha256"] == file_sha256(path)
    assert (run_dir / "results.json").is_file()
    lr = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        adopted_model = load_model_from_checkpoint(run_dir / "train" / "checkpoints" / "best.pt")
        assert (adopted_model(lr) - model(lr)).abs().max().item() < 1e-5
    assert adopt_model_file(path, run_dir, scale=4).reused


def test_teacher_of_another_scale_is_refused_before_the_study(official_teacher):
    path, _ = official_teacher
    with pytest.raises(FakdError, match="×4 model, but ×2 was asked for"):
        _check_teacher_file(path, profile="cpu-x2")
    resolved, digest = _check_teacher_file(path, profile="smoke")
    assert resolved == path.resolve() and digest == file_sha256(path)


def test_adopted_teacher_gets_its_own_run_folder(tmp_path):
    """Students distilled from one teacher are never reused for another: the folder is named by the sha256."""
    context = StudyContext(profile="smoke", runs_dir=tmp_path, report_dir=tmp_path / "report",
                           teacher=tmp_path / "t.pt", teacher_sha256="ab" * 32)
    assert context.run_dir("teacher") == tmp_path / f"teacher-{'ab' * 6}"
    assert context.run_dir("students") == tmp_path / "students"
