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
