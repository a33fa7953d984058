"""The moment table (engine "table"): against mpmath, its fallbacks, and its use by the solver."""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import special

from rmt_deq.activations import Activation, get_activation, register_activation
from rmt_deq.errors import UnknownOptionError
from rmt_deq.fixed_point._tau_root import scan_uniqueness
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.moments.gaussian import gaussian_moments, mp_gaussian_moments, raw_moments
from rmt_deq.moments.table import TABLE_TAU_RANGE, moment_table
from rmt_deq.moments.series import series_for

FIELDS = ("mean", "second", "V0", "e1", "e2", "e3", "h0", "h2", "g4")
REL, ABS = 1e-12, 1e-14          # the tolerances of tests/test_moments.py
LO, HI = TABLE_TAU_RANGE


def _erf_user() -> Activation:
    """An erf-like user callable (scaled, shifted erf) with its mpmath twin."""
    return Activation.from_callable(lambda x: 1.3 * special.erf(0.8 * x) + 0.1,
                                    name="user_erf",
                                    mp_fn=lambda x: 1.3 * mp.erf(0.8 * x) + 0.1)


def _kinked_user() -> Activation:
    """min(tanh x, 1/2): a kink at atanh(1/2), declared."""
    k = math.atanh(0.5)
    return Activation.from_callable(
        lambda x: np.minimum(np.tanh(x), 0.5), name="user_capped_tanh",
        derivative=lambda x: np.where(x < k, 1.0 - np.tanh(x) ** 2, 0.0), kinks=(k,),
        mp_fn=lambda x: min(mp.tanh(x), mp.mpf(0.5)),
        mp_derivative=lambda x: 1 - mp.tanh(x) ** 2 if x < k else mp.mpf(0))


def _abs_user() -> Activation:
    """|x| + tanh(x)/10: phi' jumps at 0 (declared), like relu but without closed forms."""
    return Activation.from_callable(
        lambda x: np.abs(x) + 0.1 * np.tanh(x), name="user_abs",
        derivative=lambda x: np.sign(x) + 0.1 * (1.0 - np.tanh(x) ** 2), kinks=(0.0,),
        mp_fn=lambda x: abs(x) + mp.tanh(x) / 10,
        mp_derivative=lambda x: mp.sign(x) + (1 - mp.tanh(x) ** 2) / 10)


def _make(spec):
    return {"user_erf": _erf_user, "user_capped_tanh": _kinked_user,
            "user_abs": _abs_user}.get(spec, lambda: get_activation(spec))()


# both ends of the range and generic (off-node) interior points; 2-3 per activation keeps
# the 20-digit mpmath references affordable
CASES = [("tanh", [LO, 0.4171, HI]), ("swish", [LO, 2.913]), ("gelu", [0.1377, HI]),
         ("sigmoid", [LO, 33.3]), ("softplus", [0.7777, HI]), ("elu:1", [LO, 171.1]),
         ("user_erf", [1.234, HI]), ("user_capped_tanh", [0.5, 7.7]),
         ("user_abs", [LO, 0.9])]


def _compare(got, ref, label):
    for f in FIELDS:
        r, g = float(getattr(ref, f)), float(getattr(got, f))
        assert abs(g - r) <= max(REL * abs(r), ABS), (label, f, g, r, abs(g - r))


@pytest.mark.parametrize("spec,taus", CASES)
def test_table_matches_mpmath(spec, taus):
    act = _make(spec)
    tab = moment_table(act)
    assert tab.valid and tab.max_error <= 1.0, (spec, tab.reason)
    if not act.kinks:
        assert tab.tau_lo == LO and tab.tau_hi == HI      # smooth: the whole range validates
    vec = gaussian_moments(act, np.array(taus), method="table")
    for i, tau in enumerate(taus):
        ref = mp_gaussian_moments(act, tau, dps=20)
        one = gaussian_moments(act, tau, method="table")
        # a kinked callable may have its range shortened at the low end: quadrature there
        assert one.method == ("table" if tab.covers(tau) else "quadrature")
        assert isinstance(one.e1, float)
        _compare(one, ref, (spec, tau))
        # the vectorised and the scalar evaluations are the same interpolant
        for f in FIELDS:
            assert abs(float(np.asarray(getattr(vec, f))[i]) - getattr(one, f)) <= \
                4e-16 * max(abs(getattr(one, f)), 1e-300) + 1e-300, (spec, tau, f)


@pytest.mark.parametrize("spec", ["tanh", "swish", "gelu", "sigmoid", "softplus", "elu:1",
                                  "erf", "silu"])
def test_table_equals_quadrature_densely(spec):
    """Many generic points across the range: the table reproduces the quadrature engine
    (itself checked against mpmath in test_moments.py) to ~1e-15 where the engine's own
    rounding allows (the validation's admissible error)."""
    tab = moment_table(spec)
    assert tab.valid and tab.degree >= 16
    taus = np.exp(np.random.default_rng(7).uniform(math.log(LO), math.log(HI), 300))
    t = gaussian_moments(spec, taus, method="table")
    q = gaussian_moments(spec, taus, method="quadrature")
    act = get_activation(spec)
    ref = np.stack([np.asarray(getattr(q, f)) for f in FIELDS])
    floor = tab._noise_floor(ref, taus, float(act.fn(np.zeros(1))[0]),
                             float(act.d1(np.zeros(1))[0]))
    for k, f in enumerate(FIELDS):
        err = np.abs(np.asarray(getattr(t, f)) - ref[k])
        assert np.all(err <= 2e-15 * np.abs(ref[k]) + 2 * floor[k]), (spec, f, err.max())


