"""Gaussian moments E[h(tau xi)], xi ~ N(0, 1), of an activation and its derivatives.

The public entry points of the one-dimensional moments (docs/theory.md §3.1): they
validate their inputs and resolve the activation once, then call the engines, which trust
them.  The engines compute the same *raw moments* (listed in
:mod:`rmt_deq.moments.closed_forms`):

``"closed"``
    exact formulas (piecewise polynomials, erf; docs/theory.md §3.6);
``"quadrature"``
    a composite Gauss-Legendre rule split at the kinks and around the bending scale of phi
    (:mod:`rmt_deq.moments._quadrature`; docs/theory.md §3.5), vectorised over tau;
``"series"``
    below a per-activation threshold, the Gaussian moments of phi's Taylor series at 0,
    for analytic activations with an mpmath implementation
    (:mod:`rmt_deq.moments.series`): the quadrature rule loses digits at small tau, the
    series does not.  The quadrature engine hands such tau to it;
``"mpmath"``
    tanh-sinh quadrature in mpmath at ``dps`` digits (:mod:`rmt_deq.moments.precise`);
``"table"``
    piecewise Chebyshev interpolants in s = log tau of the final moments, built once per
    activation from the quadrature engine and validated against it
    (:mod:`rmt_deq.moments.table`); outside its range, or when the table could not be
    validated, the quadrature engine is used (``GaussianMoments.method`` says which).

Every engine integrates phi centred at phi(0) (P = phi - phi(0)), and V0 is the centred
second moment E[P^2] - E[P]^2.  The float64 engines also return an estimate of the
absolute error of each moment (``GaussianMoments.errors``).  Higher derivative moments use
Stein's lemma (docs/theory.md §3.4), so no second or third derivative of a kinked phi is
ever needed: E[phi''] = E[He1 phi']/tau, E[phi'''] = E[He2 phi']/tau^2,
E[(phi^2)''] = 2 E[He1 phi phi']/tau, E[(phi'^2)''] = E[He2 phi'^2]/tau^2 (valid because
phi' is of bounded variation: its jumps are the delta terms).  Accuracy and cost of the
engines: docs/four_equations.md.
"""
from __future__ import annotations

from typing import Any, Callable

import mpmath as mp
import numpy as np

from rmt_deq._validation import as_positive_array, check_choice, check_dps, check_method_dps
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.errors import InvalidParameterError, UnknownOptionError
from rmt_deq.moments import _engines, _quadrature as quad
from rmt_deq.moments.closed_forms import RAW_KEYS
from rmt_deq.moments.precise import mp_raw_moments
from rmt_deq.moments.result import FIELDS, GaussianMoments, moments_from_raw
from rmt_deq.moments.table import table_moments

__all__ = ["gaussian_moments", "raw_moments", "mp_gaussian_moments", "gaussian_expectation",
           "second_central_moment", "METHODS"]

#: the moment engines :func:`gaussian_moments` accepts (and the four-equation solver)
METHODS = ("auto", "closed", "quadrature", "mpmath", "table")
_TAU_WHAT = " (the Gaussian scale)"


def _check_method(method: Any) -> str:
    return check_choice(method, "moment method", METHODS)


def raw_moments(activation: ActivationLike, tau: Any, method: str = "auto",
                dps: int | None = None) -> dict:
    """Raw moments (keys in :data:`rmt_deq.moments.closed_forms.RAW_KEYS`) at each tau.

    Parameters
    ----------
    activation : name, Activation or callable
    tau : float or array of float, > 0
    method : {"auto", "closed", "quadrature", "mpmath"}
        ``"auto"`` uses the closed form when the activation has one, else quadrature
        (with the series engine below its threshold, see the module docstring).
        (``"table"`` is refused: tables hold assembled moments only.)
    dps : int, optional
        Decimal digits for ``method="mpmath"`` (default 50, range
        :data:`rmt_deq._validation.DPS_RANGE`); refused with other methods.

    Returns
    -------
    dict of str -> ndarray of shape ``np.shape(tau)`` (``(1,)`` for scalar tau)
        The moments of phi itself (the engines integrate phi - phi(0) and add phi(0) back).
    """
    act = get_activation(activation)
    t = as_positive_array(tau, "tau", _TAU_WHAT)
    if method == "table":
        raise UnknownOptionError(
            "the table engine interpolates the assembled moments, not the raw moments; use "
            "gaussian_moments(..., method='table') or raw_moments(..., method='quadrature')")
    dps = check_method_dps(dps, method)
    _check_method(method)
    raw, _ = _engines.centred_raw(act, t, method, dps)
    p0, mP = raw["p0"], raw["phi"]
    out = {k: raw[k] for k in RAW_KEYS}
    # back from P = phi - p0 to phi (E[He_k] = 0 leaves the Hermite moments of P unchanged)
    out["phi"] = p0 + mP
    out["phi2"] = raw["phi2"] + 2.0 * p0 * mP + p0 * p0
    out["He2_phi2"] = raw["He2_phi2"] + 2.0 * p0 * raw["He2_phi"]
    return out


