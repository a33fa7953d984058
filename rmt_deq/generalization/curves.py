"""Predicted and observed test error as curves: against the ridge, the width and n/p
(docs/generalization.md §4).  The figures are drawn elsewhere; these are the numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._results import readonly
from rmt_deq._validation import check_choice, check_positive_int
from rmt_deq.data.mixture import GaussianMixture
from rmt_deq.errors import InvalidParameterError
from rmt_deq.generalization.experiment import (KERNEL_METHODS, METHODS, RF_METHODS,
                                               GeneralizationResult,
                                               generalization_experiment)
from rmt_deq.generalization.problem import mixture_problem

__all__ = ["Curve", "curve", "ratio_curves", "CURVE_AXES"]

#: what a curve can run along
CURVE_AXES = ("ridge", "width", "n_over_p")
_NAN = float("nan")


@dataclass(frozen=True, eq=False)
class Curve:
    """One learner's test MSE along one axis, predicted and observed.

    Attributes
    ----------
    method : str
    axis : {"ridge", "width", "n_over_p"}
    x : ndarray
    predicted_surrogate, predicted_exact : ndarray
        Predicted test MSE from the surrogate / the exact kernel (NaN where that source
        was not computed, e.g. the exact source of a kernel learner).
    observed, observed_se : ndarray
        Mean test MSE over the seeds and its standard error.
    fixed : dict
        The other parameters (ridge, width) held fixed.
    """

    method: str
    axis: str
    x: np.ndarray = field(repr=False)
    predicted_surrogate: np.ndarray = field(repr=False)
    predicted_exact: np.ndarray = field(repr=False)
    observed: np.ndarray = field(repr=False)
    observed_se: np.ndarray = field(repr=False)
    fixed: tuple = ()

    def __post_init__(self) -> None:
        for name in ("x", "predicted_surrogate", "predicted_exact", "observed",
                     "observed_se"):
            object.__setattr__(self, name, readonly(getattr(self, name), dtype=float))

    def to_dict(self) -> dict:
        d = {name: getattr(self, name) for name in
             ("method", "axis", "x", "predicted_surrogate", "predicted_exact", "observed",
              "observed_se")}
        d["fixed"] = dict(self.fixed)
        return json_ready(d)


def _predicted(result: GeneralizationResult, method: str, ridge: float, width: float,
               source: str) -> float:
    try:
        return result.predicted_for(method, ridge, width, source).test_mse
    except InvalidParameterError:
        return _NAN


def curve(result: GeneralizationResult, method: str, axis: str, *, ridge: float | None = None,
          width: float | None = None) -> Curve:
    """The test-MSE curve of ``method`` along ``axis`` ("ridge" at fixed ``width``, or
    "width" at fixed ``ridge``) from one experiment's grid."""
    check_choice(method, "method", METHODS)
    check_choice(axis, "axis", CURVE_AXES[:2])
    kernel = method in KERNEL_METHODS
    if axis == "ridge":
        xs = list(result.ridges)
        w = math.inf if kernel else (width if width is not None else result.widths[0])
        pts = [(lam, w) for lam in xs]
        fixed = (("width", w),)
    else:
        if kernel:
            raise InvalidParameterError(f"{method} has no width; use axis='ridge'")
        lam = ridge if ridge is not None else result.ridges[0]
        xs = list(result.widths)
        pts = [(lam, w) for w in xs]
        fixed = (("ridge", lam),)
    obs = [result.observed_for(method, lam, w) for lam, w in pts]
    return Curve(method=method, axis=axis, x=np.array(xs, dtype=float),
                 predicted_surrogate=[_predicted(result, method, lam, w, "surrogate")
                                      for lam, w in pts],
                 predicted_exact=[_predicted(result, method, lam, w, "exact")
                                  for lam, w in pts],
                 observed=[o.test_mse for o in obs], observed_se=[o.test_mse_se for o in obs],
                 fixed=fixed)


def ratio_curves(mixture: GaussianMixture, ratios: Iterable[float], n_test: int,
                 activation: Any, sa: float, sb: float | None = None, *, ridge: float = 1.0,
                 width: int = 1024, seeds: int = 10, methods: Iterable[str] = RF_METHODS,
                 data_seed: int = 0, seed: int = 0) -> tuple[Curve, ...]:
    """Test MSE against n_train/p on samples of ``mixture`` (one experiment per ratio, the
    test size fixed), one curve per method."""
    rs = [float(r) for r in ratios]
    if not rs or any(not (math.isfinite(r) and r > 0) for r in rs):
        raise InvalidParameterError(f"ratios must be finite and > 0; got {rs}")
    n_te = check_positive_int(n_test, "n_test")
    meths = tuple(methods)
    results = []
    for r in rs:
        n_tr = max(int(round(r * mixture.p)), 2 * mixture.K)
        prob = mixture_problem(mixture, n_tr, n_te, rng=data_seed)
        results.append(generalization_experiment(prob, activation, sa, sb, widths=(width,),
                                                 ridges=(ridge,), seeds=seeds,
                                                 methods=meths, seed=seed))
    out = []
    for meth in meths:
        w = math.inf if meth in KERNEL_METHODS else float(width)
        obs = [res.observed_for(meth, ridge, w) for res in results]
        out.append(Curve(method=meth, axis="n_over_p", x=np.array(rs),
                         predicted_surrogate=[_predicted(res, meth, ridge, w, "surrogate")
                                              for res in results],
                         predicted_exact=[_predicted(res, meth, ridge, w, "exact")
                                          for res in results],
                         observed=[o.test_mse for o in obs],
                         observed_se=[o.test_mse_se for o in obs],
                         fixed=(("ridge", ridge), ("width", w))))
    return tuple(out)
