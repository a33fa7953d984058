"""The CK surrogate of docs/theory.md §4: structure, the linear case, bad inputs and
convergence to the exact infinite-width CK."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_deq.errors import (InvalidParameterError, NonFiniteInputError, ShapeMismatchError,
                            UnknownOptionError)
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.data.mixture import GaussianMixture
from rmt_deq.data.statistics import class_indicators
from rmt_deq.kernels.ck_surrogate import (ck_surrogate_coefficients, ck_surrogate_matrix,
                                          mixture_ck_surrogate, plugin_ck_surrogate)
from rmt_deq.kernels.result import Kernel
from rmt_deq.kernels.surrogate import SurrogateCoefficients, SurrogateDetails


def _mixture(p: int, seed: int = 0, *, scalar_covs: bool = False) -> GaussianMixture:
    """Two classes with distinct means and covariances, in the regime of docs/theory.md §1:
    ||mu_a|| = O(1), ||C_a|| = O(1) and tr(C_a°) = O(sqrt p) (so that t = O(1)).

    Default: diagonal covariances whose values differ on random halves of the coordinates
    (C° not a multiple of I) with traces differing by 3 sqrt(p); ``scalar_covs``: C_a = s_a I
    with s_a = 1 -+ 1.5/sqrt(p) (C° ∝ I).
    """
    rng = np.random.default_rng(seed)
    means = np.zeros((2, p))
    means[0, 0], means[1, 1] = 2.5, -2.0
    if scalar_covs:
        covs = np.stack([np.full(p, 1 - 1.5 / math.sqrt(p)), np.full(p, 1 + 1.5 / math.sqrt(p))])
    else:
        h = rng.permutation(np.repeat([1.0, -1.0], [p - p // 2, p // 2]))
        covs = np.stack([1 + 0.4 * h, (1 - 0.3 * h) * (1 + 3 / math.sqrt(p))])
    return GaussianMixture(means, covs, [0.4, 0.6])


@pytest.fixture(scope="module")
def relu_case():
    mix = _mixture(120, 1)
    s = mix.sample(96, 2)
    stats = mix.statistics(s)
    sol = solve_four_equations("relu", 0.2, tau0=stats.tau0)
    return mix, s, stats, sol


def test_structure_and_both_forms(relu_case):
    mix, s, stats, sol = relu_case
    psi = mix.psi(s)
    G = ck_surrogate_matrix(s.X, s.labels, sol, stats, psi, form="G")
    S = ck_surrogate_matrix(s.X, s.labels, sol, stats, psi, form="Sigma")
    assert G.shape == S.shape == (96, 96)
    np.testing.assert_array_equal(G, G.T)
    np.testing.assert_array_equal(S, S.T)
    XtX = s.X.T @ s.X
    np.testing.assert_allclose(G, (S - sol.sb * XtX) / sol.sa, rtol=1e-12, atol=1e-12)
    # the convenience gives the same matrices, and both forms at once
    res = mixture_ck_surrogate(mix, s, "relu", 0.2)
    assert isinstance(res, Kernel) and isinstance(res.info, SurrogateDetails)
    assert (res.route, res.network, res.ntk, res.info.plugin) == ("surrogate", "deq", None, None)
    assert res.tau0 == stats.tau0 and res.tau0_source == "mixture statistics"
    np.testing.assert_allclose(res.ck, G, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(res.info.Sigma, S, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(mixture_ck_surrogate(mix, s, solution=sol).ck, G, atol=1e-13)
    np.testing.assert_allclose(mixture_ck_surrogate(mix, s, sol).ck, G, atol=1e-13)
    # the coefficients of both forms rebuild the matrices; everything is read-only
    for form, M in (("G", res.ck), ("Sigma", res.info.Sigma)):
        np.testing.assert_allclose(res.info.coefficients[form].matrix(s.X, res.info.V), M,
                                   rtol=0, atol=1e-13)
    for a in (res.ck, res.info.Sigma, res.info.V, res.info.psi):
        with pytest.raises(ValueError):
            a[0] = 0.0


def test_entrywise_formula(relu_case):
    """Sigma~_ij written out entry by entry, against the matrix implementation."""
    mix, s, stats, sol = relu_case
    psi = mix.psi(s)
    S = ck_surrogate_matrix(s.X, s.labels, sol, stats, psi, form="Sigma")
    p, n = s.X.shape
    a1, a2, a3 = sol.alpha1, sol.alpha2, sol.alpha3
    t, T, lab = stats.t, stats.T, s.labels
    ref = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            a, b = lab[i], lab[j]
            ref[i, j] = (a1 * s.X[:, i] @ s.X[:, j]
                         + (a2 * t[a] * t[b] + a3 * T[a, b]) / p
                         + a2 * (t[a] * psi[j] + psi[i] * t[b]) / math.sqrt(p)
                         + a2 * psi[i] * psi[j])
        ref[i, i] += sol.tau ** 2 - sol.tau0 ** 2 * a1
    np.testing.assert_allclose(S, ref, rtol=1e-12, atol=1e-13)


def test_coefficients(relu_case):
    _, _, stats, sol = relu_case
    cS = ck_surrogate_coefficients(sol, stats, form="Sigma")
    cG = ck_surrogate_coefficients(sol, stats, form="G")
    assert isinstance(cS, SurrogateCoefficients) and cS.K == 2
    assert cS.c1 == pytest.approx(sol.alpha1, rel=1e-15)
    assert cS.c0 == pytest.approx(sol.tau ** 2 - sol.tau0 ** 2 * sol.alpha1, rel=1e-14)
    t = stats.t
    np.testing.assert_allclose(cS.A[:2, :2], sol.alpha2 * np.outer(t, t) + sol.alpha3 * stats.T,
                               rtol=1e-14)
    np.testing.assert_allclose(cS.A[:2, 2], sol.alpha2 * t, rtol=1e-14)
    np.testing.assert_allclose(cS.A[2, :2], sol.alpha2 * t, rtol=1e-14)
    assert cS.A[2, 2] == pytest.approx(sol.alpha2)
    assert cG.c1 == pytest.approx((sol.alpha1 - sol.sb) / sol.sa, rel=1e-14)
    assert cG.c0 == pytest.approx(cS.c0 / sol.sa, rel=1e-14)
    np.testing.assert_allclose(cG.A, cS.A / sol.sa, rtol=1e-14)
    assert (cS.form, cG.form, cS.T_convention) == ("Sigma", "G", "uncentred")
    with pytest.raises(ValueError):
        cS.A[0, 0] = 1.0  # read-only


@pytest.mark.parametrize("form", ["G", "Sigma"])
def test_centred_vs_uncentred(relu_case, form):
    """The two conventions differ exactly by alpha3 J (T - T°) J^T / p (over sa for G)."""
    mix, s, stats, sol = relu_case
    psi = mix.psi(s)
    unc = ck_surrogate_matrix(s.X, s.labels, sol, stats, psi, form=form)
    cen = ck_surrogate_matrix(s.X, s.labels, sol, stats, psi, form=form, T_convention="centred")
    J = class_indicators(s.labels, 2)
    diff = sol.alpha3 * J @ (stats.T - stats.T_centred) @ J.T / s.p
    if form == "G":
        diff /= sol.sa
    np.testing.assert_allclose(unc - cen, diff, rtol=1e-10, atol=1e-13)
    assert np.linalg.norm(diff, 2) > 1e-2  # an O(1) block, not a rounding difference


def test_constant_block_when_Cbar_is_isotropic():
    """C_a = s_a I (so C° ∝ I): T - T° = s2 1 1^T + sbar2 (t_a + t_b)/sqrt(p), the cross
    terms tr(C° C_b°)/p vanishing like p^{-1/2}; the centred formula loses alpha3 s2 11^T/p."""
    mix = _mixture(200, scalar_covs=True)
    s = mix.sample(160, 3)
    st = mix.statistics(s)
    sbar2 = st.tau0 ** 2
    np.testing.assert_allclose(st.s2, sbar2 ** 2, rtol=1e-13)
    cross = sbar2 * (st.t[:, None] + st.t[None, :]) / math.sqrt(s.p)
    np.testing.assert_allclose(st.T - st.T_centred, st.s2 + cross, rtol=1e-12)
    sol = solve_four_equations("relu", 0.2, tau0=st.tau0)
    res_u = mixture_ck_surrogate(mix, s, sol)
    res_c = mixture_ck_surrogate(mix, s, sol, T_convention="centred")
    gap = np.linalg.norm(res_u.ck - res_c.ck, 2)
    # dominant part: alpha3 s2 11^T/p / sa, of norm (n/p) alpha3 s2 / sa
    const = s.n / s.p * sol.alpha3 * st.s2 / sol.sa
    assert abs(gap - const) < 0.2 * const


@pytest.mark.parametrize("sa,sb", [(0.3, None), (0.3, 0.5), (0.6, 1.2)])
def test_linear_activation_is_exact(sa, sb):
    """phi(x) = x: phi_c = x, G = Sigma, so Sigma = sa Sigma + sb X^T X, i.e. the exact CK is
    Sigma = G = sb X^T X/(1 - sa) -- including the diagonal.  The four equations give
    alpha1 = sb/(1 - sa), alpha2 = alpha3 = 0 (g2 = 0), tau^2 = sb tau0^2/(1 - sa), so
    c0 = tau^2 - tau0^2 alpha1 = 0 and the surrogate is exact."""
    mix = _mixture(80, 4)
    s = mix.sample(64, 5)
    stats = mix.statistics(s)
    sol = solve_four_equations("polynomial:0,1", sa, tau0=stats.tau0, sb=sb)
    sb_ = 1 - sa if sb is None else sb
    assert sol.alpha2 == 0 and sol.alpha3 == 0
    assert sol.alpha1 == pytest.approx(sb_ / (1 - sa), rel=1e-14)
    exact = sb_ * (s.X.T @ s.X) / (1 - sa)
    res = mixture_ck_surrogate(mix, s, sol)
    scale = np.abs(exact).max()
    np.testing.assert_allclose(res.info.Sigma, exact, rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(res.ck, exact, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(np.diag(res.ck), sb_ * np.sum(s.X ** 2, 0) / (1 - sa),
                               rtol=1e-12)
    assert abs(res.info.coefficients["Sigma"].c0) < 1e-14 * sol.tau ** 2
    # plug-in statistics: same (psi, T and t drop out with alpha2 = alpha3 = 0)
    res_p = plugin_ck_surrogate(s.X, s.labels, "polynomial:0,1", sa, sb)
    np.testing.assert_allclose(res_p.ck, exact, rtol=0, atol=1e-12 * scale)


def test_plugin_surrogate_close_to_exact_statistics():
    mix = _mixture(300, 6)
    s = mix.sample(240, 7)
    exact = mixture_ck_surrogate(mix, s, "relu", 0.2)
    plug = plugin_ck_surrogate(s.X, s.labels, "relu", 0.2)
    assert plug.info.plugin is not None and plug.info.plugin.statistics.K == 2
    assert plug.tau0_source == "plug-in from labels"
    rel = np.linalg.norm(exact.ck - plug.ck, 2) / np.linalg.norm(exact.ck, 2)
    # differences come from O(n_a^{-1/2}) errors in t, T, psi and tau0: a few percent
    assert rel < 0.05
    # any labels work, and the low-level function accepts them too
    names = np.where(s.labels == 0, "a", "b")
    plug2 = plugin_ck_surrogate(s.X, names, solution=plug.solution)
    np.testing.assert_allclose(plug2.ck, plug.ck, rtol=1e-13, atol=1e-13)
    G3 = ck_surrogate_matrix(s.X, names, plug.solution, plug.info.statistics, plug.info.psi)
    np.testing.assert_allclose(G3, plug.ck, rtol=1e-13, atol=1e-13)


def test_tau0_mismatch(relu_case):
    mix, s, stats, sol = relu_case
    psi = mix.psi(s)
    other = solve_four_equations("relu", 0.2, tau0=1.1 * stats.tau0)
    with pytest.raises(InvalidParameterError, match="tau0"):
        ck_surrogate_matrix(s.X, s.labels, other, stats, psi)
    with pytest.raises(InvalidParameterError, match="tau0"):
        mixture_ck_surrogate(mix, s, other)
    G = ck_surrogate_matrix(s.X, s.labels, other, stats, psi, allow_tau0_mismatch=True)
    c = ck_surrogate_coefficients(other, stats, allow_tau0_mismatch=True)
    assert c.c0 == pytest.approx((other.tau ** 2 - other.tau0 ** 2 * other.alpha1) / 0.2)
    assert np.all(np.isfinite(G))


def test_bad_inputs(relu_case):
    mix, s, stats, sol = relu_case
    psi = mix.psi(s)
    X, lab = s.X, s.labels
    with pytest.raises(ShapeMismatchError):
        ck_surrogate_matrix(X, lab[:-1], sol, stats, psi)
    with pytest.raises(ShapeMismatchError):
        ck_surrogate_matrix(X, lab, sol, stats, psi[:-1])
    with pytest.raises(ShapeMismatchError):
        ck_surrogate_matrix(X[:-1], lab, sol, stats, psi)  # p differs from the statistics
    with pytest.raises(ShapeMismatchError, match="class sizes"):
        ck_surrogate_matrix(X, np.arange(96) % 2, sol, stats, psi)  # 48/48 instead of 38/58
    with pytest.raises(ShapeMismatchError):
        ck_surrogate_matrix(X, np.arange(96) % 3, sol, stats, psi)  # 3 classes, K = 2
    Xn = np.array(X)
    Xn[0, 0] = np.nan
    with pytest.raises(NonFiniteInputError):
        ck_surrogate_matrix(Xn, lab, sol, stats, psi)
    psin = psi.copy()
    psin[3] = np.inf
    with pytest.raises(NonFiniteInputError):
        ck_surrogate_matrix(X, lab, sol, stats, psin)
    with pytest.raises(UnknownOptionError):
        ck_surrogate_matrix(X, lab, sol, stats, psi, form="K")
    with pytest.raises(UnknownOptionError):
        ck_surrogate_matrix(X, lab, sol, stats, psi, T_convention="published")
    with pytest.raises(InvalidParameterError):
        ck_surrogate_matrix(X, lab, {"alpha1": 1.0}, stats, psi)
    with pytest.raises(InvalidParameterError):
        ck_surrogate_matrix(X, lab, sol, {"t": [0, 0]}, psi)
    with pytest.raises(InvalidParameterError):
        mixture_ck_surrogate(mix, s)  # neither solution nor activation
    with pytest.raises(InvalidParameterError):
        mixture_ck_surrogate(mix, s, "relu", 0.2, solution=sol)
    with pytest.raises(InvalidParameterError):
        mixture_ck_surrogate(mix, s, "relu")  # no sa
    with pytest.raises(ShapeMismatchError):
        mixture_ck_surrogate(_mixture(50), s, sol)  # sample of another mixture
    one = np.array(lab)
    one[0] = 5
    with pytest.raises(InvalidParameterError, match="sample"):
        plugin_ck_surrogate(X, one, "relu", 0.2)


# ----------------------------------------------------------------- against the exact CK
from rmt_deq.kernels.exact import exact_ck  # noqa: E402

def test_linear_surrogate_equals_exact_ck():
    mix = _mixture(60, 8)
    s = mix.sample(48, 9)
    res = mixture_ck_surrogate(mix, s, "polynomial:0,1", 0.3)
    ex = exact_ck(s.X, "polynomial:0,1", 0.3, solution=res.solution)
    scale = np.abs(ex.ck).max()
    np.testing.assert_allclose(res.ck, ex.ck, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(res.info.Sigma, ex.info.Sigma, rtol=0, atol=1e-8 * scale)


def test_relu_surrogate_converges_to_exact_ck():
    """||G - G~|| / ||G|| decreases from p = 100 to p = 400 (n = 0.8 p, relu, sa = 0.2),
    at about the rate p^{-1/2}; the published centred-T formula stays several times
    worse (its O(1) block does not vanish)."""
    errs, errs_centred = {}, {}
    for p in (100, 400):
        mix = _mixture(p, 10)
        s = mix.sample(int(0.8 * p), 11)
        res = mixture_ck_surrogate(mix, s, "relu", 0.2)
        cen = mixture_ck_surrogate(mix, s, res.solution, T_convention="centred")
        ex = exact_ck(s.X, "relu", 0.2, solution=res.solution)
        norm = np.linalg.norm(ex.ck, 2)
        errs[p] = np.linalg.norm(ex.ck - res.ck, 2) / norm
        errs_centred[p] = np.linalg.norm(ex.ck - cen.ck, 2) / norm
    assert errs[400] < 0.7 * errs[100]  # p^{-1/2} would give 0.5
    assert errs[400] < 0.05
    # the centred formula misses an O(1) block: clearly worse at p = 400
    assert errs_centred[400] > 1.5 * errs[400]
