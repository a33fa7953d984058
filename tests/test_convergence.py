"""The CK surrogate converges to the exact Implicit-CK as p grows (docs/theory.md §4).

The full table (p = 200..1600, K = 2 and 3, four activations, sa = 0.2 and 0.5) is made by
``rmt-deq figures --only ck_convergence`` (figures/ck_convergence.json); here a smaller range
keeps CI fast.
"""
from __future__ import annotations

import pytest

from rmt_deq.experiments.surrogates import ck_surrogate_convergence


@pytest.mark.parametrize("activation,sa,K", [("tanh", 0.5, 3), ("swish", 0.2, 2),
                                             ("leaky_relu:0.1", 0.5, 3)])
def test_error_decreases_with_p(activation, sa, K):
    res = ck_surrogate_convergence(activation, sa, (100, 200, 400), K=K)
    errs = [r.error for r in res.rows]
    assert errs[0] > errs[1] > errs[2]
    # p^{-1/2} or faster over a factor 4 in p
    assert res.slope.value < -0.4, res
    if activation != "tanh":  # odd phi has alpha3 = 0: both conventions coincide
        assert res.rows[-1].error_centred > 1.3 * errs[-1]
