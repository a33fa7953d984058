"""Runs the sympy derivations in derivations/ and checks their symbolic and numerical claims.

Symbolic claims are asserted as exact zeros (simplify(a - b) == 0); numerical ones against
rmt_deq at the tolerances stated in each derivation.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import DERIVATIONS as DERIV, load_derivation


common = load_derivation("_common")
stein = load_derivation("stein")
cm = load_derivation("closed_moments")
ck = load_derivation("ck_expansion")
fe = load_derivation("four_equations")
is_zero = common.is_zero


def _all_zero(d: dict) -> list:
    """Keys whose value is not symbolically zero (empty when all vanish)."""
    return [k for k, v in d.items() if not is_zero(v)]


# ----------------------------------------------------------------------------------------
# (a) Stein / Hermite identities, heat equation
# ----------------------------------------------------------------------------------------
def test_rodrigues_and_package_hermite():
    assert _all_zero(stein.rodrigues(8)) == []
    assert _all_zero(stein.package_hermite()) == []


def test_rodrigues_recurrence_symbolic_k():
    r = stein.rodrigues_recurrence_symbolic_k()
    assert is_zero(r["symbolic"]) and is_zero(r["R0"])
    assert _all_zero(r["He"]) == []


def test_stein_all_orders_by_induction():
    assert is_zero(stein.stein_induction_step())
    assert _all_zero(stein.chain_rule(3)) == []
    assert stein.boundary_limits() == (0, 0)


def test_k_fold_integration_by_parts():
    for k, res in stein.integration_by_parts(3).items():
        assert is_zero(res["dB_minus_integrand"]), k
        assert res["boundary_polynomial_times_pdf"], k


def test_stein_on_test_functions():
    res = stein.stein_on_family(3)
    assert {name for name, _ in res} == {"poly5", "exp", "kink", "relu"}
    assert _all_zero(res) == []


def test_centred_square_and_g4_assembly():
    assert _all_zero(stein.centred_square()) == []


def test_heat_equation():
    assert is_zero(stein.heat_equation_integrand())
    assert _all_zero(stein.heat_on_family()) == []
    assert _all_zero(stein.heat_series()) == []
    assert _all_zero(stein.tau_map_derivative()) == []


def test_tau_map_derivative_numeric():
    for name, err in stein.tau_map_numeric().items():
        assert err < 1e-9, (name, err)


# ----------------------------------------------------------------------------------------
# (b) closed-form moments
# ----------------------------------------------------------------------------------------
def test_monomial_antiderivative_agrees_with_sympy_integrate():
    import sympy as sp
    c = sp.Symbol("c", positive=True)
    y, w, tau = common.y, common.w, common.tau
    for j in (0, 1, 3, 4):
        for lo, hi in ((-c, c), (c, sp.oo)):
            ours = common._F_at(j, hi) - common._F_at(j, lo)
            assert is_zero(ours - sp.integrate(y ** j * w, (y, lo, hi))), (j, lo, hi)
    # the full-line moments are tau^j (j-1)!!
    assert common._F_at(4, sp.oo) - common._F_at(4, -sp.oo) == 3 * tau ** 4


@pytest.fixture(scope="module")
def derived():
    return cm.derived_all()


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "hard_tanh", "quadratic", "erf"])
def test_closed_forms_match_compact_expressions(derived, name):
    nice = cm.nice_forms()[name]
    assert [k for k in cm.RAW_KEYS if not is_zero(derived[name][k] - nice[k])] == []


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "hard_tanh"])
def test_stein_route_agrees_for_kinked(derived, name):
    st = cm.stein_route(name)
    assert [k for k in st if not is_zero(st[k] - derived[name][k])] == []


def test_quadratic_is_special_cubic(derived):
    sub = {cm.cs_[0]: 0, cm.cs_[1]: cm.a_, cm.cs_[2]: cm.b_, cm.cs_[3]: 0}
    assert [k for k in cm.RAW_KEYS
            if not is_zero(derived["cubic"][k].subs(sub) - derived["quadratic"][k])] == []


def test_cubic_against_gaussian_moments(derived):
    # E[xi^n] = (n-1)!!: the cubic's moments are polynomials in tau and the coefficients
    c0, c1, c2, c3 = cm.cs_
    t = common.tau
    assert is_zero(derived["cubic"]["phi"] - (c0 + c2 * t ** 2))
    assert is_zero(derived["cubic"]["He1_phi"] - t * (c1 + 3 * c3 * t ** 2))
    assert is_zero(derived["cubic"]["He3_phi"] - 6 * c3 * t ** 3)


def test_erf_derivation_obligations():
    e = cm.erf_moments()
    assert _all_zero(e["checks"]) == []


@pytest.fixture(scope="module")
def package_comparison(derived):
    return cm.compare_with_package(derived)


@pytest.mark.parametrize("spec", list(cm.NUMERIC_CASES))
@pytest.mark.parametrize("method", ["closed", "quadrature"])
def test_package_raw_moments_match_derivation(package_comparison, spec, method):
    max_rel, max_abs, worst = package_comparison[spec][method]
    assert max_rel <= 1e-12, (spec, method, max_rel, worst)
    assert max_abs <= 1e-14, (spec, method, max_abs)


# ----------------------------------------------------------------------------------------
# (c) the CK expansion
# ----------------------------------------------------------------------------------------
def test_price_heat_and_mehler():
    assert all(v == 0 for v in ck.density_pdes().values())
    mc = ck.mehler_check(3)
    assert mc["poly"] == 0 and is_zero(mc["exp"])


def test_offdiagonal_second_order():
    M, S, di, dj = ck.M, ck.S, ck.di, ck.dj
    extra = ck.second_order_extra()
    assert is_zero(extra - M[1] * M[3] * (di + dj) * S / 2)
    ser = ck.offdiag_series(2)
    expected = (M[1] ** 2 * S + M[2] ** 2 / 4 * di * dj + M[2] ** 2 / 2 * S ** 2
                + M[1] * M[3] / 2 * (di + dj) * S)
    assert is_zero(ser - expected)


def test_diagonal_and_alpha4():
    diag, Hs = ck.diagonal_series(1)
    assert is_zero(diag - (Hs[0] + Hs[2] / 2 * ck.di))
    assert is_zero(ck.alpha4_from_diagonal()["residual"])


@pytest.mark.parametrize("name,t", ck.NUMERIC_CASES)
def test_expansion_remainder_is_third_order(name, t):
    r = ck.numeric_check(name, t)
    for ratio in r["ratios"]:
        assert 7.6 < ratio < 8.4, r
    for q in r["R_over_third_order"]:
        assert abs(q - 1) < 0.05, r
    if abs(r["m1m3"]) > 1e-3:      # the dropped (d_i + d_j) S term is really second order
        for ratio in r["kept_only_ratios"]:
            assert 3.6 < ratio < 4.4, r
    d = ck.numeric_diagonal(name, t)
    for ratio in d["ratios"]:
        assert 3.8 < ratio < 4.2, d
    for q in d["R_over_second_order"]:
        assert abs(q - 1) < 0.05, d


def test_dropped_term_vanishes_in_operator_norm():
    demo = ck.operator_norm_demo((150, 600))
    small, big = demo[150], demo[600]
    assert big["DS+SD"] < 0.75 * small["DS+SD"]
    for key in ("ddT", "SoS"):
        assert 0.7 < big[key] / small[key] < 1.4, (key, demo)


# ----------------------------------------------------------------------------------------
# (d) the four equations
# ----------------------------------------------------------------------------------------
def test_coefficient_matching_gives_theory_alphas():
    assert _all_zero(fe.matching_residuals()) == []


def test_relu_closed_form_matches_solver():
    assert fe.compare_relu() < 1e-13


def test_matched_alphas_match_solver():
    for act, r in fe.compare_solver().items():
        assert r["alpha_rel_err"] < 1e-13, (act, r)
        assert r["tau_residual"] < 1e-13, (act, r)


def test_scripts_run_standalone():
    out = subprocess.run([sys.executable, str(DERIV / "four_equations.py")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "matched = docs/theory.md (alpha1..alpha3; alpha5 is the dropped term): True" in out.stdout
