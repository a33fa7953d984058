"""The four-equation solution that fixes a DEQ's scale tau and the centring of phi.

A DEQ of the package uses phi_c = phi - E[phi(tau xi)], centred at the fixed-point scale tau
of the four-equation system solved at the data scale tau0 (docs/theory.md §2.2, §3.2).  The
finite-width network (:mod:`rmt_deq.networks.deq`), its sampler (:mod:`rmt_deq.sampling.deq`)
and the exact kernels (:mod:`rmt_deq.kernels.exact`) all take their centring from
:func:`centring_solution`, so that the three are the same network.  The activation, sa, sb
and X are trusted (validated by the caller's public function).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rmt_deq._validation import same_variance
from rmt_deq.activations import Activation
from rmt_deq.data._scale import SOURCE_SOLUTION, resolve_scale
from rmt_deq.errors import InvalidParameterError
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution

__all__ = ["check_solution", "centring_solution"]


def check_solution(solution: Any) -> FixedPointSolution:
    """``solution`` if it is a FixedPointSolution, else InvalidParameterError."""
    if not isinstance(solution, FixedPointSolution):
        raise InvalidParameterError(
            f"solution must be a FixedPointSolution (from solve_four_equations), got "
            f"{type(solution).__name__}")
    return solution


def centring_solution(act: Activation, sa: float, sb: float, X: np.ndarray, tau0: Any,
                      solution: FixedPointSolution | None, labels: Any = None
                      ) -> tuple[FixedPointSolution, str]:
    """The four-equation solution fixing tau and the centring, and the source of tau0.

    tau0 follows :func:`rmt_deq.data.conventions.data_scale` (given, plug-in from
    ``labels``, or the stated fallback without labels) unless a ``solution`` is given,
    which must be for the same activation, sa and sb (to :data:`rmt_deq._validation.VARIANCE_MATCH_RTOL`).

    Raises
    ------
    InvalidParameterError
        A solution that is not a FixedPointSolution, given together with tau0 or labels,
        or for another activation, sa or sb; a bad tau0 or labels (see ``data_scale``).
    """
    if solution is not None:
        check_solution(solution)
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
    tau0_value, source = resolve_scale(X, labels, tau0)
    return solve_four_equations(act, sa, tau0_value, sb), source
