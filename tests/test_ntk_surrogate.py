"""The NTK surrogate (docs/theory.md §5): the sympy derivation, the package's coefficients
against it, structure, the published convention, explicit networks, bad inputs, and
convergence to the exact infinite-width NTK on a small p range."""
from __future__ import annotations

import numpy as np
import pytest

from rmt_deq.metrics import relative_operator_distance
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError, UnknownOptionError
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.exact import exact_ntk, published_ntk
from rmt_deq.kernels.explicit import exact_explicit_kernels
from rmt_deq.kernels.explicit_surrogate import (explicit_network_coefficients,
                                                explicit_ntk_surrogate)
from rmt_deq.kernels.ntk_surrogate import (NTKCoefficients,
                                           mixture_ntk_surrogate,
                                           ntk_group_coefficients, ntk_surrogate_coefficients,
                                           ntk_surrogate_matrix, plugin_ntk_surrogate)
from rmt_deq.experiments.surrogates import explicit_ntk_convergence, ntk_surrogate_convergence
from rmt_deq.data.mixture import default_mixture
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate
from rmt_deq.kernels.result import Kernel
from rmt_deq.kernels.surrogate import SurrogateCoefficients

from conftest import load_derivation


ne = load_derivation("ntk_expansion")


@pytest.fixture(scope="module")
def derived():
    return ne.derived_coefficients()


@pytest.fixture(scope="module")
def case():
    mix = default_mixture(200, 2, rng=0)
    data = mix.sample(160, rng=1200)
    sol = solve_four_equations("tanh", 0.5, mix.statistics(data).tau0)
    return mix, data, sol


# ----------------------------------------------------------------------------------------
# the derivation
# ----------------------------------------------------------------------------------------
def test_expansion_has_only_surrogate_terms(derived):
    assert all(len(o) == 0 for o in derived["_other"].values()), derived["_other"]
    assert all(v == 0 for v in derived["_symmetry"].values())


def test_derived_equals_theory_table_and_published(derived):
    res = ne.table_residuals(derived)
    assert [k for k, v in res.items() if v != 0] == []
    assert {g for g, _ in res} >= {"v", "A", "B", "total", "v+A", "published"}


def test_gdot_series_remainder_orders():
    for name, t in ne.NUMERIC_CASES:
        r = ne.numeric_dphi_check(name, t)
        assert all(3.7 < q < 4.3 for q in r["ratios1"]), (name, r)
        assert all(7.5 < q < 8.5 for q in r["ratios2"]), (name, r)


def test_package_coefficients_equal_sympy(derived):
    for case_, err in ne.compare_package(derived).items():
        assert err < 1e-12, (case_, err)


@pytest.mark.parametrize("L", [1, 2, 3])
def test_explicit_network_recursion_is_the_expansion(L):
    res = ne.enn_residuals(L)
    assert [k for k, v in res.items() if v != 0] == []


def test_explicit_package_equals_sympy():
    for acts, err in ne.compare_enn_package().items():
        assert err < 1e-12, (acts, err)


# ----------------------------------------------------------------------------------------
# structure
# ----------------------------------------------------------------------------------------
def test_structure_and_consistency_with_ck(case):
    mix, data, sol = case
    sur = mixture_ntk_surrogate(mix, data, solution=sol)
    assert isinstance(sur, Kernel) and sur.selected == ("v", "A", "B")
    assert (sur.route, sur.network, sur.ck, sur.solution) == ("surrogate", "deq", None, sol)
    n = data.n
    for M in list(sur.groups.values()) + [sur.ntk]:
        assert M.shape == (n, n)
        np.testing.assert_array_equal(M, M.T)
    np.testing.assert_allclose(sur.ntk, sum(sur.groups.values()), rtol=0, atol=1e-13)
    # the readout group is the CK surrogate G~ of docs/theory.md §4
    ck = mixture_ck_surrogate(mix, data, solution=sol)
    np.testing.assert_allclose(sur.groups["v"], ck.ck, rtol=0, atol=1e-12)
    # SurrogateCoefficients (form "NTK") rebuild the same matrices
    for g in ("v", "A", "B", "total"):
        sc = sur.info.coefficients[g]
        assert isinstance(sc, SurrogateCoefficients) and sc.form == "NTK"
        ref = sur.ntk if g == "total" else sur.groups[g]
        np.testing.assert_allclose(sc.matrix(data.X, sur.info.V), ref, rtol=0, atol=1e-12)
    sc = ntk_surrogate_coefficients(sol, mix.statistics(data), groups=("v", "A"))
    gc = sur.info.group_coefficients
    assert sc.c1 == pytest.approx(gc["v"].c1 + gc["A"].c1)
    # the array builder is the Kernel's matrix (the twin of ck_surrogate_matrix)
    M = ntk_surrogate_matrix(data.X, data.labels, sol, mix.statistics(data), mix.psi(data))
    np.testing.assert_array_equal(M, sur.ntk)
    # coefficients add; c0 = theta_diag - c1 tau0^2
    c = ntk_group_coefficients(sol)
    tot = c["v"] + c["A"] + c["B"]
    for f in ("c1", "d2", "d3", "theta_diag", "c5", "theta_slope"):
        assert getattr(tot, f) == pytest.approx(getattr(c["total"], f), rel=1e-14)
    assert c["total"].c0 == pytest.approx(c["total"].theta_diag - c["total"].c1 * sol.tau0 ** 2)


