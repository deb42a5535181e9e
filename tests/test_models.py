"""Models: published parameter counts, shapes at every scale, tap points, config round trip, errors."""

import functools

import pytest
import torch

from fakd.errors import FakdError
from fakd.models import (
    PRESETS,
    SUPPORTED_SCALES,
    build_model,
    build_model_from_config,
    count_parameters,
    edsr_default_taps,
    list_presets,
    rcan_default_taps,
)
from fakd.models.common import DIV2K_RGB_MEAN, ChannelAttention

SMOKE = ["rcan-smoke-teacher", "rcan-smoke-student"]
BIG = ["rcan-teacher", "edsr-teacher"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and on a busy shared machine two spinning OpenMP
    threads made a 10 ms backward take seconds; restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@functools.lru_cache(maxsize=None)
def _paper_model(name):
    """The big presets at ×4, built once for the read-only tests."""
    return build_model(name, scale=4)


# Published sizes at ×4: RCAN paper / FAKD paper (15.59M, 5.17M), EDSR paper (43.1M, 1.52M).
@pytest.mark.parametrize(
    ("name", "published", "tolerance"),
    [
        ("rcan-teacher", 15.59e6, 0.01),
        ("rcan-student", 5.17e6, 0.01),
        ("edsr-teacher", 43.1e6, 0.01),
        ("edsr-baseline", 1.52e6, 0.01),
    ],
)
def test_parameter_counts_match_the_papers(name, published, tolerance):
    count = count_parameters(_paper_model(name))
    assert abs(count - published) / published < tolerance, count


def test_parameter_counts_exact():
    # Counted by hand from the official layout (3×3 convs with bias, CA 64→4→64, ×4 upsampler).
    assert count_parameters(_paper_model("rcan-teacher")) == 15_592_355
    assert count_parameters(_paper_model("rcan-student")) == 5_171_315
    assert count_parameters(_paper_model("edsr-baseline")) == 1_517_571


def test_presets_listed_and_paper_pairs_present():
    names = list_presets()
    assert names == list(PRESETS)
    for name in ["rcan-teacher", "rcan-student", "edsr-teacher", "edsr-baseline",
                 "rcan-cpu-teacher", "rcan-cpu-student", *SMOKE]:
        assert name in names
    # CPU and smoke pairs keep the paper's shape: 10 groups, same width, fewer blocks.
    for pair in [("rcan-cpu-teacher", "rcan-cpu-student"), tuple(SMOKE)]:
        teacher, student = (PRESETS[name] for name in pair)
        assert teacher["n_resgroups"] == student["n_resgroups"] == 10
        assert teacher["n_feats"] == student["n_feats"]
        assert teacher["n_resblocks"] > student["n_resblocks"]


@pytest.mark.parametrize("name", [n for n in PRESETS if n not in BIG])
def test_output_shape_is_input_times_scale(name):
    model = build_model(name, scale=4)
    out = model(torch.rand(2, 3, 6, 5))
    assert out.shape == (2, 3, 24, 20) and out.dtype == torch.float32


@pytest.mark.parametrize("name", BIG)
def test_big_presets_run(name):
    model = build_model(name, scale=2)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 4, 4)).shape == (1, 3, 8, 8)


@pytest.mark.parametrize("scale", SUPPORTED_SCALES)
@pytest.mark.parametrize("arch_preset", ["rcan-smoke-student", "edsr-baseline"])
def test_every_scale(arch_preset, scale):
    overrides = {"n_resblocks": 1, "n_feats": 16} if arch_preset == "edsr-baseline" else {}
    model = build_model(arch_preset, scale=scale, **overrides)
    assert model.scale == scale
    assert model(torch.rand(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)


@pytest.mark.parametrize("scale", [1, 5, 6, 16, 2.5, "4", True])
def test_unsupported_scale_is_an_error(scale):
    with pytest.raises(FakdError, match=r"scale.*\[2, 3, 4, 8\]"):
        build_model("rcan-smoke-student", scale=scale)


def test_paper_default_taps():
    # the official code's third feature is the body's output after the long skip (long_skip)
    assert _paper_model("rcan-teacher").default_taps == ["body.2", "body.6", "long_skip"]
    assert _paper_model("rcan-student").default_taps == ["body.2", "body.6", "long_skip"]
    assert edsr_default_taps(16) == ["body.4", "body.9", "long_skip"]
    assert edsr_default_taps(32) == ["body.9", "body.20", "long_skip"]
    assert rcan_default_taps(5) == ["body.1", "body.3", "long_skip"]
    assert rcan_default_taps(1) == ["body.0", "long_skip"]
    assert edsr_default_taps(1) == ["body.0", "long_skip"]


@pytest.mark.parametrize(
    ("name", "overrides"),
    [("rcan-smoke-teacher", {}), ("edsr-baseline", {"n_resblocks": 4, "n_feats": 8}),
     ("rcan-smoke-student", {"n_resgroups": 3})],
)
def test_taps_are_modules_with_lr_features(name, overrides):
    model = build_model(name, scale=3, **overrides)
    n_feats = model.config["n_feats"]
    for tap in model.tap_names():
        model.get_submodule(tap)  # raises AttributeError if the path is not a module
    for tap in model.default_taps:
        assert tap in model.tap_names()
    seen = {}
    hooks = [
        model.get_submodule(tap).register_forward_hook(
            lambda module, args, output, tap=tap: seen.__setitem__(tap, output)
        )
        for tap in model.tap_names()
    ]
    model(torch.rand(2, 3, 7, 9))
    for hook in hooks:
        hook.remove()
    assert list(seen) == model.tap_names()
    for tap, output in seen.items():
        assert output.shape == (2, n_feats, 7, 9), tap
    # long_skip is what the official code distils last: body_tail's output plus the head's (post-skip)
    assert torch.equal(seen["long_skip"], seen["body_tail"] + seen["head"])


def test_unknown_preset_lists_known_ones():
    with pytest.raises(FakdError, match="rcan-huge.*rcan-teacher.*edsr-baseline"):
        build_model("rcan-huge", scale=4)


def test_overrides():
    model = build_model("rcan-smoke-student", scale=2, n_resblocks=2, reduction=8)
    assert model.config["n_resblocks"] == 2 and model.config["reduction"] == 8
    assert len(model.body[0].body) == 3  # two RCABs and the group's conv
    with pytest.raises(FakdError, match="n_blocks.*n_resblocks"):
        build_model("rcan-smoke-student", scale=2, n_blocks=3)
    with pytest.raises(FakdError, match="'res_scale'"):  # an EDSR option given to RCAN
        build_model("rcan-smoke-student", scale=2, res_scale=0.1)
    with pytest.raises(FakdError, match="'arch'"):
        build_model("rcan-smoke-student", scale=2, arch="edsr")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"n_feats": 8}, "n_feats >= reduction"), ({"n_resblocks": 0}, "n_resblocks"),
     ({"n_resgroups": 2.0}, "n_resgroups"), ({"n_colors": 1}, "n_colors=1"),
     ({"rgb_range": -1.0}, "rgb_range")],
)
def test_bad_sizes_are_errors(overrides, message):
    with pytest.raises(FakdError, match=message):
        build_model("rcan-smoke-student", scale=2, **overrides)


