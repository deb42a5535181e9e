"""KD baselines (FitNet, AT, FSP, channel affinity) against float64 formulas written out in numpy."""

import numpy as np
import pytest
import torch

from fakd.distill import (AttentionTransferLoss, ChannelAffinityLoss, FeatureAffinityLoss, FitNetLoss,
                          FSPLoss, affinity_loss)
from fakd.errors import FakdError


def features(*shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for shape in shapes]


def test_fitnet_equal_channels_is_feature_mse():
    student, teacher = features((2, 4, 5, 6), (2, 4, 5, 6))
    loss = FitNetLoss()
    assert loss.adapter is None and not list(loss.parameters())
    expected = ((student.double().numpy() - teacher.double().numpy()) ** 2).mean()
    assert loss(student, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_fitnet_adapter_maps_student_to_teacher_channels_and_learns():
    student, teacher = features((2, 3, 4, 4), (2, 5, 4, 4), seed=1)
    loss = FitNetLoss(student_channels=3, teacher_channels=5)
    weight = loss.adapter.weight.detach().double().numpy()[:, :, 0, 0]  # (5, 3)
    bias = loss.adapter.bias.detach().double().numpy()
    mapped = np.einsum("oc,bchw->bohw", weight, student.double().numpy()) + bias[None, :, None, None]
    expected = ((mapped - teacher.double().numpy()) ** 2).mean()
    value = loss(student, teacher)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    value.backward()
    assert loss.adapter.weight.grad.abs().sum() > 0


def test_fitnet_channel_mismatch_without_adapter_is_an_error():
    student, teacher = features((1, 3, 4, 4), (1, 5, 4, 4))
    with pytest.raises(RuntimeError, match="adapter"):
        FitNetLoss()(student, teacher)
    loss = FitNetLoss()
    loss.build_adapter(3, 5)
    assert loss(student, teacher).item() > 0


def numpy_attention(feat, p=2):
    a = (np.abs(feat) ** p).mean(axis=1).reshape(feat.shape[0], -1)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_attention_transfer_matches_formula_with_different_channels():
    student, teacher = features((3, 4, 6, 5), (3, 9, 6, 5), seed=2)
    s, t = student.double().numpy(), teacher.double().numpy()
    expected = ((numpy_attention(s) - numpy_attention(t)) ** 2).mean()
    assert AttentionTransferLoss()(student, teacher).item() == pytest.approx(expected, rel=1e-5)


def test_fsp_matches_formula():
    s1, s2, t1, t2 = features((2, 3, 5, 4), (2, 6, 5, 4), (2, 3, 5, 4), (2, 6, 5, 4), seed=3)

    def flow(a, b):
        a, b = a.double().numpy(), b.double().numpy()
        return np.einsum("bihw,bjhw->bij", a, b) / (a.shape[2] * a.shape[3])

    expected = ((flow(s1, s2) - flow(t1, t2)) ** 2).mean()
    assert FSPLoss()((s1, s2), (t1, t2)).item() == pytest.approx(expected, rel=1e-5)


def test_fsp_needs_equal_channels_and_equal_layer_sizes():
    s1, s2, t1, t2 = features((1, 3, 4, 4), (1, 3, 4, 4), (1, 5, 4, 4), (1, 3, 4, 4))
    with pytest.raises(FakdError, match="equal channel counts"):
        FSPLoss()((s1, s2), (t1, t2))
    with pytest.raises(FakdError, match="equal batch and spatial size"):
        FSPLoss()((s1, torch.zeros(1, 3, 2, 2)), (s1, s2))


@pytest.mark.parametrize("p", [1, 2])
def test_channel_affinity_matches_formula(p):
    student, teacher = features((2, 5, 4, 6), (2, 5, 4, 6), seed=4)

    def cosines(feat):
        flat = feat.double().numpy().reshape(feat.shape[0], feat.shape[1], -1)
        unit = flat / (np.linalg.norm(flat, axis=2, keepdims=True) + 1e-8)
        return unit @ unit.transpose(0, 2, 1)

    diff = cosines(student) - cosines(teacher)
    expected = np.abs(diff).mean() if p == 1 else (diff ** 2).mean()
    assert ChannelAffinityLoss(p=p)(student, teacher).item() == pytest.approx(expected, rel=1e-5)


def test_channel_affinity_needs_equal_channels():
    student, teacher = features((1, 4, 3, 3), (1, 6, 3, 3))
    with pytest.raises(FakdError, match="student .*teacher"):
        ChannelAffinityLoss()(student, teacher)


def test_feature_affinity_loss_is_affinity_loss():
    student, teacher = features((2, 4, 5, 5), (2, 7, 5, 5), seed=5)
    for p in (1, 2):
        assert FeatureAffinityLoss(p=p)(student, teacher).item() == affinity_loss(student, teacher, p).item()
    with pytest.raises(FakdError, match="order p"):
        FeatureAffinityLoss(p=3)


@pytest.mark.parametrize("make_loss, channels", [
    (FeatureAffinityLoss, (4, 6)), (lambda: FitNetLoss(student_channels=4, teacher_channels=6), (4, 6)),
    (AttentionTransferLoss, (4, 6)), (ChannelAffinityLoss, (4, 4)),
])
def test_gradient_reaches_student_but_not_teacher(make_loss, channels):
    student, teacher = features((2, channels[0], 5, 5), (2, channels[1], 5, 5), seed=6)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    make_loss()(student, teacher).backward()
    assert student.grad.abs().sum() > 0
    assert teacher.grad is None
