"""Gaussian moments: quadrature and closed forms against 50-digit mpmath references.

The references are stored in tests/reference/mpmath_references.json (computed once by
:func:`rmt_deq.moments.gaussian.mp_gaussian_moments`); regenerate them with
``OPENBLAS_NUM_THREADS=1 python tests/reference/make_mpmath_references.py``.
tests/test_trust_numerics.py recomputes a few entries to show the file matches its
generator.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import ACTIVATION_SPECS, mpmath_references, user_sine
from rmt_deq.activations import Activation, get_activation
from rmt_deq.errors import DivergentMomentError, InvalidParameterError
from rmt_deq.moments.closed_forms import (_piecewise_raw_direct, homogeneous_degree,
                                          piecewise_raw_moments)
from rmt_deq.moments.gaussian import gaussian_expectation, gaussian_moments, mp_gaussian_moments

TAUS = [0.05, 0.3, 1.0, 2.5, 7.0, 20.0]
FIELDS = ("mean", "second", "V0", "e1", "e2", "e3", "h0", "h2", "g4")
REL, ABS = 1e-12, 1e-14


def _compare(got, ref, label):
    for f in FIELDS:
        r = float(getattr(ref, f))
        g = float(getattr(got, f))
        assert abs(g - r) <= max(REL * abs(r), ABS), (label, f, g, r, abs(g - r))


@pytest.mark.parametrize("spec", ACTIVATION_SPECS + ["user_sine"])
def test_moments_match_mpmath(spec):
    stored = mpmath_references()["moments"]
    assert stored["taus"] == TAUS and tuple(stored["fields"]) == FIELDS
    act = user_sine() if spec == "user_sine" else get_activation(spec)
    quad = gaussian_moments(act, np.array(TAUS), method="quadrature")
    closed = gaussian_moments(act, np.array(TAUS), method="closed") if act.has_closed_form \
        else None
    for i, tau in enumerate(TAUS):
        ref = type("M", (), dict(zip(FIELDS, stored["values"][spec][i])))
        pick = lambda m: type("M", (), {f: np.asarray(getattr(m, f))[i] for f in FIELDS})  # noqa
        _compare(pick(quad), ref, (spec, tau, "quadrature"))
        if closed is not None:
            _compare(pick(closed), ref, (spec, tau, "closed"))


def test_relu_textbook_values():
    # independent closed forms: E[relu] = tau/sqrt(2 pi), E[relu^2] = tau^2/2,
    # E[relu'] = 1/2, E[relu''] = 1/(tau sqrt(2 pi)), g4 = 1 - 1/pi
    for tau in (0.3, 1.0, 4.0):
        for method in ("closed", "quadrature"):
            m = gaussian_moments("relu", tau, method=method)
            assert m.mean == pytest.approx(tau / math.sqrt(2 * math.pi), rel=1e-14)
            assert m.second == pytest.approx(tau ** 2 / 2, rel=1e-14)
            assert m.e1 == pytest.approx(0.5, rel=1e-14)
            assert m.e2 == pytest.approx(1 / (tau * math.sqrt(2 * math.pi)), rel=1e-13)
            assert m.g4 == pytest.approx(1 - 1 / math.pi, rel=1e-13)
            assert abs(m.e3) < 1e-13 and abs(m.h2) < 1e-13


def test_vectorised_shape_and_scalar():
    m = gaussian_moments("tanh", np.array([[0.5, 1.0], [2.0, 3.0]]))
    assert np.shape(m.e1) == (2, 2)
    s = gaussian_moments("tanh", 2.0)
    assert isinstance(s.e1, float) and s.e1 == pytest.approx(float(m.e1[1, 0]), rel=1e-15)


def test_kink_split_matters():
    """Splitting at kinks is what buys the digits: an unsplit rule on hard tanh loses them."""
    act = get_activation("hard_tanh:1,0.37")
    no_kinks = Activation(name="ht_nokinks", fn=act.fn, d1=act.d1, kinks=())
    tau = 1.3
    ref = mp_gaussian_moments(act, tau, dps=40)
    split = gaussian_moments(act, tau, method="quadrature")
    unsplit = gaussian_moments(no_kinks, tau, method="quadrature")
    err_split = abs(split.h0 - float(ref.h0))
    err_unsplit = abs(unsplit.h0 - float(ref.h0))
    assert err_split < 1e-14 < err_unsplit


def test_moment_arrays_are_read_only():
    tau = np.array([0.5, 1.0, 3.0])
    m = gaussian_moments("tanh", tau, with_errors=True)
    with pytest.raises(ValueError, match="read-only"):
        m.e1[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        m.errors["e1"][0] = 0.0
    with pytest.raises(TypeError):
        m.errors["e1"] = np.zeros(3)
    tau[0] = 2.0                      # the caller's array is not frozen (nor shared)
    assert m.tau[0] == 0.5
    d = m.to_dict()
    assert d["e1"] == m.e1.tolist() and d["method"] == "quadrature" and "errors" not in d


def test_gaussian_expectation_generic():
    # E[|tau xi|^3] = 2 sqrt(2/pi) tau^3
    val = gaussian_expectation(lambda x: np.abs(x) ** 3, 1.7, kinks=(0.0,))
    assert val == pytest.approx(2 * math.sqrt(2 / math.pi) * 1.7 ** 3, rel=1e-14)


@pytest.mark.parametrize("fn", [lambda x: np.exp(x ** 2), lambda x: np.exp(0.2 * x ** 2)])
def test_divergent_moments_raise(fn):
    act = Activation.from_callable(fn, name="fast_growth")
    with pytest.raises(DivergentMomentError, match="fast_growth"):
        gaussian_moments(act, 1.0)


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_tau(tau):
    with pytest.raises(InvalidParameterError, match="tau"):
        gaussian_moments("relu", tau)


@pytest.mark.parametrize("spec,degree", [("relu", 1), ("leaky_relu:0.1", 1),
                                         ("quadratic:0,1", 2), ("polynomial:0,0,0,2", 3),
                                         ("hard_tanh:1,1", None), ("quadratic:1,0.5", None)])
def test_homogeneous_shortcut_equals_direct_closed_form(spec, degree):
    """phi(t x) = t^k phi(x): the moments scaled from tau = 1 equal the direct closed form."""
    act = get_activation(spec)
    assert homogeneous_degree(act.pieces) == degree
    tau = np.geomspace(1e-3, 1e3, 13)
    fast, direct = piecewise_raw_moments(act.pieces, tau), _piecewise_raw_direct(act.pieces, tau)[0]
    for key in fast:
        assert np.allclose(fast[key], direct[key], rtol=1e-13, atol=0), key


@pytest.mark.parametrize("spec", ["leaky_relu:0.123456789", "hard_tanh:1.5,0.3333333333333",
                                  "polynomial:0.1,1.00000001,-0.2", "quadratic:0.7071067811865476,1",
                                  "elu:1.23456789"])
def test_name_rebuilds_the_same_activation(spec):
    """Activation.name must round-trip exactly (explicit networks are stored by name)."""
    act = get_activation(spec)
    again = get_activation(act.name)
    x = np.linspace(-3, 3, 41)
    assert again.name == act.name
    assert np.array_equal(again.fn(x), act.fn(x))
