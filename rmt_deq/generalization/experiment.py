"""Observed generalization over seeds beside its prediction (docs/generalization.md §3).

Four learners on one :class:`~rmt_deq.generalization.problem.Problem`:

* ``deq_rf`` -- ridge on the features of a sampled DEQ of width m (new weights per seed);
* ``enn_rf`` -- ridge on the features of the designed explicit network of the same width;
* ``ck_kernel`` -- kernel ridge with the DEQ's exact CK;
* ``ntk_kernel`` -- kernel ridge with the DEQ's exact NTK.

Observed values are means over the seeds with their standard errors (the kernels are
deterministic: standard error 0).  Predicted values come from a kernel alone, through the
deterministic equivalent of :mod:`rmt_deq.generalization.equivalent` (width m for the
random features, infinite for the kernels), with two sources of the kernel:

* ``"surrogate"`` -- the CK/NTK surrogate from the statistics (the mixture's or plug-in):
  no bivariate expectation, no fixed point of the kernel map, no network.  The designed
  network's CK surrogate equals the DEQ's (the design matches the four numbers it depends
  on, docs/theory.md §4.1), so ``enn_rf`` is predicted from the same matrix;
* ``"exact"`` -- the exact infinite-width CK of the DEQ (for ``deq_rf``) or of the designed
  network (for ``enn_rf``).  For the kernel learners the exact-kernel "prediction" is the
  observation itself and is not repeated.

A designed network with two layers has random features only given its hidden layer, which
is ``hidden_ratio`` x m wide; its ``enn_rf`` is predicted by the two-layer equivalent
(:mod:`rmt_deq.generalization.two_layer`), from the first layer's kernel (exact, or its
surrogate from the same statistics) beside the network's CK.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._results import frozen_mapping
from rmt_deq._validation import check_choice, check_positive_finite, check_positive_int
from rmt_deq.errors import InvalidParameterError
from rmt_deq.generalization.designed import DesignedExplicit, designed_explicit
from rmt_deq.generalization.equivalent import EquivalentPrediction, rf_ridge_equivalent
from rmt_deq.generalization.features import (deq_features, exact_problem_kernels,
                                             hidden_layer_surrogate, problem_solution,
                                             surrogate_problem_kernels)
from rmt_deq.generalization.problem import Problem
from rmt_deq.generalization.ridge import RIDGE_GRID, check_ridges, ridge_scores
from rmt_deq.generalization.two_layer import two_layer_rf_equivalent

__all__ = ["METHODS", "RF_METHODS", "KERNEL_METHODS", "SOURCES", "Observed", "Predicted",
           "GeneralizationResult", "generalization_experiment", "check_widths", "predict"]

RF_METHODS = ("deq_rf", "enn_rf")
KERNEL_METHODS = ("ck_kernel", "ntk_kernel")
METHODS = RF_METHODS + KERNEL_METHODS
#: where a prediction's kernel comes from
SOURCES = ("surrogate", "exact")
_SCORES = ("train_mse", "test_mse", "test_accuracy")


@dataclass(frozen=True)
class Observed:
    """Mean and standard error over seeds of one learner at one width and ridge.

    ``width`` is ``inf`` for the kernel learners; ``seeds`` the number of weight draws
    (1 for a kernel, whose standard errors are 0).
    """

    method: str
    width: float
    ridge: float
    seeds: int
    train_mse: float
    train_mse_se: float
    test_mse: float
    test_mse_se: float
    test_accuracy: float
    test_accuracy_se: float

    def to_dict(self) -> dict:
        return json_ready({k: getattr(self, k) for k in self.__dataclass_fields__})


@dataclass(frozen=True)
class Predicted:
    """A prediction of one learner's errors from a kernel (no training).

    Attributes
    ----------
    method, source : str
    width, ridge : float
    train_mse, test_mse, test_accuracy : float
    equivalent : EquivalentPrediction
        The deterministic equivalent's details (delta, mean and variance parts).
    """

    method: str
    source: str
    width: float
    ridge: float
    train_mse: float
    test_mse: float
    test_accuracy: float
    equivalent: EquivalentPrediction = field(repr=False)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("method", "source", "width", "ridge",
                                           "train_mse", "test_mse", "test_accuracy")}
        d["delta"] = self.equivalent.delta
        d["test_mse_variance_part"] = self.equivalent.test_mse_variance_part
        return json_ready(d)


def _find(items: Iterable[Any], **keys: Any) -> Any:
    for it in items:
        if all(getattr(it, k) == v for k, v in keys.items()):
            return it
    raise InvalidParameterError(f"no result with {keys}; computed: "
                                f"{sorted({tuple(getattr(i, k) for k in keys) for i in items})}")


@dataclass(frozen=True, eq=False)
class GeneralizationResult:
    """Observed and predicted errors of the learners on one problem.

    Attributes
    ----------
    problem : mapping
        The problem's summary (:meth:`Problem.to_dict`).
    activation : str
    sa, sb : float
    widths, ridges : tuple of float
    seeds : int
    observed : tuple of Observed
    predicted : tuple of Predicted
    timing : mapping of str to float
        Wall-clock seconds: ``predicted_surrogate_s`` (surrogate kernels and equivalents),
        ``predicted_exact_s`` (exact kernels and equivalents), ``observed_s`` (sampling
        and fitting the random features over all seeds, plus the exact kernels and kernel
        ridge).
    design : mapping or None
        The designed network's record (when ``enn_rf`` was run).
    hidden_ratio : float
        Hidden-layer width of the designed network over m (``enn_rf``).
    """

    problem: Mapping[str, Any]
    activation: str
    sa: float
    sb: float
    widths: tuple
    ridges: tuple
    seeds: int
    observed: tuple
    predicted: tuple
    timing: Mapping[str, float]
    design: Mapping[str, Any] | None = None
    hidden_ratio: float = 1.0

    def observed_for(self, method: str, ridge: float, width: float | None = None) -> Observed:
        """The observation of ``method`` at ``ridge`` (and ``width`` for random features)."""
        w = math.inf if method in KERNEL_METHODS else width
        return _find(self.observed, method=method, ridge=ridge, width=w)

    def predicted_for(self, method: str, ridge: float, width: float | None = None,
                      source: str = "surrogate") -> Predicted:
        """The prediction of ``method`` at ``ridge`` (and ``width``) from ``source``."""
        w = math.inf if method in KERNEL_METHODS else width
        return _find(self.predicted, method=method, ridge=ridge, width=w, source=source)

    def to_dict(self) -> dict:
        return json_ready({
            "problem": dict(self.problem), "activation": self.activation, "sa": self.sa,
            "sb": self.sb, "widths": list(self.widths), "ridges": list(self.ridges),
            "seeds": self.seeds, "observed": [o.to_dict() for o in self.observed],
            "predicted": [p.to_dict() for p in self.predicted],
            "timing": dict(self.timing), "hidden_ratio": self.hidden_ratio,
            "design": None if self.design is None else dict(self.design)})


def check_widths(widths: Any) -> tuple[int, ...]:
    """A non-empty tuple of positive integer widths (an integer is one width)."""
    vals = [widths] if isinstance(widths, (int, np.integer)) else list(widths)
    if not vals:
        raise InvalidParameterError("give at least one width")
    return tuple(check_positive_int(w, "width") for w in vals)


def _mean_se(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    R = rows.shape[0]
    return rows.mean(axis=0), rows.std(axis=0, ddof=1) / math.sqrt(R)


def _observe_rf(problem: Problem, feats: Any, widths: tuple, ridges: tuple, seeds: int,
                seed: int, stream: int, method: str) -> list[Observed]:
    """Ridge on fresh features per seed; ``feats(width, rng)`` returns m x N."""
    tr, te = np.asarray(problem.train), np.asarray(problem.test)
    ctr, cte = np.asarray(problem.codes)[tr], np.asarray(problem.codes)[te]
    out = []
    for m in widths:
        rows = np.empty((seeds, len(ridges), 3))
        for s in range(seeds):
            rng = np.random.default_rng(np.random.SeedSequence([seed, stream, m, s]))
            Z = feats(m, rng)
            Ztr, Zte = Z[:, tr], Z[:, te]
            sc = ridge_scores(Ztr.T @ Ztr, Zte.T @ Ztr, ctr, cte, problem.K, ridges)
            rows[s] = [[getattr(x, k) for k in _SCORES] for x in sc]
        mean, se = _mean_se(rows)
        for j, lam in enumerate(ridges):
            out.append(Observed(method=method, width=float(m), ridge=lam, seeds=seeds,
                                train_mse=mean[j, 0], train_mse_se=se[j, 0],
                                test_mse=mean[j, 1], test_mse_se=se[j, 1],
                                test_accuracy=mean[j, 2], test_accuracy_se=se[j, 2]))
    return out


def _observe_kernel(problem: Problem, Kall: np.ndarray, ridges: tuple,
                    method: str) -> list[Observed]:
    tr, te = np.asarray(problem.train), np.asarray(problem.test)
    c = np.asarray(problem.codes)
    sc = ridge_scores(Kall[np.ix_(tr, tr)], Kall[np.ix_(te, tr)], c[tr], c[te], problem.K,
                      ridges)
    return [Observed(method=method, width=math.inf, ridge=x.ridge, seeds=1,
                     train_mse=x.train_mse, train_mse_se=0.0, test_mse=x.test_mse,
                     test_mse_se=0.0, test_accuracy=x.test_accuracy, test_accuracy_se=0.0)
            for x in sc]


def predict(problem: Problem, Kall: np.ndarray, method: str, source: str, width: float,
            ridges: tuple, hidden: tuple | None = None) -> list[Predicted]:
    """The deterministic equivalent of ``method`` at ``width`` from the kernel ``Kall``
    (N x N on the problem's columns).  ``hidden`` = (K1all, gain, hidden_width): the
    features are those of a two-layer network whose first layer (kernel K1all) is
    hidden_width wide (:func:`~rmt_deq.generalization.two_layer.two_layer_rf_equivalent`)."""
    tr, te = np.asarray(problem.train), np.asarray(problem.test)
    c = np.asarray(problem.codes)

    def blocks(K: np.ndarray) -> tuple:
        return K[np.ix_(tr, tr)], K[np.ix_(te, tr)], np.diag(K)[te]

    if hidden is None:
        eq = rf_ridge_equivalent(*blocks(Kall), c[tr], c[te], problem.K, width=width,
                                 ridges=ridges)
    else:
        K1all, gain, m1 = hidden
        eq = two_layer_rf_equivalent(blocks(K1all), blocks(Kall), gain, c[tr], c[te],
                                     problem.K, width=width, hidden_width=m1, ridges=ridges)
    return [Predicted(method=method, source=source, width=float(width), ridge=e.ridge,
                      train_mse=e.train_mse, test_mse=e.test_mse,
                      test_accuracy=e.test_accuracy, equivalent=e) for e in eq]


def generalization_experiment(problem: Problem, activation: Any, sa: float,
                              sb: float | None = None, *, widths: Any = (1024,),
                              ridges: Any = RIDGE_GRID, seeds: int = 10,
                              methods: Iterable[str] = METHODS,
                              sources: Iterable[str] = SOURCES,
                              explicit_family: str | None = None,
                              weight_family: str = "gaussian",
                              hidden_ratio: float = 1.0,
                              seed: int = 0) -> GeneralizationResult:
    """Observe the learners over ``seeds`` weight draws and predict them (module docstring).

    Parameters
    ----------
    problem : Problem
        :func:`~rmt_deq.generalization.problem.mixture_problem` or
        :func:`~rmt_deq.generalization.problem.data_problem`.
    activation, sa, sb :
        The DEQ (sb defaults to 1 - sa).
    widths : int or sequence of int
        m of the random-feature learners.
    ridges : float or sequence of float
        lambda > 0, on the Gram scale.
    seeds : int
        Weight draws per width (>= 2, for the standard errors).
    methods : iterable of {"deq_rf", "enn_rf", "ck_kernel", "ntk_kernel"}
    sources : iterable of {"surrogate", "exact"}
        Kernels the predictions are computed from.
    explicit_family : str, optional
        Design family of the explicit network (default per activation:
        :data:`~rmt_deq.generalization.designed.DEFAULT_FAMILIES`).
    weight_family : {"gaussian", "orthogonal", "symmetric"}
        Family of the DEQ's recurrent weights.
    hidden_ratio : float
        Width of the designed network's layers below the last, as a multiple of m
        (rounded; default 1: every layer m wide).  Only a network of two or more layers
        depends on it; a wider hidden layer brings its features closer to random features
        of its limiting kernel.  The ``enn_rf`` prediction of a two-layer network accounts
        for this width (docs/generalization.md §2.4); one with more layers is predicted as
        random features of its CK.
    seed : int
        Root of every weight draw (seed s of width m of a learner is a fixed child).

    Returns
    -------
    GeneralizationResult

    Raises
    ------
    InvalidParameterError, UnknownOptionError
        Bad widths, ridges, seeds (< 2), methods or sources.
    NoFixedPointError, ConvergenceError, InfeasibleDesignError
        From the solvers (the DEQ has no stable fixed point at this sa, the forward
        iteration or the design fails).
    """
    if not isinstance(problem, Problem):
        raise InvalidParameterError(f"problem must be a Problem, got {type(problem).__name__}")
    ws = check_widths(widths)
    rid = check_ridges(ridges)
    R = check_positive_int(seeds, "seeds")
    if R < 2:
        raise InvalidParameterError("seeds must be >= 2 (the standard errors need two draws)")
    meths = tuple(check_choice(m, "method", METHODS) for m in methods)
    srcs = tuple(check_choice(s, "source", SOURCES) for s in sources)
    if not meths:
        raise InvalidParameterError(f"give at least one method of {METHODS}")
    ratio = check_positive_finite(hidden_ratio, "hidden_ratio")
    sol = problem_solution(problem, activation, sa, sb)
    explicit: DesignedExplicit | None = None
    if "enn_rf" in meths:
        explicit = designed_explicit(activation, sa, problem.tau0, sb, explicit_family)
    timing: dict[str, float] = {}
    predicted: list[Predicted] = []
    observed: list[Observed] = []
    X = np.asarray(problem.X)
    # ---- predictions from the statistics alone
    two_layer = explicit is not None and explicit.depth == 2

    def hidden(K1all: np.ndarray | None, meth: str, m: int) -> tuple | None:
        """The two-layer equivalent's hidden layer for the designed network."""
        if meth != "enn_rf" or K1all is None:
            return None
        return K1all, explicit.gains[1], max(1, round(ratio * m))

    if "surrogate" in srcs:
        t0 = time.perf_counter()
        cks, ntks, _ = surrogate_problem_kernels(problem, sol)
        k1s = hidden_layer_surrogate(problem, explicit) if two_layer else None
        for meth in meths:
            if meth in RF_METHODS:
                for m in ws:
                    predicted += predict(problem, cks, meth, "surrogate", m, rid,
                                         hidden(k1s, meth, m))
            else:
                predicted += predict(problem, cks if meth == "ck_kernel" else ntks, meth,
                                     "surrogate", math.inf, rid)
        timing["predicted_surrogate_s"] = time.perf_counter() - t0
    # ---- exact kernels: the kernel learners' observations and the exact predictions
    t0 = time.perf_counter()
    ck = ntk = None
    if "exact" in srcs or any(m in KERNEL_METHODS for m in meths):
        ck, ntk = exact_problem_kernels(problem, sol)
    t_exact = time.perf_counter() - t0
    if "exact" in srcs:
        t0 = time.perf_counter()
        enn_layers = explicit.exact_layers(X) if explicit is not None else None
        k1x = enn_layers[0] if two_layer else None
        for meth in meths:
            if meth in RF_METHODS:
                Kall = ck if meth == "deq_rf" else enn_layers[-1]
                for m in ws:
                    predicted += predict(problem, Kall, meth, "exact", m, rid,
                                         hidden(k1x, meth, m))
        timing["predicted_exact_s"] = t_exact + time.perf_counter() - t0
    # ---- observations
    t0 = time.perf_counter()
    for meth in meths:
        k = METHODS.index(meth)             # a fixed stream per learner
        if meth == "deq_rf":
            observed += _observe_rf(
                problem, lambda m, rng: deq_features(problem, sol, m, rng,
                                                     family=weight_family),
                ws, rid, R, seed, k, meth)
        elif meth == "enn_rf":
            observed += _observe_rf(
                problem, lambda m, rng: explicit.features(
                    X, m, rng, hidden_width=max(1, round(ratio * m))),
                ws, rid, R, seed, k, meth)
        else:
            observed += _observe_kernel(problem, ck if meth == "ck_kernel" else ntk, rid,
                                        meth)
    timing["observed_s"] = time.perf_counter() - t0 + (
        t_exact if any(m in KERNEL_METHODS for m in meths) else 0.0)
    return GeneralizationResult(
        problem=frozen_mapping(problem.to_dict(), arrays=False), activation=sol.activation,
        sa=float(sol.sa), sb=float(sol.sb), widths=tuple(float(w) for w in ws), ridges=rid,
        seeds=R, observed=tuple(observed), predicted=tuple(predicted),
        timing=frozen_mapping(timing), hidden_ratio=ratio,
        design=None if explicit is None else explicit.record)
