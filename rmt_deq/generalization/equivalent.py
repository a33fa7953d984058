"""The deterministic equivalent of random-feature ridge regression (no training).

Features z(x) in R^m whose rows are (approximately) independent copies f/sqrt(m) of a
random function f with second moments Phi(x, x') = E[f(x) f(x')] -- for the DEQ, Phi is
its conjugate kernel G (docs/theory.md §2.2), for a designed explicit network its K_L.
Ridge regression on them (:mod:`rmt_deq.generalization.ridge`, penalty lambda on the
Gram scale) has train and test errors that concentrate, as n, m -> infinity with n/m
fixed, around values computed from Phi alone (Louart, Liao and Couillet 2018, in the
normalisation of docs/generalization.md §2):

    delta     = (1/m) tr Phi Qbar,    Qbar = (Psi + lambda I)^{-1},    Psi = Phi/(1 + delta)
    D         = 1 - (1/m) tr (Psi Qbar)^2
    train MSE = (lambda^2/n) [ tr Y^T Qbar^2 Y + (1/m) tr(Psi Qbar^2)/D * tr Y^T Qbar Psi Qbar Y ]
    test MSE  = (1/nt) ||Yt - Psi_tx Qbar Y||_F^2
                + (1/m) tr(Y^T Qbar Psi Qbar Y)/D * (1/nt) sum_i v_i,
    v_i       = [Psi_tt]_ii - [Psi_tx Qbar (I + lambda Qbar) Psi_xt]_ii

(Psi_tx = Phi(test, train)/(1 + delta), Psi_tt its test diagonal).  The first test term is
the error of the average predictor, the second the variance of the prediction over the
random weights: test column i's k outputs fluctuate with covariance v_i times the k x k
matrix (1/m) Y^T Qbar Psi Qbar Y / D.  Taking that fluctuation as Gaussian gives the
predicted accuracy.  As m -> infinity, delta -> 0 and the formulas become kernel ridge with
Phi.

delta solves h(delta) = delta - (1/m) sum_k phi_k (1 + delta)/(phi_k + lambda (1 + delta))
= 0 (phi_k the eigenvalues of Phi on the training columns); h is convex with h(0) < 0, so
the root is unique and Newton's method from the upper bound (1/m) sum phi_k / lambda
decreases to it monotonically; h'(root) = D > 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from rmt_deq._io import json_ready
from rmt_deq._results import SolverReport
from rmt_deq._validation import as_real_array, as_rng
from rmt_deq.errors import ConvergenceError, InvalidParameterError, ShapeMismatchError
from rmt_deq.generalization.ridge import NEGATIVE_EIGEN_RTOL, check_ridges, class_targets

__all__ = ["EquivalentPrediction", "gaussian_accuracy", "rf_ridge_equivalent", "solve_delta"]

#: relative tolerance of the scalar fixed point delta
DELTA_RTOL = 1e-13
#: Newton iteration cap for delta (convergence is monotone and quadratic near the root)
DELTA_MAX_ITER = 200
#: Gaussian draws per test column for the predicted accuracy with K > 2 outputs
ACCURACY_DRAWS = 2000
#: seed of those draws (the prediction is deterministic)
ACCURACY_SEED = 20180418


@dataclass(frozen=True)
class EquivalentPrediction:
    """Predicted errors of random-feature ridge regression at one ridge and width.

    Attributes
    ----------
    ridge : float
    width : float
        m (``inf`` for kernel ridge).
    train_mse, test_mse : float
        The deterministic equivalents (module docstring).
    test_accuracy : float
        Mean over test columns of the probability of a right decision when the outputs
        are Gaussian with the predicted mean and covariance.
    test_mse_mean_part : float
        (1/nt) ||Yt - Psi_tx Qbar Y||^2: the error of the average predictor.
    test_mse_variance_part : float
        The variance over weights (0 for kernel ridge).
    delta : float
    report : SolverReport
        The solve for delta.
    """

    ridge: float
    width: float
    train_mse: float
    test_mse: float
    test_accuracy: float
    test_mse_mean_part: float
    test_mse_variance_part: float
    delta: float
    report: SolverReport

    def to_dict(self) -> dict:
        return json_ready({"ridge": self.ridge, "width": self.width,
                           "train_mse": self.train_mse, "test_mse": self.test_mse,
                           "test_accuracy": self.test_accuracy,
                           "test_mse_mean_part": self.test_mse_mean_part,
                           "test_mse_variance_part": self.test_mse_variance_part,
                           "delta": self.delta, "report": self.report.to_dict()})


def solve_delta(phi: np.ndarray, width: float, ridge: float) -> tuple[float, SolverReport]:
    """delta = (1/m) sum_k phi_k (1 + delta)/(phi_k + lambda (1 + delta)) by monotone
    Newton (eigenvalues ``phi`` >= 0 trusted); m = inf gives delta = 0.

    Raises
    ------
    ConvergenceError
        Not converged to :data:`DELTA_RTOL` in :data:`DELTA_MAX_ITER` steps.
    """
    if math.isinf(width):
        return 0.0, SolverReport(converged=True, residual=0.0, tolerance=DELTA_RTOL,
                                 iterations=0, history=(), message="infinite width")
    m, lam = float(width), float(ridge)
    d = float(np.sum(phi)) / (m * lam)            # upper bound: h(d) >= 0
    hist = []
    for it in range(1, DELTA_MAX_ITER + 1):
        den = phi + lam * (1.0 + d)
        h = d - float(np.sum(phi * (1.0 + d) / den)) / m
        dh = 1.0 - float(np.sum((phi / den) ** 2)) / m
        step = h / dh
        d_new = max(d - step, 0.0)
        res = abs(d_new - d) / max(d_new, 1e-300)
        hist.append(res)
        d = d_new
        if res <= DELTA_RTOL or d == 0.0:
            return d, SolverReport(converged=True, residual=res, tolerance=DELTA_RTOL,
                                   iterations=it, history=tuple(hist), message="Newton")
    raise ConvergenceError(f"the fixed point delta of the random-feature equivalent did not "
                           f"converge (m = {width}, ridge = {ridge})", hist)


def gaussian_accuracy(mean: np.ndarray, covs: np.ndarray, codes: np.ndarray) -> float:
    """Mean over test columns of the probability of a right decision when the outputs of
    column i are Gaussian N(mean_i, covs_i) (mean (nt, k), covs (nt, k, k)): in closed
    form for one output (K = 2), else from ACCURACY_DRAWS draws per column (fixed seed)."""
    if mean.shape[1] == 1:
        y = 2.0 * codes - 1.0
        sd = np.sqrt(np.maximum(covs[:, 0, 0], 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0, y * mean[:, 0] / np.where(sd > 0, sd, 1.0),
                         np.where(y * mean[:, 0] > 0, np.inf, -np.inf))
        return float(np.mean(ndtr(z)))
    gen = as_rng(ACCURACY_SEED)
    right = 0.0
    for i in range(mean.shape[0]):
        w, E = np.linalg.eigh(0.5 * (covs[i] + covs[i].T))
        L = E * np.sqrt(np.maximum(w, 0.0))
        eps = gen.standard_normal((ACCURACY_DRAWS, mean.shape[1]))
        draws = mean[i] + eps @ L.T
        right += float(np.mean(np.argmax(draws, axis=1) == codes[i]))
    return right / mean.shape[0]


def rf_ridge_equivalent(Phi_train: Any, Phi_cross: Any, Phi_test_diag: Any, codes_train: Any,
                        codes_test: Any, K: int, *, width: float, ridges: Any
                        ) -> tuple[EquivalentPrediction, ...]:
    """Deterministic equivalent of random-feature ridge regression, for each ridge.

    Parameters
    ----------
    Phi_train : array_like, shape (n, n)
        The features' expected Gram matrix on the training columns (E[Z^T Z]; the CK).
    Phi_cross : array_like, shape (n_test, n)
        Its test-by-train block.
    Phi_test_diag : array_like, shape (n_test,)
        Its diagonal on the test columns.
    codes_train, codes_test : array_like of int
        Classes 0..K-1 (targets of :func:`~rmt_deq.generalization.ridge.class_targets`).
    K : int
    width : float
        m, the number of features (``math.inf``: kernel ridge with Phi).
    ridges : float or sequence of float

    Returns
    -------
    tuple of EquivalentPrediction

    Raises
    ------
    ShapeMismatchError
        Inconsistent shapes.
    InvalidParameterError
        width not > 0; Phi_train not positive semi-definite up to rounding; a ridge <= 0.
    ConvergenceError
        delta did not converge.
    """
    rid = check_ridges(ridges)
    m = float(width)
    if not m > 0:
        raise InvalidParameterError(f"width must be > 0 (or inf); got {width!r}")
    P = as_real_array(Phi_train, "Phi_train")
    C = as_real_array(Phi_cross, "Phi_cross")
    dt = as_real_array(Phi_test_diag, "Phi_test_diag")
    ctr = np.asarray(codes_train, dtype=np.int64)
    cte = np.asarray(codes_test, dtype=np.int64)
    n, nt = ctr.size, cte.size
    if P.shape != (n, n) or C.shape != (nt, n) or dt.shape != (nt,):
        raise ShapeMismatchError(
            f"Phi_train must be {n} x {n}, Phi_cross {nt} x {n} and Phi_test_diag ({nt},); "
            f"got {P.shape}, {C.shape}, {dt.shape}")
    phi, U = np.linalg.eigh(0.5 * (P + P.T))
    top = max(float(phi[-1]), 0.0)
    if phi[0] < -NEGATIVE_EIGEN_RTOL * top:
        raise InvalidParameterError(
            f"Phi_train has the eigenvalue {phi[0]:.3g} (largest {top:.3g}); an expected "
            f"Gram matrix is positive semi-definite")
    phi = np.maximum(phi, 0.0)
    Y = class_targets(ctr, K)
    Yt = class_targets(cte, K)
    Yu = U.T @ Y                                   # n x k
    y2 = np.sum(Yu ** 2, axis=1)
    CU = C @ U                                     # nt x n
    out = []
    for lam in rid:
        delta, rep = solve_delta(phi, m, lam)
        psi = phi / (1.0 + delta)
        q = 1.0 / (psi + lam)
        inv_m = 0.0 if math.isinf(m) else 1.0 / m
        D = 1.0 - inv_m * float(np.sum((psi * q) ** 2))
        k0 = inv_m * float(np.sum(psi * q * q)) / D
        train = lam * lam / n * (float(np.sum(q * q * y2)) + k0 * float(np.sum(q * q * psi * y2)))
        B = CU / (1.0 + delta)                     # Psi_tx U
        mean = B @ (q[:, None] * Yu)
        bias = float(np.sum((Yt - mean) ** 2)) / nt
        cov = inv_m * (Yu.T @ ((q * q * psi)[:, None] * Yu)) / D      # k x k
        v = dt / (1.0 + delta) - (B * B) @ (q * (1.0 + lam * q))
        var = float(np.trace(cov)) * float(np.sum(v)) / nt
        acc = gaussian_accuracy(mean, np.maximum(v, 0.0)[:, None, None] * cov[None], cte)
        out.append(EquivalentPrediction(
            ridge=lam, width=m, train_mse=train, test_mse=bias + var, test_accuracy=acc,
            test_mse_mean_part=bias, test_mse_variance_part=var, delta=delta, report=rep))
    return tuple(out)

