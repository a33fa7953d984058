"""The data scale tau0 and the scale note, computed on arrays that are already validated.

Shared by :mod:`rmt_deq.data` (whose public functions validate and then call these) and by
the kernels, the networks and the samplers, which validate X once at their own edge
(docs/theory.md §1).  Nothing here checks X again: ``X`` is the finite float64 p x n array
returned by :func:`rmt_deq._validation.as_data_matrix`.  The labels, the given tau0 and the
statistics are checked here (they are validated nowhere else).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rmt_deq._validation import as_labels, check_positive_finite
from rmt_deq.errors import InvalidParameterError

__all__ = ["DataScale", "CONVENTION", "SOURCE_GIVEN", "SOURCE_SOLUTION", "SOURCE_MIXTURE",
           "SOURCE_PLUGIN", "SOURCE_POOLED", "SOURCE_ONE_SAMPLE", "SCALE_P_MIN",
           "resolve_scale", "note_of", "class_residuals"]

#: the units convention, quoted in every message about it
CONVENTION = ("the convention is x_i = (mu_a + omega_i)/sqrt(p), omega_i ~ N(0, C_a): "
              "means[a] = mu_a is the class mean of sqrt(p) x_i and covs[a] = C_a the class "
              "covariance of sqrt(p) x_i, so that ||x_i||^2 = O(1)")

SOURCE_GIVEN = "given"
SOURCE_SOLUTION = "given (four-equation solution)"
SOURCE_MIXTURE = "mixture statistics"
SOURCE_PLUGIN = "plug-in from labels"
SOURCE_POOLED = ("no labels: pooled plug-in, all samples as one class (tr of the sample "
                 "covariance of the columns / p; includes the spread of the class means)")
SOURCE_ONE_SAMPLE = "no labels, one sample: its squared norm ||x_1||^2"

#: smallest p for which O(1) and O(p) squared column norms are told apart (their geometric
#: midpoint sqrt(p) is then at least a factor 4 from both)
SCALE_P_MIN = 16


@dataclass(frozen=True)
class DataScale:
    """The data scale tau0 and where it came from.

    Attributes
    ----------
    tau0 : float
        sqrt(tr(C°)/p) (or the stated fallback).
    source : str
        ``"given"``, ``"given (four-equation solution)"``, ``"mixture statistics"``,
        ``"plug-in from labels"``, or a description of the fallback without labels
        (:data:`SOURCE_POOLED`, :data:`SOURCE_ONE_SAMPLE`).
    note : str or None
        :func:`rmt_deq.data.conventions.scale_note` of the data (None when its scale is
        the theory's).
    """

    tau0: float
    source: str
    note: str | None = None


def note_of(X: np.ndarray) -> str | None:
    """The scale note of validated data (the rule of
    :func:`rmt_deq.data.conventions.scale_note`)."""
    p = X.shape[0]
    if p < SCALE_P_MIN:
        return None
    m2 = float(np.mean(np.einsum("ij,ij->j", X, X)))
    if m2 > math.sqrt(p):
        return (f"X looks unscaled: its mean squared column norm is {m2:.4g}, of the order "
                f"of p = {p} rather than 1; {CONVENTION}. If the columns are raw samples, "
                f"divide X by sqrt(p) (results here are at tau0 ~ {math.sqrt(m2):.3g})")
    if m2 < 1.0 / math.sqrt(p):
        return (f"X looks scaled twice: its mean squared column norm is {m2:.4g}, of the "
                f"order of 1/p (p = {p}) rather than 1; {CONVENTION}. If X was divided by "
                f"p, multiply it by sqrt(p)")
    return None


def class_residuals(X: np.ndarray, codes: np.ndarray, sizes: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The plug-in class means and residuals of labelled data (every class >= 2 samples).

    Returns mu^_a (K x p, the class means of sqrt(p) x_i), the residuals
    W = sqrt(p) X - mu^[codes] (p x n), ||w_i||^2 (n,), the indicators J (n x K) and the
    unbiased tr(C_a)/p estimates ``sum_{i in a} ||w_i||^2 / ((n_a - 1) p)`` (K,).  This is
    the one place where the plug-in data scale tau0^2 = sum_a c_a tr(C_a)/p starts from
    (:func:`rmt_deq.data.statistics.plugin_statistics` and :func:`resolve_scale`).
    """
    p = X.shape[0]
    Y = math.sqrt(p) * X
    K = sizes.size
    J = np.zeros((codes.size, K))
    J[np.arange(codes.size), codes] = 1.0
    means = (Y @ J / sizes).T  # (K, p)
    W = Y - means.T[:, codes]
    sq = np.einsum("ij,ij->j", W, W)  # ||w_i||^2
    m = sizes.astype(float)
    traces = (J.T @ sq) / ((m - 1) * p)
    return means, W, sq, J, traces


def resolve_scale(X: np.ndarray, labels: Any = None, tau0: Any = None,
                  statistics: Any = None) -> tuple[float, str]:
    """(tau0, source) of validated data X: the rules of :func:`rmt_deq.data.conventions.data_scale`.

    Raises
    ------
    InvalidParameterError
        More than one of labels / tau0 / statistics; tau0 not finite and > 0; a class
        with a single sample; data with no spread.
    """
    p, n = X.shape
    given = [k for k, v in (("labels", labels), ("tau0", tau0), ("statistics", statistics))
             if v is not None]
    if len(given) > 1:
        raise InvalidParameterError(
            f"give one data scale source, not {' and '.join(given)}: labels only serve to "
            f"estimate tau0 = sqrt(tr C°/p)")
    if isinstance(tau0, DataScale):
        return tau0.tau0, tau0.source
    if tau0 is not None:
        return check_positive_finite(tau0, "tau0"), SOURCE_GIVEN
    if statistics is not None:
        t = getattr(statistics, "tau0", None)
        if getattr(statistics, "p", None) != p or t is None:
            raise InvalidParameterError(
                f"statistics must be the MixtureStatistics of this data (p = {p})")
        return check_positive_finite(t, "tau0"), SOURCE_MIXTURE
    if labels is not None:
        codes, classes = as_labels(labels, n, p=p)
        sizes = np.bincount(codes, minlength=classes.size).astype(np.int64)
        if sizes.min() < 2:
            a = int(np.argmin(sizes))
            raise InvalidParameterError(
                f"class {classes[a]!r} has a single sample: the plug-in data scale needs "
                f"two per class; pass tau0= or merge the class")
        traces = class_residuals(X, codes, sizes)[4]
        t2, source = float((sizes / n) @ traces), SOURCE_PLUGIN
    elif n >= 2:
        d = X - X.mean(axis=1, keepdims=True)
        t2, source = float(np.einsum("ij,ij->", d, d)) / (n - 1), SOURCE_POOLED
    else:
        t2, source = float(X[:, 0] @ X[:, 0]), SOURCE_ONE_SAMPLE
    if not t2 > 0:
        raise InvalidParameterError(
            f"the data have no spread (tr(C°)/p estimate {t2:.3g}, {source}); pass tau0=")
    return math.sqrt(t2), source
