"""fakd.checks: one rule per idea, the same error words everywhere."""

import numpy as np
import pytest

from fakd.checks import check_positive_int, check_positive_number, check_scale
from fakd.errors import FakdError
from fakd.models import SUPPORTED_SCALES


@pytest.mark.parametrize("scale", [2, 3, 5, 16, 4.0, np.int64(4), np.float32(3.0)])
def test_a_scale_is_a_whole_number_of_at_least_two(scale):
    assert check_scale(scale) == int(scale) and type(check_scale(scale)) is int


@pytest.mark.parametrize("scale", [1, 0, -2, 2.5, True, "4", None, float("nan"), float("inf")])
def test_anything_else_is_one_clear_error(scale):
    with pytest.raises(FakdError, match="scale must be a whole number >= 2"):
        check_scale(scale)


def test_the_models_add_the_scales_their_upsampler_builds():
    assert check_scale(8, supported=SUPPORTED_SCALES) == 8
    with pytest.raises(FakdError, match=r"unsupported scale 5: use one of \[2, 3, 4, 8\]"):
        check_scale(5, supported=SUPPORTED_SCALES)


def test_positive_numbers():
    assert check_positive_int("n_feats", 3) == 3 and check_positive_number("res_scale", 0.1) == 0.1
    for value in (0, -1, 2.0, True):
        with pytest.raises(FakdError, match="n_feats must be a positive integer"):
            check_positive_int("n_feats", value)
    for value in (0, -0.5, float("nan"), "1"):
        with pytest.raises(FakdError, match="res_scale must be a positive number"):
            check_positive_number("res_scale", value)
