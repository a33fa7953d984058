"""Bivariate Gaussian expectations E[f(u) f(v)] of an activation (docs/theory.md §2.2-2.3).

For a centred Gaussian pair (u, v) with standard deviations s_u, s_v and correlation rho:

* ``kind="phi"``:  E[phi_c(u) phi_c(v)] with phi_c = phi - c for a fixed constant c (the
  DEQ's centring E[phi(tau xi)]; pass ``centring=0`` for the raw E[phi(u) phi(v)]);
* ``kind="dphi"``: E[phi'(u) phi'(v)] (uncentred derivative, phi' as ``Activation.d1``).

This module is the public scalar API (:func:`bivariate_expectation`);
:class:`rmt_deq.moments.pairs.PairExpectations` evaluates all pairs of n variables at once
on the same engines:

``"closed"``
    the ReLU family (arc-cosine kernel) and erf (arcsine kernel):
    :mod:`rmt_deq.moments.pair_closed`;
``"mehler"``
    the Mehler (Hermite) expansion with a rigorous Parseval bound on its truncation
    (:mod:`rmt_deq.moments.mehler`); pairs for which no order K <= ``kmax`` meets the
    tolerance (|rho| close to 1) are handed to the 2-D quadrature;
``"quadrature"``
    2-D composite Gauss-Legendre quadrature with an error estimate
    (:mod:`rmt_deq.moments.pair_quadrature`);
``"auto"``
    closed form when the activation has one, else Mehler with the quadrature fallback.

No engine returns a value silently: when a tolerance cannot be certified a
:class:`~rmt_deq.errors.ConvergenceError` is raised.  Tolerances are absolute errors
relative to the natural scale sqrt(E[f(u)^2] E[f(v)^2]).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rmt_deq._validation import (as_positive_array, check_choice, check_positive_int,
                                 check_tolerance)
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.errors import InvalidParameterError
from rmt_deq.moments._scale_rule import check_kind, scale_moments
from rmt_deq.moments.mehler import HermiteTable, horner
from rmt_deq.moments.pair_closed import closed_pair_expectations, has_closed_form
from rmt_deq.moments.pair_quadrature import quad_pairs

__all__ = ["METHODS", "DEFAULT_TOL", "DEFAULT_KMAX", "RHO_SLACK", "bivariate_expectation"]

#: the engines of the pair expectations
METHODS = ("auto", "closed", "mehler", "quadrature")
DEFAULT_TOL = 1e-13     # absolute error relative to sqrt(E f(u)^2 E f(v)^2)
DEFAULT_KMAX = 256      # largest Mehler order before falling back to 2-D quadrature
#: a correlation may exceed 1 in magnitude by this (rounding of Sigma_uv / (s_u s_v)); it is
#: clipped to [-1, 1]
RHO_SLACK = 1e-12
_SCALES = " (standard deviations)"


def _as_correlation(rho: Any) -> np.ndarray:
    """rho as a float array of correlations (|rho| <= 1 + RHO_SLACK), else
    InvalidParameterError."""
    try:
        r = np.asarray(rho, float)
    except (TypeError, ValueError):
        r = np.array(np.nan)
    if not np.all(np.isfinite(r)) or np.any(np.abs(r) > 1.0 + RHO_SLACK):
        raise InvalidParameterError("rho must be a correlation in [-1, 1]")
    return r


def bivariate_expectation(activation: ActivationLike, s_u: Any, s_v: Any, rho: Any, *,
                          kind: str = "phi", centring: float = 0.0, method: str = "auto",
                          tol: float = DEFAULT_TOL, kmax: int = DEFAULT_KMAX) -> Any:
    """E[phi_c(u) phi_c(v)] or E[phi'(u) phi'(v)] for (u, v) centred Gaussian.

    Parameters
    ----------
    activation : name, Activation or callable
    s_u, s_v : float or array_like, > 0
        Standard deviations of u and v.
    rho : float or array_like in [-1, 1]
        Correlation; the three arguments broadcast together.
    kind : {"phi", "dphi"}
        ``"phi"``: E[(phi(u) - c)(phi(v) - c)] with c = ``centring``;
        ``"dphi"``: E[phi'(u) phi'(v)].
    centring : float
        The constant c (0 gives the raw E[phi(u) phi(v)]).
    method : {"auto", "closed", "mehler", "quadrature"}
        See the module docstring.  ``"closed"`` raises
        :class:`~rmt_deq.errors.UnknownOptionError` for activations without a closed form.
    tol : float
        Absolute accuracy, relative to sqrt(E[f(u)^2] E[f(v)^2]), that the Mehler bound
        and the quadrature error estimate must certify.
    kmax : int
        Largest Mehler order tried before the quadrature fallback.

    Returns
    -------
    float or ndarray of the broadcast shape

    Raises
    ------
    ConvergenceError
        The tolerance cannot be certified.
    """
    act = get_activation(activation)
    check_kind(kind)
    check_choice(method, "method", METHODS)
    tol = check_tolerance(tol)
    su, sv, r = np.broadcast_arrays(as_positive_array(s_u, "s_u", _SCALES),
                                    as_positive_array(s_v, "s_v", _SCALES),
                                    _as_correlation(rho))
    shape = su.shape
    su, sv, r = su.reshape(-1), sv.reshape(-1), np.clip(r.reshape(-1), -1.0, 1.0)
    if method == "auto":
        method = "closed" if has_closed_form(act) else "mehler"
    if method == "closed":
        out = closed_pair_expectations(act, centring, su, sv, r, (kind,))[kind]
    else:
        svals = np.concatenate([su, sv])
        m2 = scale_moments(act, svals, float(centring))["m2" if kind == "phi" else "d2"]
        scale = np.sqrt(np.abs(m2[: su.size] * m2[su.size:]))
        scale = np.where(scale > 0, scale, 1.0)
        if method == "quadrature":
            out = quad_pairs(act, kind, centring, su, sv, r, scale, tol)
        else:
            tab = HermiteTable.build(act, svals, kind, centring)
            kmax = check_positive_int(kmax, "kmax")
            tails = tab.relative_tails(kmax)
            C = tab.coefficients(kmax)
            Cu, Cv = C[: su.size], C[su.size:]
            tu, tv = tails[: su.size], tails[su.size:]
            bound_ok = np.abs(r)[:, None] ** (np.arange(kmax + 1) + 1.0) * np.sqrt(tu * tv) \
                <= tol
            good = bound_ok.any(axis=1)
            Kreq = np.where(good, np.argmax(bound_ok, axis=1), kmax)
            out = np.empty(su.size)
            if good.any():
                K = int(Kreq[good].max())
                out[good] = horner(Cu[good], Cv[good], r[good], K)
            bad = ~good
            if bad.any():
                out[bad] = quad_pairs(act, kind, centring, su[bad], sv[bad], r[bad],
                                      scale[bad], tol)
    out = out.reshape(shape)
    return float(out) if out.ndim == 0 else out
