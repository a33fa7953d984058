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
    "InvalidRecordError",
    "MemoryBudgetError",
    "PrecisionLossError",
    "ShapeMismatchError",
    "InconsistentDataError",
    "NonFiniteInputError",
    "DataFileError",
    "MissingDependencyError",
    "OutputPathError",
    "OutputWriteError",
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


class InvalidRecordError(InvalidParameterError):
    """A saved record (a JSON file the package wrote, e.g. a designed network) cannot be
    used: unreadable, not UTF-8 JSON, a missing or unknown key, a value of the wrong type,
    shape or range, or numbers that do not follow from the record's own parameters.  The
    message names the file (or record), the key and the fix."""


class MemoryBudgetError(InvalidParameterError):
    """A computation would need more memory than its budget (``max_memory``).

    Raised before anything large is allocated; the message gives the estimate and the fix
    (smaller sizes, a lower precision, or a larger ``max_memory``).
    """


class PrecisionLossError(InvalidParameterError):
    """A result cannot be computed to its guaranteed accuracy at the requested scale.

    Raised instead of returning a value whose estimated error exceeds the accuracy the
    function guarantees (rounding amplified at extreme scales, or an activation whose
    derivative is only known numerically).  The message gives the estimated error, the
    quantity it affects, and the fix (rescale the data, or give the activation an analytic
    ``derivative=`` / an ``mp_fn=``).
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


class DataFileError(RmtDeqError, ValueError):
    """An input file (a data ``.npz``, a mixture ``SPEC.json``) cannot be read, is not in
    the expected format, or lacks / has extra entries; the message names the file, what it
    is and what it should be."""


class MissingDependencyError(RmtDeqError, ImportError):
    """An optional dependency needed for this one feature is not installed (for instance
    scikit-learn for the built-in digits data); the message names the package and the
    ``pip install`` command that provides it."""


class OutputPathError(RmtDeqError, ValueError):
    """An output path is refused before anything is computed: it is a folder, its folder
    does not exist or is not writable, its suffix is not a supported format, or it names
    the same file as another output or an input."""


class OutputWriteError(RmtDeqError, OSError):
    """Writing an output failed (disk full, file-size limit...); the previous file at that
    path, if any, is left unchanged and no temporary file remains."""


class UnknownActivationError(RmtDeqError, ValueError):
    """An activation name (or its parameter list) is not recognised, or an activation
    callable/factory does not behave as one (it must map float64 arrays elementwise to real
    float64 arrays of the same shape)."""


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
