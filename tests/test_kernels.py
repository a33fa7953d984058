"""Exact Implicit-CK / NTK and the bivariate Gaussian engines.

The references are computed independently of the package: the activations are re-written
with the ``math`` module and every bivariate expectation is a nested adaptive
``scipy.integrate.quad`` (QUADPACK) with breakpoints at the kinks, at tight tolerances.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from conftest import ACTIVATION_SPECS
from rmt_deq.moments.bivariate import bivariate_expectation
from rmt_deq.moments.mehler import hermite_coefficients
from rmt_deq.moments.pair_closed import has_closed_form
from rmt_deq.moments.pairs import PairExpectations
from rmt_deq.moments.scales import gaussian_mean, one_dimensional_moments
from rmt_deq.errors import (ConvergenceError, InvalidParameterError, NoFixedPointError,
                            NonFiniteInputError, ShapeMismatchError, UnknownOptionError)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.moments.gaussian import gaussian_moments
from rmt_deq.kernels.exact import (ExactDetails, exact_ck, exact_kernels, exact_ntk,
                                   ntk_from_kernel, published_ntk)
from rmt_deq.kernels.result import Kernel

SA = 0.3
TOL = 1e-10
L = 12.0                       # pdf(12) ~ 5e-32: the truncation is far below the tolerance


# ----------------------------------------------------------------------------------------
# independent scalar activations: (phi, phi', kinks)
# ----------------------------------------------------------------------------------------
def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


REF_ACTS = {
    "relu": (lambda x: x if x > 0 else 0.0, lambda x: 1.0 if x > 0 else 0.0, (0.0,)),
    "tanh": (math.tanh, lambda x: 1.0 - math.tanh(x) ** 2, ()),
    "swish": (lambda x: x * _sig(x), lambda x: _sig(x) + x * _sig(x) * (1.0 - _sig(x)), ()),
    "hard_tanh:1,1": (lambda x: min(1.0, max(-1.0, x)),
                      lambda x: 1.0 if abs(x) < 1.0 else 0.0, (-1.0, 1.0)),
    "erf": (math.erf, lambda x: 2.0 / math.sqrt(math.pi) * math.exp(-x * x), ()),
}


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _inside(points) -> list:
    return sorted({float(p) for p in points if -L < p < L})


def _quad(fun, points) -> float:
    pts = _inside(points)
    val, _err = integrate.quad(fun, -L, L, points=pts or None, epsabs=1e-14, epsrel=1e-13,
                               limit=400)
    return val


def ref_expectation(f, g, kinks, S_uu: float, S_vv: float, S_uv: float) -> float:
    """E[f(u) g(v)] for (u, v) ~ N(0, [[S_uu, S_uv], [S_uv, S_vv]]) by nested adaptive quad.

    u = a x1, v = b x1 + c x2 with x1, x2 iid N(0, 1); the inner integral is split at the
    kinks of g, the outer one at the kinks of f and where the inner one bends.
    """
    a = math.sqrt(S_uu)
    b = S_uv / a
    c2 = S_vv - b * b
    if c2 <= 1e-15 * S_vv:     # |rho| = 1: one-dimensional
        return _quad(lambda x: f(a * x) * g(b * x) * _pdf(x),
                     [k / a for k in kinks] + [k / b for k in kinks if b != 0])
    c = math.sqrt(c2)

    def inner(x1: float) -> float:
        m = b * x1
        return _quad(lambda x2: g(m + c * x2) * _pdf(x2), [(k - m) / c for k in kinks])

    return _quad(lambda x1: f(a * x1) * inner(x1) * _pdf(x1),
                 [k / a for k in kinks] + ([k / b for k in kinks] if b != 0 else []))


def _data(p: int = 6, n: int = 5, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((p, n)) / math.sqrt(p)
    X[:, 1] += 0.8 * X[:, 0]          # strongly correlated pairs ...
    if n >= 5:                        # ... and one nearly collinear (rho ~ 0.998)
        X[:, 4] = X[:, 3] + 0.05 * rng.standard_normal(p) / math.sqrt(p)
    return X


# ----------------------------------------------------------------------------------------
# (i) the exact kernels against 2-D quadrature of the defining integrals
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", list(REF_ACTS))
def test_exact_kernels_match_2d_quadrature(spec):
    X = _data()
    n = X.shape[1]
    K = exact_ck(X, spec, SA)
    assert isinstance(K, Kernel) and isinstance(K.info, ExactDetails)
    assert (K.route, K.network, K.ntk) == ("exact", "deq", None)
    assert K.info.Sigma.shape == (n, n)
    rep = K.report
    assert rep.converged and rep.residual <= 1e-12 and rep.tolerance == 1e-12
    assert rep.iterations == len(rep.history) and rep.history[-1] == rep.residual
    diag = K.info.diagonal
    assert diag.converged and diag.iterations == len(diag.history) >= 1
    if not has_closed_form(spec):
        # the Mehler series handles every pair but the nearly collinear one (rho ~ 0.999),
        # which needs the 2-D quadrature fallback
        assert (K.info.method == "mehler" and K.info.series_order > 0
                and K.info.quadrature_pairs == 1)
    phi, dphi, kinks = REF_ACTS[spec]
    c = K.solution.centring
    phic = lambda x: phi(x) - c  # noqa: E731
    S = K.info.Sigma
    Gref = np.empty((n, n))
    Dref = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            Gref[i, j] = Gref[j, i] = ref_expectation(phic, phic, kinks, S[i, i], S[j, j],
                                                      S[i, j])
            Dref[i, j] = Dref[j, i] = ref_expectation(dphi, dphi, kinks, S[i, i], S[j, j],
                                                      S[i, j])
    sb = 1.0 - SA
    XtX = X.T @ X
    err_G = np.abs(K.ck - Gref).max()
    err_D = np.abs(K.info.Gdot - Dref).max()
    # the fixed-point equation holds with the independent reference values
    err_fp = np.abs(S - SA * Gref - sb * XtX).max()
    assert err_G <= TOL, (spec, "G", err_G)
    assert err_D <= TOL, (spec, "Gdot", err_D)
    assert err_fp <= TOL, (spec, "fixed point", err_fp)
    # the centring is E[phi(tau xi)] at the four-equation tau
    tau = K.solution.tau
    mean_ref = _quad(lambda x: phi(tau * x) * _pdf(x), [k / tau for k in kinks])
    assert abs(c - mean_ref) <= 1e-13
    # NTK groups
    ntk = exact_ntk(X, spec, SA, ck=K)
    gain = 1.0 / (1.0 - SA * Dref)
    refs = {"v": Gref, "A": SA * Gref * Dref * gain, "B": sb * XtX * Dref * gain}
    for g, ref in refs.items():
        err = np.abs(ntk.groups[g] - ref).max()
        assert err <= TOL, (spec, g, err)
    assert np.abs(ntk.ntk - sum(refs.values())).max() <= TOL
    # one solve, both kernels: exact_kernels gives the same matrices
    both = exact_kernels(X, spec, SA)
    assert np.array_equal(both.ck, K.ck) and np.array_equal(both.ntk, ntk.ntk)


# ----------------------------------------------------------------------------------------
# (ii) closed forms against the general engines
# ----------------------------------------------------------------------------------------
GRID_S = [(0.7, 1.3), (1.0, 1.0), (0.3, 2.2), (2.5, 0.9)]
GRID_RHO = [0.0, 0.31, -0.55, 0.8, -0.93, 0.97, 0.999, -0.9999, 1.0, -1.0]


@pytest.mark.parametrize("spec", ["relu", "leaky_relu:0.1", "erf"])
@pytest.mark.parametrize("kind", ["phi", "dphi"])
def test_closed_forms_match_general_engines(spec, kind):
    assert has_closed_form(spec)
    su = np.array([s for s, _ in GRID_S for _ in GRID_RHO])
    sv = np.array([s for _, s in GRID_S for _ in GRID_RHO])
    rho = np.array(GRID_RHO * len(GRID_S))
    c = 0.37
    closed = bivariate_expectation(spec, su, sv, rho, kind=kind, centring=c, method="closed")
    mehler = bivariate_expectation(spec, su, sv, rho, kind=kind, centring=c, method="mehler")
    assert np.abs(closed - mehler).max() <= TOL
    # the 2-D quadrature on its own (the Mehler engine uses it only for |rho| near 1)
    sel = slice(0, len(GRID_RHO))
    quad = bivariate_expectation(spec, su[sel], sv[sel], rho[sel], kind=kind, centring=c,
                                 method="quadrature")
    assert np.abs(closed[sel] - quad).max() <= TOL


def test_closed_form_kernel_matches_mehler_kernel_with_fallback():
    """Duplicate and nearly duplicate samples force rho = 1 and the quadrature fallback."""
    X = _data(p=8, n=6, seed=5)
    X[:, 2] = X[:, 0]
    X[:, 3] = X[:, 1] + 1e-3 * X[:, 4]
    for spec in ("relu", "erf"):
        a = exact_ck(X, spec, SA, method="closed")
        b = exact_ck(X, spec, SA, method="mehler")
        assert b.info.method == "mehler" and b.info.quadrature_pairs >= 2
        assert np.abs(a.ck - b.ck).max() <= TOL
        assert np.abs(a.info.Gdot - b.info.Gdot).max() <= TOL
        assert np.abs(a.info.Sigma - b.info.Sigma).max() <= TOL


def test_quadrature_engine_kernel_matches_series():
    X = _data(n=4)
    a = exact_ck(X, "tanh", SA, method="mehler")
    b = exact_ck(X, "tanh", SA, method="quadrature")
    assert b.info.quadrature_pairs == 6
    assert np.abs(a.ck - b.ck).max() <= TOL and np.abs(a.info.Gdot - b.info.Gdot).max() <= TOL


def test_series_threads_blocks_and_kmax():
    """Blocked/threaded series = serial; a small kmax sends more pairs to the quadrature."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((40, 300)) / math.sqrt(40)
    X[:, 1] = X[:, 0] + 0.3 * X[:, 2]
    a = exact_ck(X, "swish", SA, workers=1)
    b = exact_ck(X, "swish", SA, workers=2)
    assert np.array_equal(a.ck, b.ck) and np.array_equal(a.info.Gdot, b.info.Gdot)
    assert np.array_equal(a.info.Sigma, a.info.Sigma.T) and np.array_equal(a.ck, a.ck.T)
    Xs = X[:, :8]
    c = exact_ck(Xs, "swish", SA)
    d = exact_ck(Xs, "swish", SA, kmax=12)
    assert d.info.quadrature_pairs > c.info.quadrature_pairs
    assert np.abs(c.ck - d.ck).max() <= TOL and np.abs(c.info.Gdot - d.info.Gdot).max() <= TOL


