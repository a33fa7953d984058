"""The random features and the kernels of a problem (docs/generalization.md §1-§3).

* :func:`deq_features` -- the features Z = phi_c(U)/sqrt(m) (m x N) of one sampled DEQ at
  its fixed point (:func:`rmt_deq.networks.deq.deq_forward`), on all the columns of a
  problem at once with the problem's centring;
* :func:`problem_kernels` -- on all the columns: the exact CK and NTK of the DEQ
  (:func:`rmt_deq.kernels.exact.exact_kernels`), their surrogates from the statistics
  (the mixture's own, or plug-in; :mod:`rmt_deq.kernels.ck_surrogate`,
  :mod:`rmt_deq.kernels.ntk_surrogate`) and, optionally, the designed network's exact CK;
* :func:`hidden_layer_surrogate` -- the CK surrogate of the designed network's first layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rmt_deq._results import readonly
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.generalization.designed import DesignedExplicit
from rmt_deq.generalization.problem import Problem
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate, plugin_ck_surrogate
from rmt_deq.kernels.exact import exact_kernels
from rmt_deq.kernels.explicit_surrogate import explicit_ntk_surrogate
from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate, plugin_ntk_surrogate
from rmt_deq.networks.deq import deq_forward, sample_deq_weights

__all__ = ["ProblemKernels", "problem_solution", "deq_features", "problem_kernels",
           "exact_problem_kernels", "surrogate_problem_kernels", "hidden_layer_surrogate"]


def problem_solution(problem: Problem, activation: Any, sa: float,
                     sb: float | None = None) -> FixedPointSolution:
    """The four-equation solution at the problem's data scale (its centring is shared by
    the sampled DEQs, the exact kernels and the surrogates)."""
    return solve_four_equations(activation, sa, problem.tau0, sb)


def deq_features(problem: Problem, solution: FixedPointSolution, width: int, rng: Any, *,
                 family: str = "gaussian") -> np.ndarray:
    """Z (m x N) of one DEQ with weights drawn from ``rng`` (family of A as
    :func:`~rmt_deq.networks.deq.sample_deq_weights`); raises ConvergenceError when the
    forward iteration does not converge."""
    w = sample_deq_weights(width, problem.p, family=family, rng=rng)
    fwd = deq_forward(problem.X, solution.activation, solution.sa, solution.sb, weights=w,
                      solution=solution)
    return np.asarray(fwd.Z)


@dataclass(frozen=True, eq=False)
class ProblemKernels:
    """Kernels on all N columns of a problem (N x N, read-only).

    Attributes
    ----------
    ck_exact, ntk_exact : ndarray
        The DEQ's exact CK G and NTK (groups v, A, B).
    ck_surrogate, ntk_surrogate : ndarray
        Their surrogates from the statistics.
    explicit_ck_exact : ndarray or None
        The designed network's exact CK K_L.
    surrogate_statistics : str
        "mixture statistics" or "plug-in from labels".
    """

    ck_exact: np.ndarray = field(repr=False)
    ntk_exact: np.ndarray = field(repr=False)
    ck_surrogate: np.ndarray = field(repr=False)
    ntk_surrogate: np.ndarray = field(repr=False)
    explicit_ck_exact: np.ndarray | None = field(default=None, repr=False)
    surrogate_statistics: str = ""

    def __post_init__(self) -> None:
        for name in ("ck_exact", "ntk_exact", "ck_surrogate", "ntk_surrogate",
                     "explicit_ck_exact"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, readonly(v, dtype=float))


def exact_problem_kernels(problem: Problem, solution: FixedPointSolution
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(CK, NTK) of the DEQ on all columns, exact (one fixed-point solve)."""
    k = exact_kernels(problem.X, solution.activation, solution.sa, solution.sb,
                      get=("ck", "ntk"), solution=solution)
    return np.asarray(k.ck), np.asarray(k.ntk)


def surrogate_problem_kernels(problem: Problem, solution: FixedPointSolution
                              ) -> tuple[np.ndarray, np.ndarray, str]:
    """(CK surrogate, NTK surrogate, statistics source) on all columns."""
    if problem.mixture is not None:
        ck = mixture_ck_surrogate(problem.mixture, problem.sample, solution=solution)
        ntk = mixture_ntk_surrogate(problem.mixture, problem.sample, solution=solution)
        return np.asarray(ck.ck), np.asarray(ntk.ntk), "mixture statistics"
    ck = plugin_ck_surrogate(problem.X, problem.codes, solution=solution)
    ntk = plugin_ntk_surrogate(problem.X, problem.codes, solution=solution)
    return np.asarray(ck.ck), np.asarray(ntk.ntk), "plug-in from labels"


def hidden_layer_surrogate(problem: Problem, explicit: DesignedExplicit) -> np.ndarray:
    """The CK surrogate of the designed network's first layer on all columns, from the same
    statistics as :func:`surrogate_problem_kernels` (the hidden layer's K_1 for
    :func:`~rmt_deq.generalization.two_layer.two_layer_rf_equivalent`)."""
    if problem.mixture is not None:
        k = explicit_ntk_surrogate(problem.mixture, problem.sample, explicit.first_layer,
                                   groups=("v",))
    else:
        k = explicit_ntk_surrogate(None, None, explicit.first_layer, X=problem.X,
                                   labels=problem.codes, groups=("v",))
    return np.asarray(k.ck)


def problem_kernels(problem: Problem, solution: FixedPointSolution,
                    explicit: DesignedExplicit | None = None) -> ProblemKernels:
    """Every kernel of the experiments on the problem's columns (module docstring)."""
    ck, ntk = exact_problem_kernels(problem, solution)
    cks, ntks, src = surrogate_problem_kernels(problem, solution)
    enn = None if explicit is None else explicit.exact_ck(np.asarray(problem.X))
    return ProblemKernels(ck_exact=ck, ntk_exact=ntk, ck_surrogate=cks, ntk_surrogate=ntks,
                          explicit_ck_exact=enn, surrogate_statistics=src)
