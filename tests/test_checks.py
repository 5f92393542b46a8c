"""Tests of the shared argument checks."""
import pytest
import torch

from lcmc_core.checks import all_finite


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_all_finite_finds_a_bad_value_in_any_block(bad):
    x = torch.zeros(20, 3)
    assert all_finite(x, rows=4)
    for row in (0, 7, 19):   # the first block, a middle one, the last (shorter) one
        y = x.clone()
        y[row, 1] = bad
        assert not all_finite(y, rows=4)
    assert all_finite(torch.tensor(1.0)) and not all_finite(torch.tensor(bad))
