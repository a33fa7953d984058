"""The moment engines by name, behind the public API (shared by the moment modules and the
four-equation solver; inputs are trusted: a resolved Activation, tau a float64 array or a
float > 0, a known method, validated digits).

``"closed"`` (:mod:`rmt_deq.moments.closed_forms`), ``"quadrature"``
(:mod:`rmt_deq.moments._quadrature`, handing tau below the series threshold to
:mod:`rmt_deq.moments.series`) and ``"mpmath"`` (:mod:`rmt_deq.moments.precise`) return the
centred raw moments; :func:`moments` assembles :class:`GaussianMoments` from them, and
:func:`tau_map_terms` is the solver's lean evaluation of the tau map.  The ``"table"``
engine is :mod:`rmt_deq.moments.table`, built on top of these.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rmt_deq.activations import Activation
from rmt_deq.errors import UnknownOptionError
from rmt_deq.moments._quadrature import (centred_values, origin, quadrature_raw, quadrature_rule,
                                         v0_sums)
from rmt_deq.moments.closed_forms import (CLOSED_FORMS, RAW_KEYS, piecewise_raw_moments,
                                          shifted_pieces)
from rmt_deq.moments.precise import mpmath_raw
from rmt_deq.moments.result import FIELDS, GaussianMoments, moments_from_raw
from rmt_deq.moments.series import series_for, series_raw

__all__ = ["closed_raw", "numerical_raw", "centred_raw", "moments", "tau_map_terms"]

_EPS = float(np.finfo(float).eps)
#: error of a closed-form moment, relative to it (a product of a few correctly rounded
#: factors)
_CLOSED_REL_ERROR = 4.0 * _EPS


def closed_raw(act: Activation, tau: np.ndarray, with_error: bool) -> dict:
    """Centred raw moments from the exact closed forms, at each tau of a 1-d array."""
    if act.pieces is not None:
        p0 = origin(act)[0]
        raw = piecewise_raw_moments(shifted_pieces(act.pieces, p0), tau, with_error)
        return {**raw, "p0": p0}
    if act.closed_form is not None:
        raw = dict(CLOSED_FORMS[act.closed_form](tau))   # phi(0) = 0 for the registered (erf)
        if with_error:
            raw["err"] = {k: _CLOSED_REL_ERROR * np.abs(raw[k]) for k in RAW_KEYS}
        return {**raw, "p0": 0.0}
    raise UnknownOptionError(
        f"activation {act.name!r} has no closed-form moments; use method='quadrature'")


def numerical_raw(act: Activation, tau: np.ndarray, with_error: bool) -> tuple[dict, str]:
    """The quadrature engine, handing the tau below the series threshold to the series.

    Returns the centred raw moments and the engine label: ``"quadrature"``, ``"series"``,
    or ``"quadrature+series"`` when both served part of the array.
    """
    ts = series_for(act)
    small = np.zeros(tau.shape, bool) if ts is None else tau <= ts.tau_max
    if not small.any():
        return quadrature_raw(act, tau, with_error), "quadrature"
    if small.all():
        return series_raw(ts, tau, with_error), "series"
    a = quadrature_raw(act, tau[~small], with_error)
    b = series_raw(ts, tau[small], with_error)
    out = {"p0": a["p0"]}
    for key in RAW_KEYS:
        col = np.empty(tau.shape)
        col[~small], col[small] = a[key], b[key]
        out[key] = col
    if with_error:
        out["err"] = {}
        for key in RAW_KEYS:
            col = np.empty(tau.shape)
            col[~small], col[small] = a["err"][key], b["err"][key]
            out["err"][key] = col
    return out, "quadrature+series"


def centred_raw(act: Activation, t: np.ndarray, method: str, dps: int | None,
                with_error: bool = False) -> tuple[dict, str]:
    """Centred raw moments by engine ``method`` ("auto", "closed", "quadrature" or
    "mpmath" with ``dps`` digits), and the engine used."""
    if method == "auto":
        method = "closed" if act.has_closed_form else "quadrature"
    if method == "closed":
        return closed_raw(act, np.atleast_1d(t), with_error), "closed"
    if method == "quadrature":
        return numerical_raw(act, np.atleast_1d(t), with_error)
    return mpmath_raw(act, t, int(dps)), "mpmath"


def _one(v: Any) -> float:
    """The single value of a scalar or one-element array, as a float."""
    return float(v[0]) if type(v) is np.ndarray and v.ndim == 1 else \
        float(np.asarray(v).reshape(-1)[0])


def moments(act: Activation, t: Any, method: str, dps: int | None = None,
            with_errors: bool = False) -> GaussianMoments:
    """:class:`GaussianMoments` by engine ``method`` (not "table"): float fields for a
    float (or 0-d) ``t``, arrays of ``t``'s shape otherwise."""
    raw, used = centred_raw(act, t, method, dps, with_errors)
    if np.ndim(t) == 0:
        # float arithmetic for one tau (the solver's inner loop)
        one = {k: _one(raw[k]) for k in RAW_KEYS}
        one["p0"] = float(raw["p0"])
        if with_errors:
            one["err"] = {k: _one(v) for k, v in raw["err"].items()}
        return moments_from_raw(one, float(t), used)
    m = moments_from_raw(raw, np.atleast_1d(t), used)
    shape = np.shape(t)
    r = lambda v: np.asarray(v).reshape(shape)  # noqa: E731
    errors = None if m.errors is None else {k: r(v) for k, v in m.errors.items()}
    return GaussianMoments(tau=r(m.tau), **{f: r(getattr(m, f)) for f in FIELDS},
                           method=m.method, errors=errors)


def tau_map_terms(act: Activation, tau: float) -> tuple[float, float]:
    """(V0, g4) at one tau, without the other moments or checks.

    By the series engine where it serves tau, else by the quadrature rule with V0 the same
    arithmetic as the quadrature engine's; g4 (the slope of the tau map, used only as a
    Newton derivative) is summed in plain float64.  For the inner loop of the
    four-equation solver.
    """
    t = np.atleast_1d(float(tau))
    ts = series_for(act)
    if ts is not None and t[0] <= ts.tau_max:
        m = moments_from_raw(series_raw(ts, t), t, "series")
        return float(m.V0[0]), float(m.g4[0])
    xi, w = quadrature_rule(act, t)
    p0, d0 = origin(act)
    P, phi, D, dphi = centred_values(act, t[..., None] * xi, p0, d0)
    with np.errstate(all="ignore"):
        mP, P2 = v0_sums(w, P)
        V0 = P2 - mP * mP
        wx = w * xi
        he2_phi = t[0] * float(np.sum(wx * D))
        he2_phi2 = 2.0 * t[0] * float(np.sum(wx * (P * dphi)))
    g4 = (he2_phi2 - 2.0 * float(mP[0]) * he2_phi) / (t[0] * t[0])
    return float(V0[0]), g4
