"""Checkpoints: round trip, weights_only loading, clear errors for foreign or incompatible files."""

import random

import numpy as np
import pytest
import torch

from fakd.errors import FakdError
from fakd.models import build_model
from fakd.train.rng import capture_rng_state, restore_rng_state
from fakd.zoo.checkpoint import load_checkpoint, load_model_from_checkpoint, save_checkpoint


def _payload(model):
    return {"model_config": dict(model.config), "model_state": model.state_dict(), "iteration": 3,
            "model_name": "smoke student"}


def test_round_trip_rebuilds_the_same_model(tmp_path):
    torch.manual_seed(0)
    model = build_model("rcan-smoke-student", scale=4)
    path = save_checkpoint(_payload(model), tmp_path / "model.pt")
    loaded = load_model_from_checkpoint(path, "cpu", scale=4, arch="rcan")
    assert not loaded.training and loaded.checkpoint_name == "smoke student"
    lr = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(model.eval()(lr), loaded(lr))
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"


def test_load_uses_weights_only(tmp_path):
    """A checkpoint holding a pickled object (here a whole module) is refused, not executed."""
    path = tmp_path / "pickled.pt"
    torch.save({"format": "fakd-checkpoint", "version": 1, "model_config": {},
                "model_state": build_model("rcan-smoke-student", scale=4)}, path)
    with pytest.raises(FakdError, match="unreadable"):
        load_checkpoint(path)


@pytest.mark.parametrize("content, message", [
    (b"", "unreadable"),
    (b"not a checkpoint at all", "unreadable"),
])
def test_garbage_files(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(FakdError, match=message):
        load_model_from_checkpoint(path)


def test_foreign_and_truncated_files(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(FakdError, match="not a fakd checkpoint"):
        load_checkpoint(foreign)
    model = build_model("rcan-smoke-student", scale=4)
    whole = save_checkpoint(_payload(model), tmp_path / "whole.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FakdError, match="unreadable"):
        load_checkpoint(truncated)
    with pytest.raises(FakdError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_incompatible_scale_and_architecture(tmp_path):
    model = build_model("rcan-smoke-student", scale=4)
    path = save_checkpoint(_payload(model), tmp_path / "x4.pt")
    with pytest.raises(FakdError, match="×4 model, but ×2"):
        load_model_from_checkpoint(path, scale=2)
    with pytest.raises(FakdError, match="holds a rcan model, expected edsr"):
        load_model_from_checkpoint(path, arch="edsr")
    other = build_model("rcan-smoke-teacher", scale=4)
    mismatched = save_checkpoint({**_payload(model), "model_state": other.state_dict()}, tmp_path / "mix.pt")
    with pytest.raises(FakdError, match="weights do not fit"):
        load_model_from_checkpoint(mismatched)
    broken = save_checkpoint({**_payload(model), "model_config": {"arch": "unet"}}, tmp_path / "arch.pt")
    with pytest.raises(FakdError, match="cannot rebuild"):
        load_model_from_checkpoint(broken)


def test_rng_states_round_trip(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    path = save_checkpoint({"model_config": {}, "model_state": {}, "rng_state": capture_rng_state()},
                           tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    restore_rng_state(load_checkpoint(path)["rng_state"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