def test_kinked_tables_drop_unvalidated_low_panels():
    # relu's quadrature values of e3, h2 at small tau carry rounding the interpolant should
    # not be trusted with (phi' jumps at 0): those panels are dropped, the rest is kept
    tab = moment_table("relu")
    assert tab.valid and LO < tab.tau_lo < 1.0 and "did not validate" in tab.reason
    assert gaussian_moments("relu", LO, method="table").method == "quadrature"
    m = gaussian_moments("relu", 2.0, method="table")
    assert m.method == "table"
    assert m.e2 == pytest.approx(1 / (2.0 * math.sqrt(2 * math.pi)), rel=1e-14)
    assert m.g4 == pytest.approx(1 - 1 / math.pi, rel=1e-14)
    assert abs(m.e3) < 1e-14 and abs(m.h2) < 1e-14


def test_table_cache_shared_by_spec_not_by_name():
    assert moment_table("tanh") is moment_table("tanh")
    assert moment_table(get_activation("tanh")) is moment_table("tanh")
    assert moment_table(get_activation("elu:0.5")) is not moment_table("elu:1")
    # a user callable that merely borrows a registry name gets its own table
    fake = Activation.from_callable(lambda x: np.tanh(2 * x), name="tanh")
    tab = moment_table(fake)
    assert tab is not moment_table("tanh") and tab is moment_table(fake)
    m = gaussian_moments(fake, 1.3, method="table")
    assert m.e1 == pytest.approx(2 * gaussian_moments("tanh", 2.6, method="quadrature").e1,
                                 rel=1e-14)


def test_spec_strings_are_interned():
    a = get_activation("leaky_relu:0.1")
    assert get_activation("leaky_relu:0.10") is a and get_activation(" Leaky-ReLU:1e-1 ") is a
    assert get_activation("leaky_relu:0.2") is not a
    assert get_activation("silu") is get_activation("swish")     # one factory, same parameters
    zero, minus = get_activation("leaky_relu:0"), get_activation("leaky_relu:-0")
    assert zero is not minus and (zero.name, minus.name) == ("leaky_relu:0", "leaky_relu:-0")
    assert get_activation(a) is a
    f = np.tanh                                  # a callable is wrapped anew on each call
    assert get_activation(f) is not get_activation(f)
    assert moment_table(get_activation(f)) is not moment_table(get_activation(f))


def test_reregistered_name_gets_a_new_table():
    register_activation("tmp_table_act", lambda: Activation(
        "tmp_table_act", np.tanh, lambda x: 1.0 - np.tanh(x) ** 2), overwrite=True)
    first = moment_table("tmp_table_act")
    act = get_activation("tmp_table_act")
    assert get_activation("tmp_table_act") is act
    register_activation("tmp_table_act", lambda: Activation(
        "tmp_table_act", special.expit, lambda x: special.expit(x) * special.expit(-x)),
        overwrite=True)
    assert get_activation("tmp_table_act") is not act
    second = moment_table("tmp_table_act")
    assert second is not first
    m = gaussian_moments("tmp_table_act", 1.0, method="table")
    assert m.mean == pytest.approx(0.5, rel=1e-15)


def test_fallback_outside_the_range():
    act = get_activation("tanh")
    # between the series engine's threshold and the table's lower end, and above the table
    below = 0.5 * (series_for(act).tau_max + LO)
    out = [below, 2.0 * HI]
    m = gaussian_moments(act, np.array(out), method="table")
    q = gaussian_moments(act, np.array(out), method="quadrature")
    assert m.method == "quadrature"
    for f in FIELDS:
        assert np.array_equal(np.asarray(getattr(m, f)), np.asarray(getattr(q, f)))
    mixed = gaussian_moments(act, np.array([below, 1.0, 5000.0]), method="table")
    assert mixed.method == "table+quadrature"
    q = gaussian_moments(act, np.array([below, 5000.0]), method="quadrature")
    assert mixed.e3[0] == q.e3[0] and mixed.e3[2] == q.e3[1]
    assert gaussian_moments(act, below, method="table").method == "quadrature"
    # below the series threshold the quadrature engine hands tau to the series engine
    tiny = 0.5 * series_for(act).tau_max
    assert gaussian_moments(act, tiny, method="table").method == "series"
    assert gaussian_moments(act, np.array([tiny, 1.0]), method="table").method == \
        "table+series"


