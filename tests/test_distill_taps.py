"""FeatureTaps: hooks by dotted path, one dict per forward pass, removed on exit."""

import pytest
import torch
from torch import nn

from fakd.distill import FeatureTaps, resolve_taps
from fakd.errors import FakdError
from fakd.models import build_model


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.tail = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return self.tail(self.body(self.head(x)))


class Advertised(Net):
    def tap_names(self):
        return ["head", "body.0", "body.2"]


class Twice(Net):
    def forward(self, x):
        return self.tail(self.body(self.body(self.head(x))))


class TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.split = nn.Identity()

    def forward(self, x):
        return self.split((x, x))


def all_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_collects_the_named_outputs():
    torch.manual_seed(0)
    model, x = Net(), torch.randn(2, 3, 8, 8)
    with FeatureTaps(model, ["head", "body.2"]) as taps:
        out = model(x)
    head = model.head(x)
    assert list(taps.features) == ["head", "body.2"]
    assert torch.equal(taps["head"], head)
    assert torch.equal(taps["body.2"], model.body(head))
    assert torch.equal(out, model.tail(taps["body.2"]))


def test_each_forward_starts_a_new_dict_and_clear_empties_it():
    torch.manual_seed(1)
    model = Net()
    first, second = torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6)
    expected_first, expected_second = (model.body[0](model.head(x)) for x in (first, second))
    with FeatureTaps(model, ["body.0"]) as taps:
        model(first)
        captured = taps.features
        model(second)
        assert torch.equal(taps["body.0"], expected_second)
        assert torch.equal(captured["body.0"], expected_first)  # the old dict is left alone
        taps.clear()
        assert taps.features == {}
        with pytest.raises(RuntimeError, match="run the model first"):
            taps["body.0"]


def test_hooks_are_removed_on_exit():
    model = Net()
    before = all_hooks(model)
    with FeatureTaps(model, ["head", "body.1", "tail"]) as taps:
        assert all_hooks(model) == before + 4  # three taps + the pass-start pre-hook on the model
    assert all_hooks(model) == before
    model(torch.randn(1, 3, 5, 5))
    assert taps.features == {}


def test_hooks_are_removed_when_the_block_raises():
    model = Net()
    with pytest.raises(RuntimeError):
        with FeatureTaps(model, ["head"]):
            raise RuntimeError("boom")
    assert all_hooks(model) == 0


def test_unknown_name_lists_the_named_modules():
    with pytest.raises(FakdError) as error:
        FeatureTaps(Net(), ["body.7"])
    message = str(error.value)
    assert "'body.7'" in message and "body.0" in message and "tail" in message


def test_unknown_name_lists_the_models_advertised_taps():
    with pytest.raises(FakdError) as error:
        FeatureTaps(Advertised(), ["nope"])
    assert "head, body.0, body.2" in str(error.value)
    assert "tail" not in str(error.value)


def test_a_failed_construction_leaves_no_hooks():
    model = Net()
    with pytest.raises(FakdError):
        FeatureTaps(model, ["head", "missing"])
    assert all_hooks(model) == 0


def test_module_run_twice_in_one_pass_is_an_error():
    model = Twice()
    with FeatureTaps(model, ["body.0"]):
        with pytest.raises(RuntimeError, match="ran twice"):
            model(torch.randn(1, 3, 5, 5))


def test_non_tensor_output_is_an_error():
    model = TupleOut()
    with FeatureTaps(model, ["split"]):
        with pytest.raises(TypeError, match="not a tensor"):
            model(torch.randn(1, 2))


def test_student_features_keep_the_graph_and_teacher_features_do_not():
    torch.manual_seed(2)
    student, teacher, x = Net(), Net(), torch.randn(1, 3, 6, 6)
    with FeatureTaps(student, ["body.2"]) as s_taps, FeatureTaps(teacher, ["body.2"]) as t_taps:
        with torch.no_grad():
            teacher(x)
        student(x)
    assert not t_taps["body.2"].requires_grad
    assert s_taps["body.2"].requires_grad
    s_taps["body.2"].square().sum().backward()
    assert student.head.weight.grad.abs().sum() > 0


def test_hooks_a_real_preset_model():
    models = pytest.importorskip("fakd.models")
    model = models.build_model("rcan-smoke-student", scale=2)
    taps_wanted = list(model.default_taps)
    with FeatureTaps(model, taps_wanted) as taps:
        out = model(torch.rand(1, 3, 12, 12))
    assert list(taps.features) == taps_wanted
    assert out.shape[-2:] == (24, 24)
    for feat in taps.features.values():
        assert feat.shape[0] == 1 and feat.shape[-2:] == (12, 12) and feat.requires_grad
    with pytest.raises(FakdError) as error:
        FeatureTaps(model, ["body.99"])
    assert all(name in str(error.value) for name in model.tap_names())


def test_resolve_taps():
    model = build_model("rcan-smoke-student", scale=2)
    assert resolve_taps(model, ["body.0", "body_tail"]) == ["body.0", "body_tail"]
    assert resolve_taps(model, "body.9") == ["body.9"]
    assert resolve_taps(model, None) == ["body.2", "body.6", "long_skip"]
    assert resolve_taps(model, []) == []
    with pytest.raises(FakdError, match=r"'body\.10'.*body\.9.*body_tail"):
        resolve_taps(model, ["body.10"])
    with pytest.raises(FakdError, match="tail.0.*valid ones are"):
        resolve_taps(model, ["tail.0"])
    with pytest.raises(FakdError, match="more than once"):
        resolve_taps(model, ["body.2", "body.2"])


def test_one_rule_for_valid_taps():
    """FeatureTaps and resolve_taps accept the same names: advertised taps, else any submodule path."""
    with pytest.raises(FakdError, match="unknown tap 'tail'"):
        FeatureTaps(Advertised(), ["tail"])  # a submodule, but not an advertised tap
    with pytest.raises(FakdError, match="unknown tap"):
        resolve_taps(Advertised(), ["tail"])
    assert resolve_taps(Net(), ["tail", "body.1"]) == ["tail", "body.1"]
    with FeatureTaps(Net(), ["tail", "body.1"]) as taps:
        assert taps.names == ["tail", "body.1"]
