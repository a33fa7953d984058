"""The mpmath engine of the Gaussian moments: every raw moment at ``dps`` digits.

Independent of the float64 engines: each raw moment (:mod:`rmt_deq.moments.closed_forms`)
is a tanh-sinh quadrature of its defining integral (Hermite-weighted, phi centred at
phi(0)), split at the kinks and around the bending scale of phi, at a working precision
raised by the digits the scale cancels (so the result keeps ``dps`` digits at any tau).
It is the reference the float64 engines are tested against, reached through
``method="mpmath"`` of :func:`rmt_deq.moments.gaussian.gaussian_moments` and
:func:`rmt_deq.moments.gaussian.mp_gaussian_moments`; the mpmath four-equation solve
(:mod:`rmt_deq.fixed_point.high_precision`) uses :func:`mp_raw_moments` and
:func:`mp_second_central_moment`.

The functions here trust their inputs (a resolved Activation, tau > 0, ``dps`` validated by
:func:`rmt_deq._validation.check_dps`); :func:`require_mp` refuses an activation without an
mpmath implementation.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import mpmath as mp
import numpy as np

from rmt_deq.activations import Activation
from rmt_deq.errors import UnknownOptionError
from rmt_deq.moments.closed_forms import RAW_KEYS

__all__ = ["require_mp", "mp_raw_moments", "mp_second_central_moment", "mpmath_raw"]

#: breakpoints in x, in units of the activation's scale, around which phi bends
_SCALE_POINTS = (-4, -1, -0.25, 0.25, 1, 4)
#: fixed breakpoints in xi (the Gaussian's own scale)
_XI_POINTS = (-8, -4, -2, 2, 4, 8)
#: breakpoints beyond |xi| = this carry no Gaussian weight
_XI_FAR = 40
#: digits added to the working precision beyond those the scale cancels
_DIGIT_MARGIN = 5


def require_mp(act: Activation) -> None:
    """UnknownOptionError if ``act`` has no mpmath implementation (``mp_fn``)."""
    if act.mp_fn is None:
        raise UnknownOptionError(
            f"activation {act.name!r} has no mpmath implementation; pass mp_fn= to "
            f"Activation.from_callable to enable method='mpmath'")


def _mp_breakpoints(act: Activation, tau: Any) -> list:
    pts = {mp.mpf(0)}
    for x in list(act.kinks) + [s * act.scale for s in _SCALE_POINTS]:
        xi = mp.mpf(x) / tau
        if abs(xi) < _XI_FAR:
            pts.add(xi)
    for xi in _XI_POINTS:
        pts.add(mp.mpf(xi))
    return [-mp.inf] + sorted(pts) + [mp.inf]


def _mp_extra_digits(tau: float) -> int:
    """Digits the centred Hermite-weighted integrals cancel at scale tau (three powers of
    tau at small tau for E[He3 P], one at large tau for E[He2 P^2]), plus a margin."""
    lt = math.log10(float(tau))
    return int(math.ceil(3.0 * max(0.0, -lt) + max(0.0, lt))) + _DIGIT_MARGIN


def mp_raw_moments(act: Activation, tau: Any, dps: int) -> dict:
    """Centred raw moments (mpf, with ``"p0"`` = phi(0)) at one tau, to ``dps`` digits."""
    require_mp(act)
    with mp.workdps(dps + _mp_extra_digits(tau)):
        t = mp.mpf(tau)
        pts = _mp_breakpoints(act, t)
        c = 1 / mp.sqrt(2 * mp.pi)
        f, d = act.mp_fn, act.mp_d1
        p0 = f(mp.mpf(0))

        def E(h: Callable) -> Any:
            return mp.quad(lambda s: h(s) * mp.exp(-s * s / 2) * c, pts)

        def P(s: Any) -> Any:
            return f(t * s) - p0

        res = {
            "p0": p0,
            "phi": E(P),
            "He1_phi": E(lambda s: s * P(s)),
            "He2_phi": E(lambda s: (s * s - 1) * P(s)),
            "He3_phi": E(lambda s: (s ** 3 - 3 * s) * P(s)),
            "phi2": E(lambda s: P(s) ** 2),
            "He2_phi2": E(lambda s: (s * s - 1) * P(s) ** 2),
            "dphi2": E(lambda s: d(t * s) ** 2),
            "He2_dphi2": E(lambda s: (s * s - 1) * d(t * s) ** 2),
        }
    return {k: +v for k, v in res.items()}   # rounded to dps digits


def mp_second_central_moment(act: Activation, tau: Any, dps: int) -> Any:
    """V0 = E[P^2] - E[P]^2 (P = phi - phi(0)) at ``dps`` digits, an mpf (two integrals;
    the inner loop of the mpmath four-equation solve)."""
    require_mp(act)
    with mp.workdps(dps + _mp_extra_digits(tau)):
        t = mp.mpf(tau)
        pts = _mp_breakpoints(act, t)
        c = 1 / mp.sqrt(2 * mp.pi)
        f = act.mp_fn
        p0 = f(mp.mpf(0))
        m1 = mp.quad(lambda s: (f(t * s) - p0) * mp.exp(-s * s / 2) * c, pts)
        m2 = mp.quad(lambda s: (f(t * s) - p0) ** 2 * mp.exp(-s * s / 2) * c, pts)
        v0 = m2 - m1 * m1
    return +v0


def mpmath_raw(act: Activation, tau: np.ndarray, dps: int) -> dict:
    """Centred raw moments at each tau (computed at ``dps`` digits, returned as float64
    arrays of ``tau``'s shape, ``(1,)`` for a scalar)."""
    flat = np.atleast_1d(tau).reshape(-1)
    rows = [mp_raw_moments(act, float(t), dps) for t in flat]
    shape = np.shape(tau) or (1,)
    out = {k: np.array([float(r[k]) for r in rows]).reshape(shape) for k in RAW_KEYS}
    out["p0"] = float(rows[0]["p0"])
    return out
