"""A student that starts from its teacher's weights (``student.init``): every copied tensor, the rules, refusals."""

import copy
import subprocess
import sys

import pytest
import torch
import yaml
from torch import nn

from fakd.errors import FakdError
from fakd.models import build_model
from fakd.models.inherit import inherit_teacher_weights, inherited_blocks
from fakd.models.registry import build_model_from_config
from fakd.train.config import load_run_config
from fakd.train.trainer import train_run
from fakd.zoo.checkpoint import save_checkpoint


def _rcan(blocks: int, *, feats: int = 32, groups: int = 3, scale: int = 2) -> nn.Module:
    return build_model_from_config({"arch": "rcan", "scale": scale, "n_resgroups": groups, "n_resblocks": blocks,
                                    "n_feats": feats})


def _teacher_with_blocks(teacher: nn.Module, keep: list[int]) -> nn.Module:
    """The reference: the teacher itself with only blocks ``keep`` of every group (then the group's last conv)."""
    reference = copy.deepcopy(teacher)
    for group in reference.body:
        blocks = list(group.body)
        group.body = nn.Sequential(*(blocks[i] for i in keep), blocks[-1])
    return reference


@pytest.mark.parametrize(("student", "teacher", "rule", "expected"), [
    (2, 6, "first", [0, 1]), (2, 6, "spaced", [0, 5]), (3, 6, "spaced", [0, 3, 5]), (1, 6, "spaced", [0]),
    (6, 6, "spaced", [0, 1, 2, 3, 4, 5]), (4, 20, "spaced", [0, 6, 13, 19])])
def test_block_rules(student, teacher, rule, expected):
    assert inherited_blocks(student_blocks=student, teacher_blocks=teacher, rule=rule) == expected


@pytest.mark.parametrize(("rule", "keep"), [("first", [0, 1]), ("spaced", [0, 4])])
def test_every_rcan_tensor_comes_from_the_stated_teacher_tensor(rule, keep):
    torch.manual_seed(0)
    teacher, student = _rcan(5), _rcan(2)
    mapping = inherit_teacher_weights(student=student, teacher=teacher, rule=rule)
    teacher_state = teacher.state_dict()
    assert set(mapping) == set(student.state_dict())
    for key, tensor in student.state_dict().items():
        parts = key.split(".")
        if parts[0] == "body":  # body.<group>.body.<block, or 2 = the group's last conv>.…
            parts[3] = "5" if parts[3] == "2" else str(keep[int(parts[3])])
        assert torch.equal(tensor, teacher_state[".".join(parts)]), key
    # the student computes the teacher with the other blocks left out
    image = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(student(image), _teacher_with_blocks(teacher, keep)(image), rtol=0, atol=1e-6)


def test_edsr_student_takes_the_first_blocks():
    torch.manual_seed(0)
    config = {"arch": "edsr", "scale": 2, "n_feats": 8, "res_scale": 1.0}
    teacher = build_model_from_config({**config, "n_resblocks": 6})
    student = build_model_from_config({**config, "n_resblocks": 2})
    inherit_teacher_weights(student=student, teacher=teacher, rule="first")
    reference = copy.deepcopy(teacher)
    reference.body = nn.Sequential(*list(teacher.body)[:2])
    image = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(student(image), reference(image), rtol=0, atol=1e-6)


def test_the_copied_student_trains():
    torch.manual_seed(0)
    teacher, student = _rcan(4), _rcan(2)
    inherit_teacher_weights(student=student, teacher=teacher)
    student(torch.rand(2, 3, 8, 8)).abs().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())  # copies, not shared tensors


