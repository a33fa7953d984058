"""The four-equation solution that fixes a DEQ's scale tau and the centring of phi.

A DEQ on data X centres its activation at the fixed-point scale of the four-equation
system, phi_c = phi - E[phi(tau xi)] (docs/theory.md §2.2, §3.2).  The exact kernels, the
finite-width networks and the samplers all take that solution from
:func:`centring_solution`: either the one the caller gives, checked against the requested
activation and variances, or a fresh solve at the data scale tau0 of
:func:`rmt_deq.data.conventions.data_scale`.
"""
from __future__ import annotations

from typing import Any

from rmt_deq._validation import check_variances, same_variance
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.data.conventions import SOURCE_SOLUTION, data_scale
from rmt_deq.errors import InvalidParameterError
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution

__all__ = ["centring_solution"]


def centring_solution(activation: ActivationLike, sa: Any, sb: Any, X: Any, tau0: Any = None,
                      solution: FixedPointSolution | None = None, labels: Any = None
                      ) -> tuple[FixedPointSolution, str]:
    """The four-equation solution fixing tau and the centring, and the source of tau0.

    Parameters
    ----------
    activation : name, Activation or callable
    sa, sb : float
        Weight variances (sb may be None: 1 - sa).
    X : array_like, shape (p, n)
        The data (columns are samples), for the data scale.
    tau0 : float, optional
        The data scale; default as :func:`rmt_deq.data.conventions.data_scale` (the plug-in
        estimate from ``labels``, or the stated fallback without labels).
    solution : FixedPointSolution, optional
        Use this solution (exclusive with ``tau0`` and ``labels``); it must be for the same
        activation, sa and sb (to :data:`rmt_deq._validation.VARIANCE_MATCH_RTOL`).
    labels : array_like, shape (n,), optional

    Returns
    -------
    solution : FixedPointSolution
    tau0_source : str
        Where tau0 came from (:data:`rmt_deq.data.conventions.SOURCE_SOLUTION` for a given
        solution, else the source of :func:`~rmt_deq.data.conventions.data_scale`).

    Raises
    ------
    InvalidParameterError
        ``solution`` is not a FixedPointSolution, comes with tau0 or labels, or was computed
        for another activation, sa or sb; or the inputs of the solve are invalid.
    """
    act = get_activation(activation)
    sa, sb = check_variances(sa, sb)
    if solution is not None:
        if not isinstance(solution, FixedPointSolution):
            raise InvalidParameterError(
                f"solution must be a FixedPointSolution (from solve_four_equations), got "
                f"{type(solution).__name__}")
        if tau0 is not None or labels is not None:
            raise InvalidParameterError(
                "pass either tau0/labels or solution (which already fixes tau and the "
                "centring)")
        for what, mine, theirs in (("sa", sa, solution.sa), ("sb", sb, solution.sb)):
            if not same_variance(mine, theirs):
                raise InvalidParameterError(
                    f"solution was computed with {what} = {float(theirs):g} but {what} = "
                    f"{mine:g} was requested")
        if solution.activation != act.name:
            raise InvalidParameterError(
                f"solution is for activation {solution.activation!r}, not {act.name!r}")
        return solution, SOURCE_SOLUTION
    scale = data_scale(X, labels, tau0=tau0)
    return solve_four_equations(act, sa, scale.tau0, sb), scale.source
