"""Ridge regression and classification on a Gram matrix (random features or a kernel).

Both the random-feature ridge of a finite network and kernel ridge with an
infinite-width kernel are the same computation on an n x n matrix
(docs/generalization.md §1): with K_train the Gram matrix of the training columns
(Z^T Z for features Z, m x n; or the kernel), K_cross its test-by-train block and Y the
n x k target matrix,

    alpha = (K_train + lambda I)^{-1} Y,   Yhat_train = K_train alpha,   Yhat_test = K_cross alpha,

i.e. ridge regression of Y on the features z_i with penalty lambda ||beta||^2 and no
intercept (beta = Z alpha).  The ridge lambda is on the scale of the Gram matrix, so the
same lambda in the random-feature and the kernel problem gives the m -> infinity limit of
one by the other.

Targets (:func:`class_targets`): two classes are one output y = +1 (the second class) or
-1 (the first), decided by its sign; K > 2 classes are one-vs-rest with one-hot targets,
decided by the argmax.  The mean squared error is per sample and summed over the outputs:
(1/n) sum_i ||y_i - yhat_i||^2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._validation import as_real_array
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError

__all__ = ["RIDGE_GRID", "RidgeScores", "check_ridges", "class_targets", "decide",
           "mean_squared_error", "ridge_scores", "ridge_predictions"]

#: the default grid of ridges
RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: eigenvalues of a Gram matrix below -this x its largest are not rounding: refused
NEGATIVE_EIGEN_RTOL = 1e-8


def check_ridges(ridges: Any) -> tuple[float, ...]:
    """A non-empty tuple of finite ridges > 0 (a number is one ridge)."""
    vals = np.atleast_1d(as_real_array(ridges, "ridges")).astype(float)
    if vals.ndim != 1 or vals.size == 0:
        raise ShapeMismatchError(f"ridges must be a number or a 1-D list; got shape {vals.shape}")
    if not np.all(np.isfinite(vals)) or np.any(vals <= 0):
        raise InvalidParameterError(f"every ridge must be finite and > 0; got {vals.tolist()}")
    return tuple(float(v) for v in vals)


def class_targets(codes: Any, K: int) -> np.ndarray:
    """Targets of class codes 0..K-1: shape (n, 1) with -1/+1 for K = 2, one-hot (n, K)
    for K > 2."""
    c = np.asarray(codes, dtype=np.int64)
    if K < 2:
        raise InvalidParameterError(f"classification needs K >= 2 classes; got K = {K}")
    if K == 2:
        return (2.0 * c - 1.0)[:, None]
    Y = np.zeros((c.size, K))
    Y[np.arange(c.size), c] = 1.0
    return Y


def decide(Y_pred: np.ndarray) -> np.ndarray:
    """Class codes from predictions: the sign for one output, else the argmax."""
    if Y_pred.shape[1] == 1:
        return (Y_pred[:, 0] > 0).astype(np.int64)
    return np.argmax(Y_pred, axis=1)


def mean_squared_error(Y: np.ndarray, Y_pred: np.ndarray) -> float:
    """(1/n) sum_i ||y_i - yhat_i||^2."""
    return float(np.sum((Y - Y_pred) ** 2)) / Y.shape[0]


@dataclass(frozen=True)
class RidgeScores:
    """Errors of one fitted ridge predictor.

    Attributes
    ----------
    ridge : float
    train_mse, test_mse : float
        (1/n) sum_i ||y_i - yhat_i||^2 on the training and the test columns.
    test_accuracy : float
        Fraction of test columns whose decided class is right.
    """

    ridge: float
    train_mse: float
    test_mse: float
    test_accuracy: float

    def to_dict(self) -> dict:
        return json_ready({"ridge": self.ridge, "train_mse": self.train_mse,
                           "test_mse": self.test_mse, "test_accuracy": self.test_accuracy})


def _eigh_psd(K_train: np.ndarray, smallest_ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric Gram matrix, refusing one that is not PSD up to
    rounding (where K + lambda I would not be positive definite)."""
    s, U = np.linalg.eigh(0.5 * (K_train + K_train.T))
    top = max(float(s[-1]), 0.0)
    if s[0] < -NEGATIVE_EIGEN_RTOL * top or s[0] + smallest_ridge <= 0:
        raise InvalidParameterError(
            f"the training Gram matrix has the eigenvalue {s[0]:.3g} (largest {top:.3g}): "
            f"it is not positive semi-definite, so ridge regression on it is not defined; "
            f"check the kernel (a surrogate far outside its regime?)")
    return s, U


def ridge_predictions(K_train: np.ndarray, K_cross: np.ndarray, Y: np.ndarray,
                      ridges: Iterable[float]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(Yhat_train, Yhat_test) for each ridge, from one eigen-decomposition of K_train
    (inputs trusted: K_train n x n symmetric, K_cross n_test x n, Y n x k)."""
    rid = tuple(ridges)
    s, U = _eigh_psd(K_train, min(rid))
    Yt = U.T @ Y
    KU_train = U * s                       # K_train U
    KU_cross = K_cross @ U
    out = []
    for lam in rid:
        coef = Yt / (s + lam)[:, None]
        out.append((KU_train @ coef, KU_cross @ coef))
    return out


def ridge_scores(K_train: Any, K_cross: Any, codes_train: Any, codes_test: Any, K: int,
                 ridges: Any = RIDGE_GRID) -> tuple[RidgeScores, ...]:
    """Fit ridge regression on a Gram matrix and score it, for each ridge.

    Parameters
    ----------
    K_train : array_like, shape (n, n)
        Gram matrix (or kernel) of the training columns.
    K_cross : array_like, shape (n_test, n)
        Test-by-train block.
    codes_train, codes_test : array_like of int
        Classes 0..K-1 (targets by :func:`class_targets`).
    K : int
        Number of classes.
    ridges : float or sequence of float
        lambda > 0 (default :data:`RIDGE_GRID`).

    Returns
    -------
    tuple of RidgeScores, one per ridge

    Raises
    ------
    ShapeMismatchError
        Inconsistent shapes.
    InvalidParameterError
        A ridge <= 0; K_train not positive semi-definite up to rounding.
    """
    rid = check_ridges(ridges)
    Kt = as_real_array(K_train, "K_train")
    Kc = as_real_array(K_cross, "K_cross")
    ctr = np.asarray(codes_train, dtype=np.int64)
    cte = np.asarray(codes_test, dtype=np.int64)
    n = ctr.size
    if Kt.shape != (n, n) or Kc.shape != (cte.size, n):
        raise ShapeMismatchError(
            f"K_train must be {n} x {n} and K_cross {cte.size} x {n} (test x train); got "
            f"{Kt.shape} and {Kc.shape}")
    Y = class_targets(ctr, K)
    Yte = class_targets(cte, K)
    out = []
    for lam, (ptr, pte) in zip(rid, ridge_predictions(Kt, Kc, Y, rid)):
        out.append(RidgeScores(ridge=lam, train_mse=mean_squared_error(Y, ptr),
                               test_mse=mean_squared_error(Yte, pte),
                               test_accuracy=float(np.mean(decide(pte) == cte))))
    return tuple(out)

