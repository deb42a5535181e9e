"""A run's distill settings: command-line choices as overrides, and the objective built from them."""

from fakd.train.config import load_run_config
from fakd.train.distillation import distill_updates
from fakd.train.runs import run_config


def test_distill_updates_map_the_command_line():
    updates = distill_updates(["fakd", "kd", "fitnet"], weights=[3, 0.5], student_taps=["body.1"], p=2)
    assert updates == {"distill.methods": ["fakd", "kd", "fitnet"], "distill.weights.fakd": 3.0,
                       "distill.weights.fitnet": 0.5, "distill.student_taps": ["body.1"], "distill.options.fakd.p": 2}
    config = load_run_config("smoke", updates=updates)
    assert config.distill.methods == ["fakd", "kd", "fitnet"]
    assert config.distill.weights == {"fakd": 3.0, "fitnet": 0.5}
    assert config.distill.student_taps == ["body.1"] and config.distill.options == {"fakd": {"p": 2}}
    assert load_run_config("smoke", updates=distill_updates(["at", "fsp"], weights=[7])).distill.weights == \
        {"at": 7.0, "fsp": 7.0}


def test_a_method_that_cannot_compare_the_widths_is_refused_before_the_run_folder_exists(tmp_path):
    import pytest
    import torch

    from fakd.errors import FakdError
    from fakd.models import build_model
    from fakd.train.trainer import train_run
    from fakd.zoo.checkpoint import save_checkpoint

    teacher = build_model("rcan-smoke-teacher", scale=4)  # 16 channels
    checkpoint = save_checkpoint({"model_config": dict(teacher.config), "model_state": teacher.state_dict(),
                                  "iteration": 0, "model_name": "smoke teacher"}, tmp_path / "teacher.pt")
    narrow = ["student.model.overrides.n_feats=8", "student.model.overrides.reduction=4"]
    for method in ("fsp", "ca"):
        config = load_run_config("smoke", narrow, updates=distill_updates([method]))
        with pytest.raises(FakdError, match="needs equal (channel counts|shapes) for student and teacher"):
            train_run(config, role="distill", out=tmp_path / method, teacher_checkpoint=checkpoint, progress=False)
        assert not (tmp_path / method).exists()
    torch.manual_seed(0)  # FitNet's adapter and AT compare them
    for method in ("fitnet", "at"):
        config = load_run_config("smoke", [*narrow, "student.iterations=1"], updates=distill_updates([method]))
        assert train_run(config, role="distill", out=tmp_path / method, teacher_checkpoint=checkpoint,
                         progress=False)["final_iteration"] == 1


def test_typed_updates_give_the_config_the_same_words_typed_give():
    """A notebook's parameters reach the config typed; the result is what a user's --set text gives, so runs
    made before (through text) resume and compare equal."""
    typed = run_config(profile="cpu", seed=2, method="fakd", weight=100.0, taps=["body.2", "long_skip"], p=2,
                       alpha=0.9091, student_iterations=12000, init="teacher", student_model="rcan-cpu-student-narrow")
    text = load_run_config("cpu", ["seed=2", "distill.methods=[fakd]", "distill.weights.fakd=100.0",
                                   "distill.student_taps=[body.2,long_skip]", "distill.options.fakd.p=2",
                                   "distill.alpha=0.9091", "student.iterations=12000", "student.init=teacher",
                                   "student.model=rcan-cpu-student-narrow"])
    assert typed == text and typed.distill.weights == {"fakd": 100.0}  # the profile's fakd weight replaced
    assert run_config(profile="cpu", seed=0, method="at", weight=1000.0).distill.weights == {"fakd": 1.0, "at": 1000.0}


def test_a_negative_weight_is_refused_once_by_the_config_checks():
    import pytest

    from fakd.errors import FakdError

    with pytest.raises(FakdError, match=r"^distill.weights.fakd must be a finite number ≥ 0, got -1.0$"):
        load_run_config("smoke", updates=distill_updates(["fakd"], weights=[-1.0]))
