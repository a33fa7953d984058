"""The mpmath reference solve of the four-equation system at ``dps`` digits.

Independent of the float64 moment engines: every moment is the mpmath engine's
(:mod:`rmt_deq.moments.precise`); the tau equation is iterated on tau^2 at ``dps`` digits
from the float64 root, and its residual is checked at ``dps + 10``.  Reached through
``method="mpmath"`` of :func:`rmt_deq.fixed_point.four_equations.solve_four_equations`.
"""
from __future__ import annotations

from typing import Any

import mpmath as mp

from rmt_deq._results import SolverReport
from rmt_deq.activations import Activation
from rmt_deq.errors import ConvergenceError, InvalidParameterError
from rmt_deq.fixed_point._equations import assemble, check_residual, solve_message
from rmt_deq.fixed_point._tau_root import float_root, scan_uniqueness
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.moments.precise import mp_raw_moments, mp_second_central_moment, require_mp
from rmt_deq.moments.result import moments_from_raw

__all__ = ["solve_mpmath"]

#: the tolerance a solve at dps digits can certify: 10^(_TOL_DIGIT_MARGIN - dps)
_TOL_DIGIT_MARGIN = 5
#: the secant iteration stops when a step is below 10^(_STEP_DIGIT_MARGIN - dps) of q
_STEP_DIGIT_MARGIN = 3
#: the second secant point: the float64 root moved by 10^-_SECANT_OFFSET_DIGITS relative
_SECANT_OFFSET_DIGITS = 9
#: the residual is re-evaluated at this many more digits than the solve's
_CHECK_EXTRA_DIGITS = 10
#: the float64 root the secant iteration starts from: its tolerance and iteration cap
_START_TOL, _START_MAX_ITER = 1e-15, 100


def solve_mpmath(act: Activation, sa: float, sb: float, tau0: float, dps: int, tol: float,
                 max_iter: int, check_uniqueness: bool) -> FixedPointSolution:
    """Reference solution of the four equations with every moment and the root at ``dps``
    digits (``solve_four_equations(..., method="mpmath")``, which validated the inputs).

    A secant iteration on q = tau^2 from the float64 root (V0 alone per step), the moments
    at the root, and the tau-equation residual re-evaluated at ``dps + 10`` digits (an
    honest check: a residual at the working precision would only measure that precision
    against itself).
    """
    require_mp(act)
    floor = 10.0 ** (_TOL_DIGIT_MARGIN - dps)
    if tol < floor:
        raise InvalidParameterError(
            f"tol = {tol:g} is below what dps = {dps} digits can certify ({floor:g}); "
            f"raise dps or tol")
    c = sb * tau0 * tau0
    q_float, _, _, _, table, _ = float_root(act, sa, c, "auto", _START_TOL, _START_MAX_ITER)
    with mp.workdps(dps):
        sa_m, sb_m, t0 = mp.mpf(sa), mp.mpf(sb), mp.mpf(tau0)
        c_m = sb_m * t0 ** 2
        hist: list[float] = []

        def f(q: Any) -> Any:
            r = sa_m * mp_second_central_moment(act, mp.sqrt(q), dps) + c_m - q
            hist.append(float(abs(r) / q))
            return r

        step_tol = mp.mpf(10) ** (_STEP_DIGIT_MARGIN - dps)
        q0 = mp.mpf(q_float)
        q1 = mp.mpf(q_float) * (1 + mp.mpf(10) ** -_SECANT_OFFSET_DIGITS)
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
        m = moments_from_raw(mp_raw_moments(act, tau, dps), tau, "mpmath")
        fields, residual = assemble(act.name, sa_m, sb_m, t0, tau, m)
        # the honest residual: the tau equation at dps + 10 digits
        hi = dps + _CHECK_EXTRA_DIGITS
        with mp.workdps(hi):
            r_hi = abs(sa_m * mp_second_central_moment(act, tau, hi) + c_m - tau ** 2) \
                / tau ** 2
        residual = max(float(r_hi), residual)
    fields.update(sa=sa, sb=sb, tau0=tau0)
    check_residual(fields, residual, tol, hist)
    unique, q_scan = True, 0.0
    if check_uniqueness:
        unique, q_scan = scan_uniqueness(act, sa, c, float(q1), table)
    report = SolverReport(converged=True, residual=residual, tolerance=tol,
                          iterations=len(hist), history=hist,
                          message=solve_message(unique, q_scan))
    return FixedPointSolution(**fields, error_estimate={}, unique=unique, q_scan=q_scan,
                              report=report)