@pytest.mark.parametrize(("student", "message"), [
    (lambda: _rcan(2, feats=16), "width is 16, the teacher's 32"),
    (lambda: _rcan(2, scale=4), "scale is 4, the teacher's 2"),
    (lambda: _rcan(2, groups=2), "n_resgroups is 2, the teacher's 3"),
    (lambda: _rcan(7), "more blocks (7) than the teacher (5)"),
    (lambda: build_model_from_config({"arch": "edsr", "scale": 2, "n_resblocks": 2, "n_feats": 32, "res_scale": 1.0}),
     "architecture is edsr, the teacher's rcan")])
def test_a_student_that_is_not_a_shallower_copy_is_refused(student, message):
    teacher = _rcan(5)
    model = student()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(FakdError, match=message.replace("(", r"\(").replace(")", r"\)")):
        inherit_teacher_weights(student=model, teacher=teacher)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())  # untouched


def test_init_is_checked_in_the_config():
    assert load_run_config("smoke").student.init == "scratch"
    assert load_run_config("smoke", ["student.init=teacher"]).student.init == "teacher"
    with pytest.raises(FakdError, match="student.init must be one of scratch, teacher, teacher-spaced"):
        load_run_config("smoke", ["student.init=teachers"])
    with pytest.raises(FakdError, match="teacher.init must be scratch"):
        load_run_config("smoke", ["teacher.init=teacher"])


@pytest.fixture(scope="module")
def smoke_teacher(tmp_path_factory):
    """A smoke teacher checkpoint (random weights: what is copied, not what it scores, is tested)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    teacher = build_model("rcan-smoke-teacher", scale=4)
    return save_checkpoint({"model_config": dict(teacher.config), "model_state": teacher.state_dict(), "iteration": 0,
                            "model_name": "smoke teacher"}, path)


def test_a_run_from_the_teacher_starts_from_its_weights_and_records_it(smoke_teacher, tmp_path):
    from fakd.zoo.checkpoint import load_checkpoint

    config = load_run_config("smoke", ["student.init=teacher", "student.iterations=2", "checkpoint_every=1"])
    seen = {}
    original = torch.optim.Adam.step

    def first_weights(self, *args, **kwargs):  # the weights the run starts from, before its first update
        seen.setdefault("state", [p.detach().clone() for p in self.param_groups[0]["params"]])
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = first_weights
    try:
        summary = train_run(config, role="student", out=tmp_path / "run", teacher_checkpoint=smoke_teacher,
                            progress=False)
    finally:
        torch.optim.Adam.step = original
    teacher_state = load_checkpoint(smoke_teacher)["model_state"]
    student = build_model("rcan-smoke-student", scale=4)
    names = [name for name, _ in student.named_parameters()]
    assert torch.equal(seen["state"][names.index("head.weight")], teacher_state["head.weight"])
    assert torch.equal(seen["state"][names.index("body.4.body.1.weight")], teacher_state["body.4.body.2.weight"])
    assert summary["init"] == "teacher"
    job = yaml.safe_load((tmp_path / "run" / "job.json").read_text())
    assert job["init"] == "teacher" and len(job["teacher_sha256"]) == 64


def test_a_run_from_the_teacher_without_a_teacher_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fakd", "train", "--role", "student", "--config", "smoke",
                             "--set", "student.init=teacher", "--out", str(tmp_path / "run"), "--no-progress"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("student.init=teacher needs a teacher checkpoint (--teacher CKPT)")
    assert not (tmp_path / "run").exists()


def test_a_run_folder_made_before_init_existed_still_resumes(tmp_path):
    config = load_run_config("smoke", ["student.iterations=2"])
    train_run(config, role="student", out=tmp_path / "run", progress=False)
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    del stored["student"]["init"], stored["teacher"]["init"]
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    summary = train_run(config, role="student", out=tmp_path / "run", resume=True, progress=False)
    assert summary["final_iteration"] == 2
    stored["student"]["init"] = "teacher"  # a stored value that differs is still a different run
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    with pytest.raises(FakdError, match="student.init: 'teacher' → 'scratch'"):
        train_run(config, role="student", out=tmp_path / "run", resume=True, progress=False)
