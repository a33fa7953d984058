"""Bad input raises a specific exception whose message names the problem (never NaN)."""
from __future__ import annotations

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.activations import Activation
from rmt_deq.errors import (ConvergenceError, DivergentMomentError, InvalidParameterError,
                            NoFixedPointError, NonFiniteInputError, ShapeMismatchError,
                            UnknownActivationError, UnknownOptionError)

_rng = np.random.default_rng(5)
X_OK = _rng.standard_normal((8, 6)) / np.sqrt(8)
X_NAN = X_OK.copy()
X_NAN[2, 3] = np.nan
X_INF = X_OK.copy()
X_INF[0, 0] = np.inf
MEANS = np.zeros((2, 8))
DIAG = np.ones((2, 8))

CASES = [
    ("sa <= 0", lambda: rd.solve_four_equations("relu", 0.0, 1.0),
     InvalidParameterError, r"sa .*> 0"),
    ("sa >= 1 without sb", lambda: rd.solve_four_equations("relu", 1.2, 1.0),
     InvalidParameterError, r"sb = 1 - sa"),
    ("negative sb", lambda: rd.solve_four_equations("relu", 0.3, 1.0, sb=-0.5),
     InvalidParameterError, r"sb"),
    ("tau0 <= 0", lambda: rd.solve_four_equations("relu", 0.3, -1.0),
     InvalidParameterError, r"tau0"),
    ("unknown activation", lambda: rd.get_activation("relu6"),
     UnknownActivationError, r"unknown activation 'relu6'; known: .*relu"),
    ("unparsable parameter", lambda: rd.get_activation("leaky_relu:abc"),
     UnknownActivationError, r"parse the parameters"),
    ("wrong parameter count", lambda: rd.get_activation("relu:1,2"),
     UnknownActivationError, r"wrong number of parameters"),
    ("hard tanh clip <= 0", lambda: rd.get_activation("hard_tanh:1,0"),
     InvalidParameterError, r"clip level c"),
    ("diverging moments", lambda: rd.gaussian_moments(
        Activation.from_callable(lambda x: np.exp(x * x), name="expsq"), 1.0),
     DivergentMomentError, r"expsq"),
    ("tau equation has no root", lambda: rd.solve_four_equations("quadratic:0,1", 0.5, 3.0),
     NoFixedPointError, r"no root"),
    ("alpha1 diverges (sa g1 >= 1)", lambda: rd.solve_four_equations("polynomial:0,3", 0.2, 1.0,
                                                                      sb=0.8),
     NoFixedPointError, r"reduce sa"),
    ("NaN in X", lambda: rd.exact_ck(X_NAN, "relu", 0.3),
     NonFiniteInputError, r"NaN/inf .*row 2, column 3"),
    ("inf in X", lambda: rd.exact_ck(X_INF, "tanh", 0.3), NonFiniteInputError, r"NaN/inf"),
    ("1-D X", lambda: rd.exact_ck(X_OK[:, 0], "relu", 0.3),
     ShapeMismatchError, r"shape \(p, n\)"),
    ("labels length mismatch", lambda: rd.plugin_statistics(X_OK, [0, 1, 0]),
     ShapeMismatchError, r"one entry per sample"),
    ("unknown NTK group", lambda: rd.exact_ntk(X_OK, "relu", 0.3, groups=("v", "W")),
     UnknownOptionError, r"W"),
    ("unknown keyword option", lambda: rd.exact_ntk(X_OK, "relu", 0.3, tolerance=1e-9),
     UnknownOptionError, r"tolerance"),
    ("unknown moment method", lambda: rd.gaussian_moments("relu", 1.0, method="simpson"),
     UnknownOptionError, r"simpson"),
    ("solver iteration cap", lambda: rd.solve_four_equations("tanh", 0.3, 1.0, max_iter=1),
     ConvergenceError, r"did not converge.*last residuals"),
    ("kernel iteration cap", lambda: rd.exact_ck(X_OK, "tanh", 0.5, max_iter=1),
     ConvergenceError, r"converge"),
    ("proportions do not sum to 1", lambda: rd.GaussianMixture(MEANS, DIAG, [0.5, 0.6]),
     InvalidParameterError, r"sum to 1"),
    ("non-PSD covariance", lambda: rd.GaussianMixture(
        np.zeros((1, 2)), np.array([[[1.0, 2.0], [2.0, 1.0]]])),
     InvalidParameterError, r"positive semi-definite|PSD"),
    ("bad rng", lambda: rd.default_mixture(10, rng="seed"), InvalidParameterError, r"rng"),
    ("NaN tau", lambda: rd.gaussian_moments("relu", float("nan")),
     InvalidParameterError, r"tau"),
    ("surrogate without labels", lambda: rd.kernel_from_data(X_OK, "relu", 0.3,
                                                             method="surrogate"),
     InvalidParameterError, r"labels"),
]


@pytest.mark.parametrize("name,call,exc,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_specific_error(name, call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_distinct_cases_count():
    assert len({c[0] for c in CASES}) >= 15


def test_convergence_error_carries_history():
    with pytest.raises(ConvergenceError) as info:
        rd.solve_four_equations("tanh", 0.3, 1.0, max_iter=2)
    assert len(info.value.residuals) == 2 and all(np.isfinite(info.value.residuals))