def test_theory_table_values_relu():
    """Spot values against the section-5 formulas typed in independently."""
    sol = solve_four_equations("relu", 0.2, tau0=1.0)
    c = ntk_group_coefficients(sol)
    g1, g2, a1, a4, sa = sol.g1, sol.g2, sol.alpha1, sol.alpha4, sol.sa
    r = 1 - sa * g1
    h0, V0 = sol.moments.h0, sol.moments.V0
    assert c["total"].c1 == pytest.approx(a1 * g1 * (2 - sa * g1) / r, rel=1e-14)
    assert c["total"].d2 == pytest.approx(g2 * a4 ** 2 / (4 * r * r), rel=1e-14)
    assert c["total"].d3 == pytest.approx(3 * g2 * a1 ** 2 / (2 * r * r), rel=1e-14)
    assert c["total"].theta_diag == pytest.approx(V0 + sol.tau ** 2 * h0 / (1 - sa * h0),
                                                  rel=1e-13)
    assert c["total"].c5 == 0.0            # relu: E[phi'''] = 0


def test_published_convention(case):
    mix, data, sol = case
    pub = mixture_ntk_surrogate(mix, data, solution=sol, groups=("v", "A"))
    assert pub.selected == ("v", "A") and pub.info.group_coefficients["total"].label == "v+A"
    c = pub.info.group_coefficients["total"]
    r, q = 1 - sol.sa * sol.g1, 1 - sol.sa * sol.moments.h0
    assert c.c1 == pytest.approx(sol.g1 * sol.alpha1 / r, rel=1e-14)
    assert c.theta_diag == pytest.approx(sol.moments.V0 / q, rel=1e-14)
    exact = published_ntk(data.X, "tanh", sol.sa, solution=sol).ntk
    full = exact_ntk(data.X, "tanh", sol.sa, solution=sol)
    np.testing.assert_allclose(exact, full.groups["v"] + full.groups["A"], atol=1e-12)
    assert relative_operator_distance(pub.ntk, exact) < 0.12


def test_refine_and_centred_options(case):
    mix, data, sol = case
    plain = mixture_ntk_surrogate(mix, data, solution=sol)
    ref = mixture_ntk_surrogate(mix, data, solution=sol, refine=True)
    exact = exact_ntk(data.X, "tanh", sol.sa, solution=sol).ntk
    e_plain = relative_operator_distance(plain.ntk, exact)
    assert relative_operator_distance(ref.ntk, exact) < 0.5 * e_plain
    # the centred T° (published) loses the O(1) constant block d3 s2 (1/p) 1 1^T (relu:
    # g2 != 0; for tanh d3 = 0 and the conventions coincide)
    relu = solve_four_equations("relu", 0.5, sol.tau0)
    ex_relu = exact_ntk(data.X, "relu", 0.5, solution=relu).ntk
    unc = mixture_ntk_surrogate(mix, data, solution=relu)
    cen = mixture_ntk_surrogate(mix, data, solution=relu, T_convention="centred")
    assert relative_operator_distance(cen.ntk, ex_relu) > relative_operator_distance(
        unc.ntk, ex_relu) + 0.02
    # refine adds c5 (x_i.x_j)(delta_i + delta_j) and the first-order diagonal
    c = plain.info.group_coefficients["B"]
    P = data.X.T @ data.X
    dl = np.diag(P) - mix.statistics(data).tau0 ** 2
    extra = c.c5 * (dl[:, None] * P + P * dl[None, :])
    np.fill_diagonal(extra, (c.theta_slope - c.c1) * dl)
    np.testing.assert_allclose(ref.groups["B"] - plain.groups["B"], extra, atol=1e-12)


def test_plugin_close_to_mixture(case):
    mix, data, sol = case
    a = mixture_ntk_surrogate(mix, data, "tanh", 0.5)
    b = plugin_ntk_surrogate(data.X, data.labels, "tanh", 0.5)
    assert b.info.plugin is not None and b.tau0_source == "plug-in from labels"
    assert relative_operator_distance(b.ntk, a.ntk) < 0.03


