"""Run config: profiles, files, --set overrides with type checks, errors naming the bad key."""

import json

import pytest
import yaml

from fakd.errors import FakdError
from fakd.train.config import PROFILES, config_from_dict, dump_config, load_run_config


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_loads_and_builds_its_models(profile):
    from fakd.models import PRESETS

    config = load_run_config(profile)
    assert config.profile == profile
    assert config.teacher.model.preset in PRESETS and config.student.model.preset in PRESETS


def test_paper_profile_has_the_papers_settings():
    config = load_run_config("paper")
    assert (config.teacher.model.preset, config.student.model.preset) == ("rcan-teacher", "rcan-student")
    assert (config.data.patch_size, config.data.batch_size, config.student.lr) == (48, 16, 1e-4)
    assert config.student.milestones == [0.5] and config.student.gamma == 0.5
    assert config.student.betas == [0.9, 0.999]
    assert config.distill.weights == {"fakd": 1.0} and config.distill.alpha == 0.5  # official units, as run


def test_default_is_the_cpu_profile():
    assert load_run_config(None).to_dict() == load_run_config("cpu").to_dict()


def test_overrides_are_typed():
    config = load_run_config("smoke", [
        "student.iterations=5", "student.lr=1e-3", "seed=3", "data.augment=false",
        "distill.methods=[fakd,kd]", "distill.options.fakd.p=2", "distill.weights.fakd=3",
        "student.model=rcan-cpu-student", "student.model.overrides.n_resblocks=3",
        "distill.student_taps=body.2,body_tail",
    ])
    assert config.student.iterations == 5 and isinstance(config.student.iterations, int)
    assert config.student.lr == 1e-3 and isinstance(config.student.lr, float)
    assert config.seed == 3 and config.data.augment is False
    assert config.distill.methods == ["fakd", "kd"]
    assert config.distill.options == {"fakd": {"p": 2}}
    assert config.distill.weights == {"fakd": 3.0}
    assert config.student.model.preset == "rcan-cpu-student"
    assert config.student.model.overrides == {"n_resblocks": 3}
    assert config.distill.student_taps == ["body.2", "body_tail"]


@pytest.mark.parametrize("item, message", [
    ("student.iters=3", "student.iters"),
    ("nope=1", "nope"),
    ("student.iterations=abc", "student.iterations"),
    ("student.iterations=2.5", "student.iterations"),
    ("student.lr=fast", "student.lr"),
    ("data.augment=3", "data.augment"),
    ("student.iterations=0", "student.iterations"),
    ("student.schedule=linear", "student.schedule"),
    ("distill.weights.fakd=-1", "distill.weights.fakd"),
    ("seed", "key=value"),
    ("student=3", "section"),
])
def test_bad_overrides_name_the_key(item, message):
    with pytest.raises(FakdError, match=message.replace(".", r"\.")):
        load_run_config("smoke", [item])


def test_file_config_starts_from_its_profile(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("profile: smoke\nstudent:\n  iterations: 3\n  lr: 1.0e-3\n")
    config = load_run_config(path)
    smoke = load_run_config("smoke")
    assert config.student.iterations == 3 and config.student.lr == 1e-3
    assert config.teacher == smoke.teacher and config.data == smoke.data


def test_json_config_and_round_trip(tmp_path):
    original = load_run_config("smoke", ["seed=7", "distill.methods=[at]"])
    for name in ("config.json", "config.yaml"):
        dump_config(original, tmp_path / name)
        assert load_run_config(tmp_path / name).to_dict() == original.to_dict()
    assert config_from_dict(json.loads((tmp_path / "config.json").read_text())) == original


def test_bad_files_are_fakd_errors(tmp_path):
    with pytest.raises(FakdError, match="neither a profile"):
        load_run_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("student: [unclosed\n")
    with pytest.raises(FakdError, match="not valid YAML"):
        load_run_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(FakdError, match="mapping"):
        load_run_config(listing)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump({"student": {"epochs": 3}}))
    with pytest.raises(FakdError, match="student.epochs"):
        load_run_config(unknown)
    executable = tmp_path / "exec.yaml"
    executable.write_text("seed: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(FakdError, match="not valid YAML"):
        load_run_config(executable)


def test_the_x2_profile_is_the_cpu_profile_at_scale_2():
    """A preset with ``base:`` states only what differs; every other setting is its base's."""
    cpu, x2 = load_run_config("cpu").to_dict(), load_run_config("cpu-x2").to_dict()
    assert x2["scale"] == 2 and cpu["scale"] == 4
    assert {key: value for key, value in x2.items() if key not in ("scale", "profile")} == \
        {key: value for key, value in cpu.items() if key not in ("scale", "profile")}