def test_hermite_coefficients_of_a_polynomial_are_exact():
    # phi(x) = x + 0.5 x^2 at scale s: c_0 = 0.5 s^2, c_1 = s, c_2 = 0.5 s^2 sqrt(2), rest 0
    s = np.array([0.5, 1.7])
    C, m2 = hermite_coefficients("polynomial:0,1,0.5", s, 6)
    exact = np.zeros((2, 7))
    exact[:, 0], exact[:, 1], exact[:, 2] = 0.5 * s ** 2, s, 0.5 * s ** 2 * math.sqrt(2.0)
    assert np.abs(C - exact).max() <= 1e-14
    assert np.allclose(m2, np.sum(exact ** 2, axis=1), rtol=1e-14)


@pytest.mark.parametrize("spec", ACTIVATION_SPECS)
def test_one_dimensional_moments_match_gaussian_engine(spec):
    s = np.array([0.05, 0.3, 1.0, 2.5, 7.0])
    c = 0.2
    mine = one_dimensional_moments(spec, s, c)
    ref = gaussian_moments(spec, s)
    m = np.asarray(ref.mean)
    second = np.asarray(ref.second) - 2 * c * m + c * c
    scale = np.maximum(1.0, np.abs(second))
    assert np.all(np.abs(mine["mean"] - m) <= 1e-13 * np.maximum(1, np.abs(m)))
    assert np.all(np.abs(mine["e1"] - ref.e1) <= 1e-12 * np.maximum(1, np.abs(ref.e1)))
    assert np.all(np.abs(mine["m2"] - second) <= 1e-12 * scale)
    assert np.all(np.abs(mine["d2"] - ref.h0) <= 1e-12 * np.maximum(1, np.abs(ref.h0)))
    assert np.allclose(gaussian_mean(spec, s), m, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------------------
# NTK conventions
# ----------------------------------------------------------------------------------------
def test_ntk_groups_and_published_convention():
    X = _data()
    K = exact_ck(X, "tanh", SA)
    full = exact_ntk(X, "tanh", SA, ck=K)
    assert isinstance(full, Kernel) and full.selected == ("v", "A", "B")
    assert np.array_equal(full.ck, K.ck) and full.report is K.report   # the CK it came from
    va = exact_ntk(X, "tanh", SA, groups=("A", "v"), ck=K)
    assert va.selected == ("v", "A") and set(va.groups) == {"v", "A"}
    pub = published_ntk(X, "tanh", SA, ck=K)
    assert pub.selected == ("v", "A")
    assert np.abs(pub.ntk - va.ntk).max() <= 1e-14
    # the published closed form G / (1 - sa Gdot), to a few ulps
    closed = K.ck / (1.0 - SA * K.info.Gdot)
    assert np.all(np.abs(pub.ntk - closed) <= 8 * np.finfo(float).eps * np.abs(closed))
    assert np.abs(full.ntk - (va.ntk + full.groups["B"])).max() <= 1e-14
    B = full.groups["B"]
    assert np.all(np.abs(ntk_from_kernel(K, "B").ntk - B) <= 4 * np.finfo(float).eps * np.abs(B))
    # the NTK is symmetric positive semi-definite
    assert np.allclose(full.ntk, full.ntk.T, atol=1e-15)
    assert np.linalg.eigvalsh(full.ntk).min() > -1e-12
    # get= selects what comes back; groups without the NTK are refused
    only = exact_kernels(X, "tanh", SA, get="ntk", groups=("v", "A"))
    assert only.ck is None and np.abs(only.ntk - va.ntk).max() <= 1e-14
    with pytest.raises(InvalidParameterError, match="groups"):
        exact_kernels(X, "tanh", SA, get="ck", groups=("v",))
    with pytest.raises(UnknownOptionError):
        exact_kernels(X, "tanh", SA, get=("ck", "nngp"))
    # results are read-only
    with pytest.raises(ValueError):
        full.ntk[0, 0] = 1.0
    with pytest.raises(ValueError):
        K.info.Sigma[0, 0] = 1.0


def test_solution_and_tau0_options():
    X = _data()
    sol = solve_four_equations("relu", SA, 0.9)
    K = exact_ck(X, "relu", SA, solution=sol)
    assert K.solution is sol and K.tau0 == sol.tau0
    K2 = exact_ck(X, "relu", SA, tau0=0.9)
    assert np.abs(K.ck - K2.ck).max() <= 1e-15
    with pytest.raises(InvalidParameterError):
        exact_ck(X, "relu", 0.4, solution=sol)
    with pytest.raises(InvalidParameterError):
        exact_ck(X, "relu", SA, solution=sol, tau0=0.9)


def test_one_parameter_tolerance_for_recorded_variances():
    """A converged CK or a solution is accepted for an sa equal to its own up to rounding
    (relative 1e-12 of max(1, sa)), and refused beyond: the same rule for both."""
    X = _data()
    sol = solve_four_equations("relu", SA, 0.9)
    K = exact_ck(X, "relu", SA, solution=sol)
    near, far = SA * (1 + 1e-13), SA * (1 + 1e-9)
    np.testing.assert_array_equal(exact_ntk(X, "relu", near, 1 - SA, ck=K).ck, K.ck)
    exact_ck(X, "relu", near, 1 - SA, solution=sol)
    with pytest.raises(InvalidParameterError, match="another activation, sa or sb"):
        exact_ntk(X, "relu", far, 1 - SA, ck=K)
    with pytest.raises(InvalidParameterError, match="sa"):
        exact_ck(X, "relu", far, 1 - SA, solution=sol)
    with pytest.raises(InvalidParameterError, match="exact DEQ CK"):
        exact_ntk(X, "relu", SA, ck=K.ck)
    with pytest.raises(InvalidParameterError, match="no effect"):
        exact_ntk(X, "relu", SA, ck=K, tol=1e-8)


# ----------------------------------------------------------------------------------------
# (iii) failures
# ----------------------------------------------------------------------------------------
def test_failures_raise_specific_exceptions():
    X = _data()
    bad = X.copy()
    bad[2, 3] = np.nan
    with pytest.raises(NonFiniteInputError):
        exact_ck(bad, "relu", SA)
    with pytest.raises(ShapeMismatchError):
        exact_ck(X[:, 0], "relu", SA)
    with pytest.raises(UnknownOptionError):
        exact_ntk(X, "relu", SA, groups=("v", "C"))
    with pytest.raises(UnknownOptionError):
        exact_ntk(X, "relu", SA, bogus=1)
    with pytest.raises(UnknownOptionError, match="exact_ck"):
        exact_ck(X, "relu", SA, bogus=1)
    with pytest.raises(UnknownOptionError):
        exact_ck(X, "relu", SA, method="montecarlo")
    with pytest.raises(UnknownOptionError):
        exact_ck(X, "tanh", SA, method="closed")
    with pytest.raises(ConvergenceError) as info:
        exact_ck(X, "tanh", SA, max_iter=1)
    assert len(info.value.residuals) == 1
    with pytest.raises(ConvergenceError) as info:     # the off-diagonal Newton iteration
        exact_ck(X, "relu", SA, tol=1e-300, max_iter=4)
    assert len(info.value.residuals) == 4
    with pytest.raises(ConvergenceError):
        bivariate_expectation("relu", 1.0, 1.0, 0.9999, method="quadrature", tol=1e-30)
    # relu with sa = 2.5: the four equations are fine (sa g1 = 0.625, sa g4/2 = 0.85) but
    # sa E[phi'^2] = 1.25 >= 1
    with pytest.raises(NoFixedPointError):
        exact_ck(X, "relu", 2.5, 0.5)
    zero = X.copy()
    zero[:, 1] = 0.0
    with pytest.raises(InvalidParameterError):
        exact_ck(zero, "relu", SA)
    with pytest.raises(InvalidParameterError):
        PairExpectations("relu", [1.0, -1.0])
