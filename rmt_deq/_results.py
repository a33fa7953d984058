"""What every result object of the package shares: immutability and a solver report.

Results are frozen dataclasses.  Frozen is not enough for arrays and dicts, so results
store arrays read-only (:func:`readonly`) and mappings as read-only views
(:func:`frozen_mapping`); :func:`dataclasses.replace` builds a modified copy.  Every
iterative solver reports its convergence with one type, :class:`SolverReport`, in the
spirit of ``scipy.optimize.OptimizeResult``: failures raise (a
:class:`~rmt_deq.errors.ConvergenceError` carrying the same history), so a report attached
to a returned result always says ``converged=True``; it records how the solve went.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import numpy as np

from rmt_deq._io import json_ready

__all__ = ["SolverReport", "readonly", "frozen_mapping"]


def readonly(a: Any, dtype: Any = None) -> np.ndarray:
    """``a`` as a numpy array that cannot be written to (a read-only view when possible).

    The caller's array is never modified: when ``a`` is already an ndarray of the right
    dtype a read-only *view* of it is returned, so the result shares memory but writing
    through it raises ``ValueError: assignment destination is read-only``.
    """
    arr = np.asarray(a, dtype=dtype)
    view = arr.view()
    view.flags.writeable = False
    return view


def frozen_mapping(items: Mapping[str, Any] | Iterable[tuple[str, Any]],
                   arrays: bool = True) -> Mapping[str, Any]:
    """A read-only mapping (``types.MappingProxyType``) of ``items``; with ``arrays`` its
    ndarray values are made read-only too."""
    d = dict(items)
    if arrays:
        d = {k: (readonly(v) if isinstance(v, np.ndarray) else v) for k, v in d.items()}
    return MappingProxyType(d)


@dataclass(frozen=True)
class SolverReport:
    """How an iterative solve went.

    Attributes
    ----------
    converged : bool
        Whether the stopping test was met (always True on a returned result: a solve that
        fails raises :class:`~rmt_deq.errors.ConvergenceError` with the same history).
    residual : float
        The final residual, in the units the solver documents.
    tolerance : float
        The tolerance the residual was held to.
    iterations : int
        Iterations taken.
    history : tuple of float
        The residual after each iteration.
    message : str
        One line: what was solved, how it ended.
    """

    converged: bool
    residual: float
    tolerance: float
    iterations: int
    history: tuple = ()
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "history", tuple(float(h) for h in self.history))
        object.__setattr__(self, "residual", float(self.residual))
        object.__setattr__(self, "tolerance", float(self.tolerance))
        object.__setattr__(self, "iterations", int(self.iterations))

    def to_dict(self) -> dict:
        """JSON-ready dictionary (non-finite numbers as None)."""
        return json_ready(dataclasses.asdict(self))
