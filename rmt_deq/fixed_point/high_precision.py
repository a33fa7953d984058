"""The mpmath reference paths: Gaussian moments and the four-equation solve at ``dps`` digits.

Independent of the float64 engines: every moment is a tanh-sinh quadrature of its defining
integral (Hermite-weighted, phi centred at phi(0)), at a working precision raised by the
digits the scale cancels; the four-equation solve iterates on tau^2 at ``dps`` digits and
checks its residual at ``dps + 10``.  Reached through ``method="mpmath"`` of
:func:`rmt_deq.moments.gaussian.gaussian_moments` and :func:`rmt_deq.fixed_point.four_equations.solve_four_equations`,
and :func:`mp_gaussian_moments`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import mpmath as mp
import numpy as np

from rmt_deq._validation import check_dps
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.moments.closed_forms import RAW_KEYS
from rmt_deq.errors import ConvergenceError, InvalidParameterError, UnknownOptionError
from rmt_deq.moments.gaussian import GaussianMoments, _check_tau, moments_from_raw

__all__ = ["mp_gaussian_moments", "mp_second_central_moment", "mpmath_raw", "solve_mpmath"]


def _mp_breakpoints(act: Activation, tau: Any) -> list:
    pts = {mp.mpf(0)}
    for x in list(act.kinks) + [s * act.scale for s in (-4, -1, -0.25, 0.25, 1, 4)]:
        xi = mp.mpf(x) / tau
        if abs(xi) < 40:
            pts.add(xi)
    for xi in (-8, -4, -2, 2, 4, 8):
        pts.add(mp.mpf(xi))
    return [-mp.inf] + sorted(pts) + [mp.inf]


def _mp_extra_digits(tau: float) -> int:
    """Digits the centred Hermite-weighted integrals cancel at scale tau (three powers of
    tau at small tau for E[He3 P], one at large tau for E[He2 P^2]), plus a margin."""
    lt = math.log10(float(tau))
    return int(math.ceil(3.0 * max(0.0, -lt) + max(0.0, lt))) + 5


def _mpmath_raw_one(act: Activation, tau: Any, dps: int) -> dict:
    """Centred raw moments at ``dps`` digits (working precision raised by the digits the
    scale cancels, so the result keeps ``dps`` digits at any tau)."""
    if act.mp_fn is None:
        raise UnknownOptionError(
            f"activation {act.name!r} has no mpmath implementation; pass mp_fn= to "
            f"Activation.from_callable to enable method='mpmath'")
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
    if act.mp_fn is None:
        raise UnknownOptionError(
            f"activation {act.name!r} has no mpmath implementation; pass mp_fn= to "
            f"Activation.from_callable to enable method='mpmath'")
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
    flat = np.atleast_1d(tau).reshape(-1)
    rows = [_mpmath_raw_one(act, float(t), dps) for t in flat]
    shape = np.shape(tau) or (1,)
    out = {k: np.array([float(r[k]) for r in rows]).reshape(shape) for k in RAW_KEYS}
    out["p0"] = float(rows[0]["p0"])
    return out


def mp_gaussian_moments(activation: ActivationLike, tau: Any, dps: int = 50) -> GaussianMoments:
    """Moments as mpmath numbers at ``dps`` digits (a single tau; independent reference).

    ``dps`` must lie in :data:`rmt_deq._validation.DPS_RANGE`.
    """
    act = get_activation(activation)
    dps = check_dps(dps)
    t = float(_check_tau(tau))
    with mp.workdps(dps):
        raw = _mpmath_raw_one(act, t, dps)
        return moments_from_raw(raw, mp.mpf(t), "mpmath")



def solve_mpmath(act: Any, sa: float, sb: float, tau0: float, dps: int, tol: float,
                  max_iter: int, check_uniqueness: bool) -> FixedPointSolution:
    """Reference solution of the four equations with every moment and the root at ``dps``
    digits (``solve_four_equations(..., method="mpmath")``, which validated the inputs).

    A secant iteration on q = tau^2 from the float64 root (V0 alone per step), the moments
    at the root, and the tau-equation residual re-evaluated at ``dps + 10`` digits (an
    honest check: a residual at the working precision would only measure that precision
    against itself).
    """
    from rmt_deq.fixed_point.four_equations import (FixedPointSolution, _assemble, _check_residual, _float_root,
                              _scan_uniqueness, _with_scan)
    if act.mp_fn is None:
        raise UnknownOptionError(
            f"activation {act.name!r} has no mpmath implementation; pass mp_fn= to "
            f"Activation.from_callable to enable method='mpmath'")
    floor = 10.0 ** (5 - dps)
    if tol < floor:
        raise InvalidParameterError(
            f"tol = {tol:g} is below what dps = {dps} digits can certify ({floor:g}); "
            f"raise dps or tol")
    c = sb * tau0 * tau0
    q_float, _, _, _, table, _ = _float_root(act, act, sa, c, "auto", 1e-15, 100)
    with mp.workdps(dps):
        sa_m, sb_m, t0 = mp.mpf(sa), mp.mpf(sb), mp.mpf(tau0)
        c_m = sb_m * t0 ** 2
        hist: list[float] = []

        def f(q: Any) -> Any:
            r = sa_m * mp_second_central_moment(act, mp.sqrt(q), dps) + c_m - q
            hist.append(float(abs(r) / q))
            return r

        step_tol = mp.mpf(10) ** (3 - dps)
        q0, q1 = mp.mpf(q_float), mp.mpf(q_float) * (1 + mp.mpf(10) ** -9)
        f0, f1 = f(q0), f(q1)
        converged = False
        for _ in range(max_iter):
            if f1 == f0:
                converged = abs(f1) <= step_tol * q1
                break
            q2 = q1 - f1 * (q1 - q0) / (f1 - f0)
            if not q2 > 0:
                break
            q0, f0, q1 = q1, f1, q2
            if abs(q1 - q0) <= step_tol * q1:
                converged = True
                break
            f1 = f(q1)
        if not converged:
            raise ConvergenceError(
                f"the mpmath secant iteration on tau^2 did not converge for {act.name!r} at "
                f"sa = {sa:g} within {max_iter} iterations at {dps} digits; raise max_iter "
                f"or dps", hist)
        tau = mp.sqrt(q1)
        m = moments_from_raw(_mpmath_raw_one(act, tau, dps), tau, "mpmath")
        sol = _assemble(act.name, sa_m, sb_m, t0, tau, m, len(hist), hist)
        # the honest residual: the tau equation at dps + 10 digits
        with mp.workdps(dps + 10):
            r_hi = abs(sa_m * mp_second_central_moment(act, tau, dps + 10) + c_m - tau ** 2) \
                / tau ** 2
        residual = max(float(r_hi), sol["residual"])
    sol.update(sa=sa, sb=sb, tau0=tau0, residual=residual, tolerance=tol)
    _check_residual(sol, hist)
    if check_uniqueness:
        _with_scan(sol, *_scan_uniqueness(act, sa, c, float(q1), table))
    return FixedPointSolution(**sol)
