"""The four-equation system (docs/theory.md §3): tau, alpha1..alpha3, helper alpha4.

With g1 = E[phi']^2, g2 = E[phi'']^2, g4 = E[(phi_c^2)''] at tau::

    tau^2 = sa E[phi_c(tau xi)^2] + sb tau0^2
    alpha1 = sb / (1 - sa g1)
    alpha4 = sb / (1 - sa g4 / 2)
    alpha2 = sa g2 alpha4^2 / (4 (1 - sa g1))
    alpha3 = sa g2 alpha1^2 / (2 (1 - sa g1))

Only the tau equation is nonlinear.  In q = tau^2 it reads q = T(q) with
T(q) = sa V0(sqrt q) + sb tau0^2, and by the heat equation dT/dq = sa g4 / 2
(docs/theory.md §3.3-3.4): the contraction condition of the tau map *is* the alpha4
condition.  It is solved by Newton's method on q, safeguarded by a bracket, to machine
precision (:mod:`rmt_deq.fixed_point._tau_root`); the solution is unique when T(q) - q
changes sign once on [0, q_max] (checked on a grid and reported).

What a returned solution guarantees: the residual of every equation is within its
tolerance (else :class:`~rmt_deq.errors.ConvergenceError`), and the estimated error of tau
and of each alpha -- propagated from the moment engine's error estimates -- is below
:data:`rmt_deq.fixed_point.accuracy.ACCURACY` relative (else
:class:`~rmt_deq.errors.PrecisionLossError`; :mod:`rmt_deq.fixed_point.accuracy` says how
alpha2 and alpha3 of odd phi are held).

Supported scales: tau0, sqrt(sb) tau0 (the input part of tau; tau >= sqrt(sb) tau0), sa
and sb in :data:`rmt_deq._validation.SCALE_RANGE`; outside,
:class:`~rmt_deq.errors.InvalidParameterError` says what to change.  The solved tau is at
most 1e8 times the larger of sqrt(sb) tau0 and the activation's scale (beyond, the tau
equation is declared without a root).  The engines, their measured accuracy against
mpmath over that range and the cost of a solve: docs/four_equations.md.
"""
from __future__ import annotations

import math
from typing import Any

from rmt_deq._results import SolverReport
from rmt_deq._validation import (check_choice, check_method_dps, check_positive_finite,
                                 check_positive_int, check_scale, check_tolerance,
                                 check_variances)
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.fixed_point._equations import (assemble, check_residual, residual_tolerance,
                                            solve_message)
from rmt_deq.fixed_point._tau_root import float_root, scan_uniqueness
from rmt_deq.fixed_point.accuracy import check_accuracy
from rmt_deq.fixed_point.high_precision import solve_mpmath
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.moments._engines import moments
from rmt_deq.moments._quadrature import origin
from rmt_deq.moments.gaussian import METHODS

__all__ = ["solve_four_equations"]


