"""A run's distill settings: command-line choices as overrides, and the objective built from them."""

from fakd.train.config import load_run_config
from fakd.train.distillation import distill_overrides


def test_distill_overrides_map_the_command_line():
    overrides = distill_overrides(["fakd", "kd", "fitnet"], weights=[3, 0.5], student_taps=["body.1"], p=2)
    config = load_run_config("smoke", overrides)
    assert config.distill.methods == ["fakd", "kd", "fitnet"]
    assert config.distill.weights == {"fakd": 3.0, "fitnet": 0.5}
    assert config.distill.student_taps == ["body.1"] and config.distill.options == {"fakd": {"p": 2}}
    assert load_run_config("smoke", distill_overrides(["at", "fsp"], weights=[7])).distill.weights == \
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
        config = load_run_config("smoke", [*distill_overrides([method]), *narrow])
        with pytest.raises(FakdError, match="needs equal (channel counts|shapes) for student and teacher"):
            train_run(config, role="distill", out=tmp_path / method, teacher_checkpoint=checkpoint, progress=False)
        assert not (tmp_path / method).exists()
    torch.manual_seed(0)  # FitNet's adapter and AT compare them
    for method in ("fitnet", "at"):
        config = load_run_config("smoke", [*distill_overrides([method]), *narrow, "student.iterations=1"])
        assert train_run(config, role="distill", out=tmp_path / method, teacher_checkpoint=checkpoint,
                         progress=False)["final_iteration"] == 1