def test_solver_outside_the_range_uses_quadrature():
    # tau* ~ 0.998 tau0 = 0.0449: between the series threshold and the table's lower end
    sol = solve_four_equations("tanh", 0.2, 0.045)
    assert sol.method == "quadrature" and sol.report.residual <= 1e-13
    ref = solve_four_equations("tanh", 0.2, 0.045, method="quadrature")
    eps = np.finfo(float).eps
    assert abs(sol.tau - ref.tau) <= 4 * eps * ref.tau
    assert abs(sol.alpha1 - ref.alpha1) <= 4 * eps * ref.alpha1
    small = solve_four_equations("tanh", 0.2, 0.02)     # tau* below the series threshold
    assert small.method == "series" and small.report.residual <= 1e-13


def test_raw_moments_refuse_table():
    with pytest.raises(UnknownOptionError, match="table"):
        raw_moments("tanh", 1.0, method="table")


@pytest.mark.parametrize("spec", ["tanh", "swish", "gelu", "sigmoid", "softplus", "elu:1"])
def test_default_solve_uses_table_and_agrees_with_quadrature(spec):
    for sa, tau0 in [(0.2, 1.0), (0.5, 0.7), (0.8, 1.6), (0.5, 3.0)]:
        sol = solve_four_equations(spec, sa, tau0)
        ref = solve_four_equations(spec, sa, tau0, method="quadrature")
        assert sol.method == "table" and ref.method == "quadrature"
        assert sol.report.residual <= 1e-13 and sol.unique == ref.unique
        for k in ("tau", "alpha1", "alpha2", "alpha3", "alpha4"):
            a, b = getattr(sol, k), getattr(ref, k)
            assert abs(a - b) <= 2e-14 * max(abs(b), 1e-2), (spec, sa, tau0, k, a, b)


def test_table_newton_is_consistent_with_table_moments():
    # the table-path analogue of test_fixed_point.test_lean_newton_equals_full_moment_newton
    sol = solve_four_equations("tanh", 0.3, 1.1)
    m = moment_table("tanh").moments(sol.tau)
    assert abs(0.3 * m.V0 + 0.7 * 1.21 - sol.tau ** 2) <= 2e-16 * sol.tau ** 2 * 4
    assert sol.g1 == m.g1 and sol.g4 == m.g4
    # and the root is the quadrature engine's root to its rounding
    q = gaussian_moments("tanh", sol.tau, method="quadrature")
    assert abs(0.3 * q.V0 + 0.7 * 1.21 - sol.tau ** 2) <= 2e-16 * sol.tau ** 2 * 8


def test_table_scan_agrees_with_anchored_scan():
    for spec in ("tanh", "swish", "sigmoid", "gelu"):
        act = get_activation(spec)
        tab = moment_table(spec)
        for sa, tau0 in [(0.2, 1.0), (0.8, 1.6), (0.5, 3.0), (0.9, 0.3)]:
            sb = 1 - sa
            sol = solve_four_equations(spec, sa, tau0)
            q = sol.tau ** 2
            u_tab, q_tab = scan_uniqueness(act, sa, sb * tau0 ** 2, q, tab)
            u_quad, q_quad = scan_uniqueness(act, sa, sb * tau0 ** 2, q, None)
            assert u_tab == u_quad and sol.unique == u_tab
            assert q_quad / 10 ** 0.2 <= q_tab <= q_quad


def test_lattice_scan_counts_sign_changes():
    """The lattice branch of the scan on a synthetic table whose T(q) - q has 1 or 3 roots."""
    from bisect import bisect_left, bisect_right

    class Synthetic:
        tau_lo, tau_hi = LO, HI
        scan_tau = LO * 10.0 ** (np.arange(44) / 10.0)
        scan_q = scan_tau ** 2
        _l = scan_tau.tolist()

        def __init__(self, v0):
            self.scan_v0 = v0(self.scan_tau)

        def scan_slice(self, a, b):
            return bisect_left(self._l, a), bisect_right(self._l, b)

    act = get_activation("tanh")
    sa, c = 0.5, 0.5
    one = Synthetic(lambda t: np.ones_like(t))                  # f = 1 - q: one root
    assert scan_uniqueness(act, sa, c, 1.0, one)[0]
    # f = 0.5 V0 + 0.5 - q with V0 = 2 q + bump: negative just above 1 and again past 30,
    # positive on a window around 10 -> three sign changes
    bump = Synthetic(lambda t: 2 * t ** 2 - 1.2 + 60 * np.exp(-np.log(t ** 2 / 10) ** 2))
    unique, q_scan = scan_uniqueness(act, sa, c, 1.0, bump)
    assert not unique and q_scan <= 1e4
    f = sa * bump.scan_v0 + c - bump.scan_q
    assert np.count_nonzero(np.diff(np.sign(f[(bump.scan_q >= c) & (bump.scan_q <= 1e4)]))) >= 2


def test_opt_out_and_method_labels():
    assert solve_four_equations("tanh", 0.3, 1.0, method="quadrature").method == "quadrature"
    assert solve_four_equations("tanh", 0.3, 1.0, method="table").method == "table"
    assert solve_four_equations("relu", 0.3, 1.0).method == "closed"
    assert gaussian_moments("tanh", 1.0).method == "quadrature"   # auto is unchanged
    assert gaussian_moments("tanh", 1.0, method="table").method == "table"