def solve_four_equations(
    activation: ActivationLike,
    sa: float,
    tau0: float = 1.0,
    sb: float | None = None,
    *,
    method: str = "auto",
    tol: float = 1e-15,
    max_iter: int = 100,
    dps: int | None = None,
    check_uniqueness: bool = True,
) -> FixedPointSolution:
    """Solve the four-equation system (the fixed point of the kernel map on mixture data).

    Parameters
    ----------
    activation : name, Activation or callable
        phi (it is centred at the solved tau; pass it uncentred).
    sa : float
        Variance of the recurrent weights, > 0.
    tau0 : float
        Data scale sqrt(tr C°/p) > 0 (the typical norm of a column of X), in
        :data:`rmt_deq._validation.SCALE_RANGE` together with sqrt(sb) tau0.
    sb : float, optional
        Variance of the input weights; default 1 - sa.
    method : {"auto", "closed", "quadrature", "mpmath", "table"}
        Moment engine.  ``"auto"``: the closed form when the activation has one, else the
        cached interpolation table (:func:`rmt_deq.moments.table.moment_table`, built on the
        first call for the activation) wherever it is valid and covers tau, else the
        quadrature engine (which hands small tau of analytic activations to the
        Taylor-series engine); ``"table"`` the same for any activation; ``"quadrature"``
        the quadrature engine only.  The Newton iterations, the uniqueness scan and the
        moments at the root use the same engine (``solution.method`` names the one of the
        moments).  ``"mpmath"`` solves at ``dps`` digits (slow; a reference): a secant
        iteration on tau^2 from the float64 root, every moment at ``dps`` digits, and the
        residual checked at ``dps + 10`` digits.
    tol : float
        Relative tolerance on q = tau^2 for Newton's method; for ``method="mpmath"`` the
        tolerance of the residual evaluated at ``dps + 10`` digits (at least 10^(5-dps)).
    max_iter : int
        Iteration cap (a :class:`ConvergenceError` with the history is raised past it);
        for ``method="mpmath"`` the cap of the secant iterations.
    dps : int, optional
        Decimal digits of ``method="mpmath"`` (default 50; range
        :data:`rmt_deq._validation.DPS_RANGE`); refused with the other methods.
    check_uniqueness : bool
        Scan T(q) - q for other roots (``method="mpmath"``: the float64 scan, which does not
        depend on the precision).

    Returns
    -------
    FixedPointSolution
        With ``report`` (:class:`rmt_deq._results.SolverReport`) recording the residual,
        its tolerance, the iterations and their history.

    Raises
    ------
    InvalidParameterError
        variances or tau0 out of range (:data:`rmt_deq._validation.SCALE_RANGE`), ``dps``
        outside its range or given with another method, ``tol`` not achievable.
    PrecisionLossError
        the estimated error of the result exceeds
        :data:`~rmt_deq.fixed_point.accuracy.ACCURACY` (rounding amplified at an extreme
        scale, or a numerical derivative): rescale the data or give the activation an
        analytic derivative / an mpmath implementation.
    NoFixedPointError
        the tau equation has no root (phi grows too fast for this sa), or a contraction
        condition fails: sa g1 >= 1 (alpha1 diverges) or sa g4/2 >= 1 (unstable tau map).
    ConvergenceError
        Newton did not reach ``tol`` in ``max_iter`` iterations, or the final residual
        fails its tolerance.
    DivergentMomentError
        phi's Gaussian moments do not exist.
    """
    act = get_activation(activation)
    sa, sb = check_variances(sa, sb)
    tau0 = check_positive_finite(tau0, "tau0 (the data scale sqrt(tr C°/p))")
    check_scale(tau0, "tau0")
    check_scale(math.sqrt(sb) * tau0, "sqrt(sb)*tau0", " (the input part of tau)")
    check_choice(method, "method", METHODS)
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_tolerance(tol)
    dps = check_method_dps(dps, method)
    if method == "mpmath":
        return solve_mpmath(act, sa, sb, tau0, dps, tol, max_iter, check_uniqueness)
    return _solve_float(act, sa, sb, tau0, method, tol, max_iter, check_uniqueness)


def _solve_float(act: Activation, sa: float, sb: float, tau0: float, method: str,
                 tol: float, max_iter: int, check_uniqueness: Any) -> FixedPointSolution:
    """The float64 solve (validated inputs): Newton on q = tau^2, the moments at the root
    with their error estimates, the residual and accuracy checks, the uniqueness scan."""
    c = sb * tau0 * tau0
    q, m, it, history, table, method = float_root(act, sa, c, method, tol, max_iter)
    tau = math.sqrt(q)
    if m is None or m.errors is None:
        m = (table.moments(tau, with_errors=True) if table is not None and table.covers(tau)
             else moments(act, tau, method, with_errors=True))
    fields, residual = assemble(act.name, sa, sb, tau0, tau, m)
    tolerance = residual_tolerance(fields["contraction"], tol)
    check_residual(fields, residual, tolerance, history)
    d0 = table.d0 if table is not None else origin(act)[1]        # phi'(0)
    error_estimate = check_accuracy(fields, d0)
    unique, q_scan = True, 0.0
    if check_uniqueness:
        unique, q_scan = scan_uniqueness(act, sa, c, q, table)
    report = SolverReport(converged=True, residual=residual, tolerance=tolerance,
                          iterations=it, history=history, message=solve_message(unique, q_scan))
    return FixedPointSolution(**fields, error_estimate=error_estimate, unique=unique,
                              q_scan=q_scan, report=report)