def test_bad_config_is_an_error():
    with pytest.raises(FakdError, match="unknown architecture 'srcnn'.*edsr.*rcan"):
        build_model_from_config({"arch": "srcnn", "scale": 2})
    with pytest.raises(FakdError, match="'depth'"):
        build_model_from_config({"arch": "edsr", "scale": 2, "n_resblocks": 1, "n_feats": 4,
                                 "res_scale": 1.0, "depth": 3})
    with pytest.raises(FakdError, match="res_scale"):
        build_model("edsr-baseline", scale=2, res_scale=0)


@pytest.mark.parametrize("name", ["rcan-smoke-teacher", "rcan-cpu-student", "edsr-baseline"])
def test_config_rebuilds_the_same_model(name):
    model = build_model(name, scale=3)
    assert model.config["preset"] == name
    rebuilt = build_model_from_config(model.config)
    assert rebuilt.config == model.config
    state = model.state_dict()
    assert [(k, v.shape) for k, v in rebuilt.state_dict().items()] == [
        (k, v.shape) for k, v in state.items()
    ]
    rebuilt.load_state_dict(state)
    x = torch.rand(1, 3, 5, 5)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


def test_config_is_plain_and_private():
    model = build_model("rcan-smoke-student", scale=2)
    model.config["n_feats"] = 999
    assert PRESETS["rcan-smoke-student"]["n_feats"] == 16
    assert build_model("rcan-smoke-student", scale=2).config["n_feats"] == 16
    assert all(isinstance(v, (str, int, float)) for v in model.config.values())


# A channel attention's hidden units (1 for 16 ch / reduction 16) can start switched off by their
# ReLU for every input; positive squeeze biases keep this test about the wiring, not about init.
@pytest.mark.parametrize(
    ("name", "overrides"),
    [("rcan-smoke-teacher", {}), ("edsr-baseline", {"n_resblocks": 3, "n_feats": 8})],
)
def test_gradient_reaches_every_parameter(name, overrides):
    model = build_model(name, scale=2, **overrides)
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if module_name.endswith("conv_du.0"):
                module.bias.fill_(1.0)
    model(torch.rand(2, 3, 6, 6)).square().mean().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name
    assert count_parameters(model, trainable_only=True) == count_parameters(model)


@pytest.mark.parametrize("name", ["rcan-smoke-student", "edsr-baseline"])
def test_mean_shift_inside_the_model(name):
    # With every weight zero the network adds nothing: output = DIV2K mean (add_mean), and the
    # head sees the input minus that mean (sub_mean), with rgb_range 1 for inputs in [0, 1].
    model = build_model(name, scale=2, n_feats=16)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    seen = {}
    model.head.register_forward_pre_hook(lambda module, args: seen.setdefault("in", args[0]))
    x = torch.rand(1, 3, 4, 4)
    mean = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(model(x), mean.expand(1, 3, 8, 8))
    torch.testing.assert_close(seen["in"], x - mean)
    assert not any("shift" in key for key in model.state_dict())


def test_channel_attention_matches_float64_formula():
    layer = ChannelAttention(n_feats=32, reduction=16)
    x = torch.randn(2, 32, 5, 6)
    down, up = layer.conv_du[0], layer.conv_du[2]
    x64 = x.double()
    pooled = x64.mean(dim=(2, 3))  # (B, C)
    hidden = torch.relu(pooled @ down.weight.double().view(2, 32).T + down.bias.double())
    weights = torch.sigmoid(hidden @ up.weight.double().view(32, 2).T + up.bias.double())
    expected = x64 * weights[:, :, None, None]
    torch.testing.assert_close(layer(x).double(), expected, rtol=1e-5, atol=1e-6)
