"""Exceptions raised by :mod:`rmt_deq`.

Every failure the package detects raises one of these, with a message that names the
problem and the fix.  All derive from :class:`RmtDeqError`; input-validation errors also
derive from :class:`ValueError` so that generic ``except ValueError`` code keeps working.
"""
from __future__ import annotations

from typing import Sequence

__all__ = [
    "RmtDeqError",
    "InvalidParameterError",
    "MemoryBudgetError",
    "ShapeMismatchError",
    "InconsistentDataError",
    "NonFiniteInputError",
    "UnknownActivationError",
    "UnknownOptionError",
    "DivergentMomentError",
    "NoFixedPointError",
    "ConvergenceError",
    "InfeasibleDesignError",
]


class RmtDeqError(Exception):
    """Base class of every exception raised by rmt_deq."""


class InvalidParameterError(RmtDeqError, ValueError):
    """A scalar parameter (a variance, a scale, a tolerance...) is out of its valid range."""


class MemoryBudgetError(InvalidParameterError):
    """A computation would need more memory than its budget (``max_memory``).

    Raised before anything large is allocated; the message gives the estimate and the fix
    (smaller sizes, a lower precision, or a larger ``max_memory``).
    """


class ShapeMismatchError(RmtDeqError, ValueError):
    """Arrays have incompatible shapes (remember: X is p x n, columns are samples)."""


class InconsistentDataError(InvalidParameterError):
    """Given statistics (class means, covariances) contradict the data they come with.

    The message names the statistic, the factor by which it is off and the likely fix
    (usually a units convention: x_i = (mu_a + omega_i)/sqrt(p)).
    """


class NonFiniteInputError(RmtDeqError, ValueError):
    """Input data contains NaN or infinite entries."""


class UnknownActivationError(RmtDeqError, ValueError):
    """An activation name (or its parameter list) is not recognised."""


class UnknownOptionError(RmtDeqError, TypeError):
    """An option/keyword or a method name is not recognised (options are never ignored)."""


class DivergentMomentError(RmtDeqError, ArithmeticError):
    """A Gaussian moment E[h(tau xi)] of the activation does not exist (or is not finite)."""


class NoFixedPointError(RmtDeqError):
    """The existence/uniqueness conditions of a fixed point fail (e.g. sa*g1 >= 1)."""


class ConvergenceError(RmtDeqError):
    """An iterative solver did not reach its tolerance.

    Attributes
    ----------
    residuals : tuple of float
        The residual after each iteration, so the caller can see how it failed
        (stagnation, divergence, oscillation).
    """

    def __init__(self, message: str, residuals: Sequence[float] = ()) -> None:
        self.residuals = tuple(float(r) for r in residuals)
        if self.residuals:
            tail = ", ".join(f"{r:.3g}" for r in self.residuals[-5:])
            message = f"{message} (last residuals: {tail}; {len(self.residuals)} iterations)"
        super().__init__(message)


class InfeasibleDesignError(RmtDeqError):
    """A design target cannot be matched by the requested explicit-network family.

    Attributes
    ----------
    residual : float
        The best least-squares residual that was reached.
    failing_equation : str
        The name of the equation with the largest error at the best point.
    """

    def __init__(self, message: str, residual: float = float("nan"),
                 failing_equation: str = "") -> None:
        self.residual = float(residual)
        self.failing_equation = failing_equation
        super().__init__(message)