def gaussian_moments(activation: ActivationLike, tau: Any, method: str = "auto",
                     dps: int | None = None, *, with_errors: bool = False) -> GaussianMoments:
    """All Gaussian moments of phi at scale tau that the theory uses (docs/theory.md §3.1).

    Parameters
    ----------
    activation : name (``"tanh"``, ``"leaky_relu:0.1"``...), Activation or callable
    tau : float or array_like of float
        Scale(s) > 0; the result's fields have the shape of ``tau`` (floats for a scalar).
    method : {"auto", "closed", "quadrature", "mpmath", "table"}
        ``"auto"``: the closed form when the activation has one, else quadrature (which
        hands small tau of analytic activations to the series engine; ``method`` of the
        result says ``"series"`` or ``"quadrature+series"`` then).
        ``"table"``: the cached interpolation table
        (:func:`rmt_deq.moments.table.moment_table`, built on first use) where it is valid
        and covers tau, the quadrature engine elsewhere; ``method`` of the result is
        ``"table"``, ``"quadrature"`` or ``"table+quadrature"``.
    dps : int, optional
        Working precision (decimal digits, default 50) of ``method="mpmath"``; refused with
        the other methods.  Results are float64 unless you call
        :func:`mp_gaussian_moments`.
    with_errors : bool
        Also estimate the absolute error of every field (``result.errors``; float64
        engines only).

    Examples
    --------
    >>> m = gaussian_moments("relu", 1.0)
    >>> round(m.e1, 12), round(m.h0, 12)
    (0.5, 0.5)
    """
    act = get_activation(activation)
    t = as_positive_array(tau, "tau", _TAU_WHAT)
    dps = check_method_dps(dps, method)
    if with_errors and method == "mpmath":
        raise InvalidParameterError(
            "with_errors applies to the float64 engines; method='mpmath' is the reference "
            "(its error is about 10^-dps)")
    _check_method(method)
    if method != "table":
        return _engines.moments(act, t, method, dps, with_errors)
    m = table_moments(act, np.atleast_1d(t), with_errors)
    if t.ndim:
        return m
    one = lambda v: float(np.asarray(v).reshape(-1)[0])  # noqa: E731
    errors = None if m.errors is None else {k: one(v) for k, v in m.errors.items()}
    return GaussianMoments(tau=one(m.tau), **{f: one(getattr(m, f)) for f in FIELDS},
                           method=m.method, errors=errors)


def mp_gaussian_moments(activation: ActivationLike, tau: Any, dps: int = 50) -> GaussianMoments:
    """Moments as mpmath numbers at ``dps`` digits (a single tau; independent reference).

    ``dps`` must lie in :data:`rmt_deq._validation.DPS_RANGE`; the activation needs an
    mpmath implementation (``mp_fn``).
    """
    act = get_activation(activation)
    dps = check_dps(dps)
    t = float(as_positive_array(tau, "tau", _TAU_WHAT))
    with mp.workdps(dps):
        raw = mp_raw_moments(act, t, dps)
        return moments_from_raw(raw, mp.mpf(t), "mpmath")


def second_central_moment(activation: ActivationLike, tau: Any, nodes: int = quad.NODES
                          ) -> np.ndarray:
    """V0(tau) = E[phi(tau xi)^2] - E[phi(tau xi)]^2 by the quadrature rule only.

    A light evaluation (no derivatives, no divergence checks) for scans over many tau; it
    assumes the moments exist.  phi is centred at phi(0) first (see the module docstring).
    With the default ``nodes`` it is the same arithmetic as ``gaussian_moments(...).V0`` by
    quadrature; fewer nodes per panel make a cheaper, less accurate scan.

    Returns
    -------
    ndarray, shape ``np.shape(tau)`` (``(1,)`` for a scalar)
    """
    act = get_activation(activation)
    t = np.atleast_1d(as_positive_array(tau, "tau", _TAU_WHAT))
    if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or nodes < 1:
        raise InvalidParameterError(
            f"nodes (Gauss-Legendre nodes per panel) must be a positive integer, got {nodes!r}")
    return quad.second_central_moment(act, t, int(nodes))


def gaussian_expectation(h: Callable[[np.ndarray], np.ndarray], tau: Any,
                         kinks: tuple[float, ...] = (), scale: float = 1.0) -> np.ndarray:
    """E[h(tau xi)] for any vectorised h, with the package's kink-split quadrature."""
    act = Activation(name=getattr(h, "__name__", "h"), fn=h, d1=h, kinks=tuple(kinks),
                     scale=float(scale))
    t = as_positive_array(tau, "tau", _TAU_WHAT)
    xi, w = quad.quadrature_rule(act, np.atleast_1d(t))
    with np.errstate(all="ignore"):
        vals = quad.guarded(np.asarray(h(np.atleast_1d(t)[..., None] * xi), float), "h",
                            act, t)
    res = np.sum(w * vals, axis=-1)
    with np.errstate(all="ignore"):
        ends = np.asarray(h(np.atleast_1d(t)[..., None] * np.array([-quad.XI_MAX, quad.XI_MAX])),
                          float)
    quad.tail_check(ends, res, "E[h]", act, t)
    return res.reshape(np.shape(t)) if np.ndim(t) else float(res[0])
