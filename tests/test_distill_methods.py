"""The method registry: each method's facts in one record, and the checks of method names."""

import pytest

import pandas as pd

from fakd.analysis.ablation import ablation_table, read_sweep
from fakd.analysis.fair_comparison import comparison_rows, comparison_table
from fakd.analysis.selection import weight_candidates
from fakd.cli import main
from fakd.distill import METHODS, Method, check_methods, feature_methods, known_methods, register_method
from fakd.distill.baselines import AttentionTransferLoss
from fakd.distill.baselines import FSPLoss, FeatureAffinityLoss
from fakd.distill.methods import build_loss
from fakd.errors import FakdError
from sweep_support import IMAGES, make_run, make_teacher


def test_registry_holds_each_methods_facts():
    assert known_methods() == ("none", "kd", "fakd", "fitnet", "at", "fsp", "ca")
    assert {name: METHODS[name].default_weight for name in feature_methods()} == {
        "fakd": 1.0, "fitnet": 1.0, "at": 1000.0, "fsp": 1.0, "ca": 1.0}
    assert [METHODS[name].label for name in known_methods()] == ["no KD", "output KD", "FAKD", "FitNet", "AT",
                                                                "FSP", "CA"]
    assert [name for name in known_methods() if METHODS[name].min_tap_pairs == 2] == ["fsp"]


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


def test_a_registered_method_reaches_the_cli_help_and_the_comparison_tables(tmp_path, capsys):
    """One record in the registry is all a new method needs: nothing else lists the methods by hand."""
    register_method(Method("dummy", "Dummy", AttentionTransferLoss, 10.0, 1, options=("p",)))
    try:
        assert "dummy" in known_methods() and "dummy" in feature_methods()
        with pytest.raises(FakdError, match="registered already"):
            register_method(Method("dummy", "Dummy", AttentionTransferLoss, 10.0, 1))
        with pytest.raises(SystemExit):
            main(["distill", "--help"])
        assert "| dummy;" in " ".join(capsys.readouterr().out.split())
        sweep = _dummy_sweep(tmp_path)
        chosen = comparison_rows(weight_candidates(sweep))
        assert ("Dummy w=100 (chosen)", "Dummy w=100", "dummy") in chosen
        shown = comparison_table(ablation_table(sweep), chosen, teacher=None, scale=4)
        assert shown.loc["Dummy w=100 (chosen)", "Set5"].startswith("30.01")
    finally:
        del METHODS["dummy"]  # registered for this test only
    assert "dummy" not in known_methods()


def _dummy_sweep(tmp_path):
    """The dummy method over its weight grid (validation best at w 100, 10x its default 10), and no KD."""
    teacher, root, rows = make_teacher(tmp_path), tmp_path / "sweep", []
    for weight, val in ((1.0, 27.0), (10.0, 27.2), (100.0, 27.4), (1000.0, 27.3)):
        for seed in (0, 1):
            make_run(root, rows, name=f"dummy-{weight}-{seed}", method="dummy", weight=weight, seed=seed,
                     teacher=teacher, psnr=[30.0 + weight / 1e4] * len(IMAGES), val_psnr=val)
    for seed in (0, 1):
        make_run(root, rows, name=f"none-{seed}", method="none", seed=seed, teacher=teacher,
                 psnr=[29.9] * len(IMAGES), val_psnr=26.9)
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return read_sweep(root)
