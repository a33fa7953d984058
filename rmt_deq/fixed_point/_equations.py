"""The four equations at a solved tau: the coefficients, the contraction conditions, the
residuals and their tolerance (shared by the float64 and the mpmath solves; inputs trusted).

With g1 = E[phi']^2, g2 = E[phi'']^2, g4 = E[(phi_c^2)''] at tau (docs/theory.md §3.2)::

    alpha1 = sb / (1 - sa g1)
    alpha4 = sb / (1 - sa g4 / 2)
    alpha2 = sa g2 alpha4^2 / (4 (1 - sa g1))
    alpha3 = sa g2 alpha1^2 / (2 (1 - sa g1))
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rmt_deq.errors import ConvergenceError, NoFixedPointError
from rmt_deq.moments.result import GaussianMoments

__all__ = ["assemble", "residual_tolerance", "check_residual", "solve_message"]

_EPS = float(np.finfo(float).eps)
#: the smallest relative tolerance a float64 Newton step can meet (a few ulps of q)
_TOL_FLOOR = 8 * _EPS
#: rounding of the solved forms of the alpha equations, before the 1/(1 - sa g)
#: amplification near the contraction limit
_ALPHA_ROUNDING = 16 * _EPS


def assemble(name: str, sa: Any, sb: Any, tau0: Any, tau: Any, m: GaussianMoments
             ) -> tuple[dict, float]:
    """The domain fields of a :class:`~rmt_deq.fixed_point.solution.FixedPointSolution`
    from the moments at the root (floats or mpf; the fields are floats), and the residual
    of the four equations as written; NoFixedPointError when a contraction condition fails
    (docs/theory.md §3.3)."""
    g1, g2, g4 = m.g1, m.g2, m.g4
    k1, k4 = sa * g1, sa * g4 / 2
    if not k4 < 1:
        raise NoFixedPointError(
            f"the tau map is not contracting at the fixed point: sa*g4/2 = {float(k4):.6g} >= 1 "
            f"({name}, sa = {float(sa):g}); the fixed point is unstable and alpha4 diverges; "
            f"reduce sa")
    if not k1 < 1:
        raise NoFixedPointError(
            f"sa*E[phi']^2 = {float(k1):.6g} >= 1 ({name}, sa = {float(sa):g}, tau = "
            f"{float(tau):.6g}): the linear part of the Implicit-CK (alpha1 = sb/(1 - sa g1)) "
            f"diverges; reduce sa")
    alpha1 = sb / (1 - k1)
    alpha4 = sb / (1 - k4)
    alpha2 = sa * g2 * alpha4 ** 2 / (4 * (1 - k1))
    alpha3 = sa * g2 * alpha1 ** 2 / (2 * (1 - k1))
    # residuals of the four equations as written (not the solved forms)
    r_tau = abs(sa * m.V0 + sb * tau0 ** 2 - tau ** 2) / tau ** 2
    r1 = abs(sa * g1 * alpha1 + sb - alpha1) / abs(alpha1)
    r2 = abs(sa * (g1 * alpha2 + g2 * alpha4 ** 2 / 4) - alpha2) / max(abs(alpha2), 1.0)
    r3 = abs(sa * (g1 * alpha3 + g2 * alpha1 ** 2 / 2) - alpha3) / max(abs(alpha3), 1.0)
    r4 = abs(sa * g4 / 2 * alpha4 + sb - alpha4) / abs(alpha4)
    residual = float(max(r_tau, r1, r2, r3, r4))
    contraction = {"tau_map": float(k4), "alpha1": float(k1), "deq_jacobian": float(sa * m.h0)}
    fields = dict(
        activation=name, sa=float(sa), sb=float(sb), tau0=float(tau0), tau=float(tau),
        alpha1=float(alpha1), alpha2=float(alpha2), alpha3=float(alpha3),
        alpha4=float(alpha4), g1=float(g1), g2=float(g2), g4=float(g4),
        centring=float(m.mean), moments=m, contraction=contraction, method=m.method)
    return fields, residual


def residual_tolerance(contraction: dict, tol: float) -> float:
    """What the residual of a solution to ``tol`` can be: Newton stops when its step is
    below tol q, i.e. |f| <= tol q |f'| (f' = sa g4/2 - 1); the alpha equations carry the
    rounding of their solved forms, amplified by 1/(1 - sa g) near the contraction limit."""
    k = max(contraction["alpha1"], contraction["tau_map"], 0.0)
    return max(tol, _TOL_FLOOR) * max(1.0, abs(1.0 - contraction["tau_map"])) \
        + _ALPHA_ROUNDING / (1.0 - k)


def check_residual(fields: dict, residual: float, tolerance: float,
                   history: Sequence[float]) -> None:
    """ConvergenceError (with the history) when the residual fails its tolerance."""
    if not residual <= tolerance:
        raise ConvergenceError(
            f"the four-equation residual {residual:.3g} of {fields['activation']!r} at "
            f"sa = {fields['sa']:g}, tau0 = {fields['tau0']:g} fails its tolerance "
            f"{tolerance:.3g} "
            f"(the moments at the root disagree with those the iteration used); the result "
            f"is not returned -- rescale the data or try method='mpmath'", history)


def solve_message(unique: bool, q_scan: float) -> str:
    """The report's message: converged, with a warning when the uniqueness scan found
    another root."""
    if unique:
        return "converged"
    return ("converged; WARNING: the tau equation has another root in "
            f"[0, {q_scan:.3g}] (returned the stable one)")
