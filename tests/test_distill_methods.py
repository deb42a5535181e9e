"""The method registry: each method's facts in one record, and the checks of method names."""

import pytest

from fakd.distill import FEATURE_METHODS, KNOWN_METHODS, METHODS, check_methods
from fakd.distill.baselines import FSPLoss, FeatureAffinityLoss
from fakd.distill.methods import build_loss
from fakd.errors import FakdError


def test_registry_holds_each_methods_facts():
    assert KNOWN_METHODS == ("none", "kd", "fakd", "fitnet", "at", "fsp", "ca")
    assert {name: METHODS[name].default_weight for name in FEATURE_METHODS} == {
        "fakd": 1.0, "fitnet": 1.0, "at": 1000.0, "fsp": 1.0, "ca": 1.0}
    assert [METHODS[name].label for name in KNOWN_METHODS] == ["no KD", "output KD", "FAKD", "FitNet", "AT",
                                                                "FSP", "CA"]
    assert [name for name in KNOWN_METHODS if METHODS[name].min_tap_pairs == 2] == ["fsp"]


def test_method_names_are_checked_once_for_every_caller():
    assert check_methods(["fakd", "kd", "fakd"]) == ["fakd", "kd"]
    with pytest.raises(FakdError, match="no distillation method given"):
        check_methods([])
    with pytest.raises(FakdError, match=r"unknown distillation method\(s\) \['fakd2'\]: use none, kd, fakd"):
        check_methods(["fakd2"])
    with pytest.raises(FakdError, match="cannot be combined"):
        check_methods(["none", "fakd"])


def test_build_loss_takes_only_the_methods_options():
    assert isinstance(build_loss("fsp", {}, label="fsp"), FSPLoss)
    assert build_loss("fakd", {"p": 2}, label="fakd").p == 2 and isinstance(
        build_loss("fakd", {}, label="fakd"), FeatureAffinityLoss)
    with pytest.raises(FakdError, match=r"term 'x': method 'fsp' has no option\(s\) \['p'\] \(its options: none\)"):
        build_loss("fsp", {"p": 1}, label="x")