# ----------------------------------------------------------------------------------------
# explicit networks
# ----------------------------------------------------------------------------------------
def test_explicit_network_structure(case):
    mix, data, _ = case
    net = explicit_network_coefficients(["relu", "tanh"], 1.0)
    assert net.L == 2 and net.group_names == ("v", "W1", "W2")
    # one layer: the CK coefficients are the moments of docs/theory.md §6
    one = explicit_network_coefficients("relu", 1.3)
    m = one.layers[0].moments
    assert one.ck.c1 == pytest.approx(m.g1) and one.ck.d3 == pytest.approx(m.g2 / 2)
    assert one.ck.d2 == pytest.approx(m.g2 / 4) and one.ck.theta_diag == pytest.approx(m.V0)
    # W1 of a one-layer network: (X^T X) o Kdot_1 -> c1 = g1, theta_diag = h0 tau0^2
    assert one.groups["W1"].c1 == pytest.approx(m.g1)
    assert one.groups["W1"].theta_diag == pytest.approx(m.h0 * 1.3 ** 2)
    sur = explicit_ntk_surrogate(mix, data, ["relu", "relu"], groups=("v", "W2"))
    assert sur.selected == ("v", "W2") and sur.solution is None and sur.info.network.L == 2
    assert sur.route == "surrogate" and sur.network == "explicit"
    np.testing.assert_array_equal(sur.ck, sur.groups["v"])
    ex = exact_explicit_kernels(data.X, ["relu", "relu"], tau0=mix.statistics(data).tau0)
    np.testing.assert_allclose(ex.ntk, ex.groups["v"] + ex.groups["W1"] + ex.groups["W2"],
                               atol=1e-12)
    # NTK recursion Theta_l = K_l + Theta_{l-1} o Kdot_l
    K, Kd = ex.info.layers, ex.info.derivatives
    th1 = K[1] + K[0] * Kd[0]
    np.testing.assert_allclose(ex.ntk, K[2] + th1 * Kd[1], atol=1e-12)
    np.testing.assert_array_equal(ex.ck, K[2])
    pl = explicit_ntk_surrogate(None, None, ["relu"], X=data.X, labels=data.labels)
    assert pl.info.plugin is not None


def test_explicit_network_converges():
    rec = explicit_ntk_convergence(["relu", "tanh"], (100, 200, 400), workers=1)
    for g in ("v", "W1", "W2", "total"):
        errs = [r.errors[g] for r in rec.rows]
        assert errs[0] > errs[1] > errs[2], (g, errs)
        assert rec.slopes[g].value < -0.4, (g, rec.slopes)


# ----------------------------------------------------------------------------------------
# convergence to the exact NTK
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("act,sa", [("relu", 0.2), ("tanh", 0.5), ("swish", 0.2)])
def test_errors_decrease_with_p(act, sa):
    rec = ntk_surrogate_convergence(act, sa, (100, 200, 400), workers=1)
    for g in ("v", "A", "B", "total", "v+A"):
        for key in ("errors", "errors_refined"):
            errs = [getattr(r, key)[g] for r in rec.rows]
            assert errs[0] > errs[1] > errs[2], (act, g, key, errs)
        # p <= 400 is pre-asymptotic for the B group of kinked/ReLU-like phi (the full
        # range 200..1600 of the ntk_convergence figure gives slopes <= -0.55)
        assert rec.slopes[g].value < -0.3, (act, g, rec.slopes)
        assert rec.slopes_refined[g].value < -0.4, (act, g, rec.slopes_refined)
    assert rec.slopes["total"].value < -0.4, rec.slopes
    assert rec.rows[-1].errors["total"] < 0.08


# ----------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------
def test_bad_input(case):
    mix, data, sol = case
    with pytest.raises(UnknownOptionError):
        mixture_ntk_surrogate(mix, data, solution=sol, groups=("v", "C"))
    with pytest.raises(InvalidParameterError):
        mixture_ntk_surrogate(mix, data, solution=sol, groups=())
    with pytest.raises(UnknownOptionError):
        mixture_ntk_surrogate(mix, data, solution=sol, T_convention="published")
    with pytest.raises(InvalidParameterError):
        mixture_ntk_surrogate(mix, data, solution=sol, refine="yes")
    with pytest.raises(InvalidParameterError):
        ntk_group_coefficients("tanh")
    wrong = solve_four_equations("tanh", 0.5, tau0=2.0)
    with pytest.raises(InvalidParameterError):
        mixture_ntk_surrogate(mix, data, solution=wrong)
    with pytest.raises(InvalidParameterError):
        mixture_ntk_surrogate(mix, data)               # neither activation nor solution
    with pytest.raises(InvalidParameterError):
        explicit_network_coefficients([], 1.0)
    with pytest.raises(InvalidParameterError):
        explicit_network_coefficients(["relu"], -1.0)
    with pytest.raises(UnknownOptionError):
        explicit_ntk_surrogate(mix, data, ["relu", "relu"], groups=("W3",))
    with pytest.raises(InvalidParameterError):
        explicit_ntk_surrogate(mix, None, ["relu"])
    c = ntk_group_coefficients(sol)["total"]
    with pytest.raises(ShapeMismatchError):
        c.matrix(data.X, mix.V(data)[:, :2], mix.statistics(data))
    with pytest.raises(ShapeMismatchError):
        ntk_surrogate_matrix(data.X, data.labels[:-1], sol, mix.statistics(data), mix.psi(data))
    with pytest.raises(InvalidParameterError):
        NTKCoefficients("x", 1, 0, 0, 1, 0, 0, tau0=1.0) + NTKCoefficients(
            "y", 1, 0, 0, 1, 0, 0, tau0=2.0)
