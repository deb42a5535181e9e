"""Device choice and what --amp runs in: bfloat16 on a CPU with the instructions, float32 without."""

import pytest
import torch

import fakd.device as device
from fakd.errors import FakdError


@pytest.mark.parametrize("capabilities, expected", [
    ({"avx512_bf16": True, "amx_bf16": False}, torch.bfloat16),
    ({"avx512_bf16": False, "amx_bf16": True}, torch.bfloat16),
    ({"avx512_bf16": False, "amx_bf16": False}, None),
    ({}, None),
])
def test_cpu_amp_is_bfloat16_only_with_the_instructions(monkeypatch, capabilities, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    cpu = torch.device("cpu")
    assert device.autocast_dtype(cpu, amp=True) is expected
    assert device.autocast_dtype(cpu, amp=False) is None
    line = device.describe_autocast(cpu, expected)
    if expected is None:
        assert line == ("amp: this CPU has no bfloat16 instructions (amx_bf16 or avx512_bf16); training in float32")
    else:
        assert line.startswith("amp: bfloat16 autocast on cpu (") and ("bf16" in line.split("(")[1])


def test_amp_on_another_device_is_refused():
    with pytest.raises(FakdError, match="CUDA or on a CPU; this run is on meta"):
        device.autocast_dtype(torch.device("meta"), amp=True)


def test_this_machines_answer_matches_proc_cpuinfo():
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        pytest.skip("no /proc/cpuinfo here")
    assert set(device.cpu_bf16_instructions()) == {name for name in device.BF16_INSTRUCTIONS if name in flags}
