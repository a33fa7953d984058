"""The four-equation solver against closed forms and an independent mpmath solution.

The mpmath solutions (30 digits) are stored in tests/reference/mpmath_references.json;
regenerate them with
``OPENBLAS_NUM_THREADS=1 python tests/reference/make_mpmath_references.py``.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from conftest import mpmath_references
from rmt_deq.activations import get_activation
from rmt_deq._validation import (VARIANCE_MATCH_RTOL, check_choice, check_positive_int,
                                 same_variance)
from rmt_deq.data.conventions import SOURCE_GIVEN, SOURCE_SOLUTION
from rmt_deq.errors import (ConvergenceError, InvalidParameterError, NoFixedPointError,
                            UnknownOptionError)
from rmt_deq.fixed_point.centring import centring_solution
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.moments.gaussian import gaussian_moments

CASES = [(0.2, 1.0), (0.5, 0.7), (0.8, 1.6)]
KEYS = ("tau", "alpha1", "alpha2", "alpha3", "alpha4")


@pytest.mark.parametrize("spec", ["relu", "tanh", "swish", "erf", "leaky_relu:0.1", "sigmoid"])
def test_solver_matches_mpmath(spec):
    stored = mpmath_references()["solver"]
    assert [tuple(c) for c in stored["cases"]] == CASES and tuple(stored["keys"]) == KEYS
    for (sa, tau0), row in zip(CASES, stored["values"][spec]):
        sol = solve_four_equations(spec, sa, tau0)
        assert sol.report.residual <= 1e-13
        assert sol.report.converged and sol.unique
        ref = dict(zip(KEYS, row))
        for k in KEYS:
            a, b = getattr(sol, k), ref[k]
            # alpha2 = alpha3 = 0 exactly for odd phi: compare absolutely there
            assert abs(a - b) <= 1e-12 * max(abs(b), 1e-2), (spec, sa, tau0, k, a, b)


def test_relu_closed_form_solution():
    # ReLU: E[relu_c^2] = tau^2 (1/2 - 1/(2 pi)), g1 = 1/4, g2 = 1/(2 pi tau^2), g4 = 1 - 1/pi
    for sa, tau0 in CASES:
        sb = 1 - sa
        tau2 = sb * tau0 ** 2 / (1 - sa * (0.5 - 0.5 / math.pi))
        sol = solve_four_equations("relu", sa, tau0)
        g2 = 1 / (2 * math.pi * tau2)
        a1 = sb / (1 - sa / 4)
        a4 = sb / (1 - sa * (1 - 1 / math.pi) / 2)
        assert sol.tau == pytest.approx(math.sqrt(tau2), rel=1e-14)
        assert sol.alpha1 == pytest.approx(a1, rel=1e-14)
        assert sol.alpha4 == pytest.approx(a4, rel=1e-14)
        assert sol.alpha2 == pytest.approx(sa * g2 * a4 ** 2 / (4 * (1 - sa / 4)), rel=1e-13)
        assert sol.alpha3 == pytest.approx(sa * g2 * a1 ** 2 / (2 * (1 - sa / 4)), rel=1e-13)
        assert sol.contraction["alpha1"] == pytest.approx(sa / 4, rel=1e-14)


def test_explicit_sb_and_diagnostics():
    sol = solve_four_equations("tanh", 0.3, 1.2, sb=0.9)
    assert sol.sb == 0.9
    assert sol.tau ** 2 == pytest.approx(0.3 * sol.V0 + 0.9 * 1.44, rel=1e-14)
    assert 0 < sol.contraction["tau_map"] < 1 and sol.report.iterations <= 10
    assert sol.report.history[-1] <= 1e-15
    d = sol.to_dict()
    assert d["tau"] == sol.tau and "moments" in d


def test_no_fixed_point_quadratic():
    # phi(t) = t^2: E[phi_c^2] = 2 tau^4 grows faster than tau^2/sa -> no root for large tau0
    with pytest.raises(NoFixedPointError, match="no root|contract"):
        solve_four_equations("quadratic:0,1", 0.5, 3.0)


def test_contraction_failure_alpha1():
    # phi(t) = 3t: sa g1 = 9 sa >= 1 for sa = 0.2 (and the tau map has slope 9 sa too)
    with pytest.raises(NoFixedPointError, match="sa"):
        solve_four_equations("polynomial:0,3", 0.2, 1.0, sb=0.8)


@pytest.mark.parametrize("kw", [dict(sa=0.0), dict(sa=1.0), dict(sa=-0.1), dict(sa=float("nan")),
                                dict(sa=0.3, sb=-1.0), dict(sa=0.3, tau0=0.0),
                                dict(sa=0.3, tau0=float("inf"))])
def test_bad_parameters(kw):
    sa = kw.pop("sa")
    with pytest.raises(InvalidParameterError):
        solve_four_equations("relu", sa, **{"tau0": 1.0, **kw})


def test_unknown_method_and_nonconvergence():
    with pytest.raises(UnknownOptionError):
        solve_four_equations("relu", 0.3, 1.0, method="simpson")
    with pytest.raises(ConvergenceError) as info:
        solve_four_equations("tanh", 0.3, 1.0, max_iter=1)
    assert len(info.value.residuals) == 1


def test_relu_family_uniqueness_is_proved_not_scanned():
    # T(q) = sa V0(1) q + sb tau0^2 is affine for the ReLU family: one root on [0, inf)
    for spec in ("relu", "leaky_relu:0.2"):
        sol = solve_four_equations(spec, 0.4, 1.3)
        assert sol.unique and sol.q_scan == math.inf


def test_lean_newton_equals_full_moment_newton():
    # the quadrature path iterates on (V0, g4) only; the root must be the one the full
    # moment set gives (same V0 arithmetic) and the moments those at the root
    # (method="quadrature": the default now iterates on the moment table, which
    # tests/test_moment_table.py checks the same way against the table's own moments)
    sol = solve_four_equations("tanh", 0.3, 1.1, method="quadrature")
    m = gaussian_moments("tanh", sol.tau, method="quadrature")
    assert abs(0.3 * m.V0 + 0.7 * 1.21 - sol.tau ** 2) <= 2e-16 * sol.tau ** 2 * 4
    assert sol.g1 == m.g1 and sol.g4 == m.g4


def test_solution_is_frozen_and_json_ready():
    sol = solve_four_equations("relu", 0.3, 1.0)    # uniqueness proved: q_scan = inf
    with pytest.raises(TypeError):
        sol.contraction["alpha1"] = 0.0
    with pytest.raises(TypeError):
        sol.error_estimate["tau"] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        sol.tau = 1.0
    # strict JSON: the infinite q_scan becomes null, the report is a dictionary
    d = json.loads(json.dumps(sol.to_dict(), allow_nan=False))
    assert sol.q_scan == math.inf and d["q_scan"] is None
    assert d["report"]["converged"] is True and d["report"]["residual"] == sol.report.residual
    assert d["report"]["history"] == list(sol.report.history)
    assert d["moments"]["e1"] == pytest.approx(0.5, rel=1e-15)     # E[relu'] = 1/2
    assert d["contraction"] == dict(sol.contraction)
    # one convergence record: the report, not per-class fields
    for old in ("residual", "tolerance", "iterations", "residual_history", "converged",
                "message"):
        assert not hasattr(sol, old), old
    assert sol.report.residual <= sol.report.tolerance and sol.report.message == "converged"
    # results compare by identity
    assert sol != solve_four_equations("relu", 0.3, 1.0)


def test_mpmath_solution_is_json_ready():
    sol = solve_four_equations("tanh", 0.3, 1.0, method="mpmath", dps=20,
                               check_uniqueness=False)
    d = json.loads(json.dumps(sol.to_dict(), allow_nan=False))
    assert d["moments"]["V0"] == float(sol.moments.V0) and d["error_estimate"] == {}
    assert d["report"]["iterations"] == len(d["report"]["history"]) >= 2


def test_centring_solution_given_or_solved():
    # trusted inputs (the public callers validate): an Activation and both variances
    TANH = get_activation("tanh")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 12)) / math.sqrt(20)
    sol, source = centring_solution(TANH, 0.3, 0.7, X, 1.1, None)
    ref = solve_four_equations("tanh", 0.3, 1.1)
    assert source == SOURCE_GIVEN and (sol.tau, sol.centring) == (ref.tau, ref.centring)
    same, source = centring_solution(TANH, 0.3, 0.7, X, None, ref)
    assert same is ref and source == SOURCE_SOLUTION
    # the variances must match to VARIANCE_MATCH_RTOL relative to max(1, |sa|)
    near = 0.3 + 0.5 * VARIANCE_MATCH_RTOL
    assert centring_solution(TANH, near, 0.7, X, None, ref)[0] is ref
    with pytest.raises(InvalidParameterError, match="sa = 0.31 was requested"):
        centring_solution(TANH, 0.31, 0.69, X, None, ref)
    with pytest.raises(InvalidParameterError, match="activation 'tanh', not 'erf'"):
        centring_solution(get_activation("erf"), 0.3, 0.7, X, None, ref)
    with pytest.raises(InvalidParameterError, match="either tau0/labels or solution"):
        centring_solution(TANH, 0.3, 0.7, X, 1.1, ref)
    with pytest.raises(InvalidParameterError, match="FixedPointSolution"):
        centring_solution(TANH, 0.3, 0.7, X, None, ref.to_dict())
    assert same_variance(2.0, 2.0 * (1 + 0.5 * VARIANCE_MATCH_RTOL))
    assert not same_variance(2.0, 2.0 * (1 + 2 * VARIANCE_MATCH_RTOL))


def test_validators_take_the_value_then_its_name():
    assert check_choice("b", "letter", ("a", "b")) == "b"
    with pytest.raises(UnknownOptionError, match="unknown letter 'c'"):
        check_choice("c", "letter", ("a", "b"))
    assert check_positive_int(3, "n") == 3
    with pytest.raises(InvalidParameterError, match="n must be a positive integer, got 0"):
        check_positive_int(0, "n")
