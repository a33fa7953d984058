"""The deterministic equivalent of random-feature ridge on a two-layer network whose hidden
layer has finite width (docs/generalization.md §2.4).

The features of a two-layer network, z(x) = sigma_2(W_2 h_1(x))/sqrt(m) with
h_1(x) = sigma_1(W_1 x)/sqrt(m_1), are random features only *given* the hidden layer: their
rows are independent with second moments Phi(G), G = H_1^T H_1 the hidden Gram matrix, and
:func:`rmt_deq.generalization.equivalent.rf_ridge_equivalent` applies to Phi(G).  G itself
fluctuates around the first layer's kernel K_1 at width m_1.  Linearising the second layer's
kernel map in G (off the diagonal its derivative is g = E[sigma_2'(tau_1 xi)]^2, the layer's
g_1 of docs/theory.md §6.2; the diagonal's fluctuation is negligible),

    Phi(G) = B + g G,    B = K_2 - g K_1,

with G = (1/m_1) sum_k s_k s_k^T, s_k independent with second moment K_1.  Every quantity of
the random-feature equivalent is then a function of R = (Phi_tr + mu I)^{-1}
(mu = lambda (1 + delta)) and of the test-by-train block Phi_tx, and the equivalent of
those is the classical one of a sample covariance matrix plus a deterministic matrix:

    E[R]      ~ Rbar = (B_tr + mu I + s K1_tr)^{-1},   s = g/(1 + g e),   e = (1/m_1) tr K1_tr Rbar,
    E[R A R]  ~ Rbar A Rbar + kappa(A) Rbar K1_tr Rbar,
                kappa(A) = (s^2/m_1) tr(K1_tr Rbar A Rbar) / (1 - (s^2/m_1) tr (K1_tr Rbar)^2),

and the test columns of the hidden layer split as L s_k,train + c_k with L = K1_tx K1_tr^{-1}
and c_k uncorrelated with the training part (covariance Sigma_c = K1_tt - L K1_xt).  The
resulting formulas (docs/generalization.md §2.4) give the train and test errors and, taking
each test output as Gaussian with its predicted mean and covariance, the accuracy.  As
m_1 -> infinity (e -> 0, kappa -> 0, Sigma_c-terms -> 0) they become those of
:func:`~rmt_deq.generalization.equivalent.rf_ridge_equivalent` with Phi = K_2.

Accuracy: the linearisation drops the diagonal's fluctuation and the Hadamard square of
G - K_1.  With a finite last layer its own fluctuation dominates what is dropped
(tests/test_two_layer.py: train and test MSE and accuracy of sampled two-layer networks);
kernel ridge (m = infinity) with m_1 < n shows it in the train MSE at small ridge (30% at
ridge 0.01 there), not in the test MSE.

The two unknowns (delta, e) solve two scalar equations, by Newton's method with an exact
Jacobian from the m_1 = infinity solution; each step costs one n x n inverse and one product.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from rmt_deq._results import SolverReport
from rmt_deq._validation import as_real_array
from rmt_deq.errors import ConvergenceError, InvalidParameterError, ShapeMismatchError
from rmt_deq.generalization.equivalent import (EquivalentPrediction, gaussian_accuracy,
                                               solve_delta)
from rmt_deq.generalization.ridge import NEGATIVE_EIGEN_RTOL, check_ridges, class_targets

__all__ = ["two_layer_rf_equivalent", "TWO_LAYER_RTOL", "TWO_LAYER_MAX_ITER"]

#: relative tolerance of the Newton steps on (delta, e)
TWO_LAYER_RTOL = 1e-12
#: Newton iteration cap (each step: one n x n inverse and one product)
TWO_LAYER_MAX_ITER = 60
#: step halvings allowed when a Newton step does not lower the residual
_HALVINGS = 30


def _blocks(K: Any, name: str, n: int, nt: int) -> tuple:
    """(train, cross, test diagonal) of one kernel, checked; the train block symmetrised."""
    if not isinstance(K, (tuple, list)) or len(K) != 3:
        raise InvalidParameterError(f"{name} must be a tuple (train block, test-by-train "
                                    f"block, test diagonal); got {type(K).__name__}")
    tr, cross, tdiag = K
    T = as_real_array(tr, f"{name}_train")
    C = as_real_array(cross, f"{name}_cross")
    d = as_real_array(tdiag, f"{name}_test_diag")
    if T.shape != (n, n) or C.shape != (nt, n) or d.shape != (nt,):
        raise ShapeMismatchError(
            f"{name}: the train block must be {n} x {n}, the cross block {nt} x {n} and the "
            f"test diagonal ({nt},); got {T.shape}, {C.shape}, {d.shape}")
    return 0.5 * (T + T.T), C, d


def _resolvent(Btr: np.ndarray, K1: np.ndarray, mu: float, s: float) -> np.ndarray:
    """Rbar = (B_tr + mu I + s K1_tr)^{-1}, by Cholesky (raises when not positive definite)."""
    A = Btr + s * K1
    A[np.diag_indices_from(A)] += mu
    try:
        c = cho_factor(A, lower=True, check_finite=False)
    except LinAlgError:
        raise InvalidParameterError(
            "B_tr + mu I + s K1_tr is not positive definite: the second layer's kernel minus "
            "g times the first layer's (B = K_2 - g K_1) must be positive semi-definite; check "
            "that K_1, K_2 and g belong to one network") from None
    R = cho_solve(c, np.eye(A.shape[0]), check_finite=False)
    return 0.5 * (R + R.T)


def _solve(Btr: np.ndarray, K1: np.ndarray, g: float, m: float, m1: float, lam: float,
           d0: float) -> tuple[float, float, np.ndarray, SolverReport]:
    """(delta, e, Rbar) solving F1 = delta/(1 + delta) - (n - mu tr Rbar)/m = 0 and
    F2 = e - (1/m1) tr K1 Rbar = 0 (mu = lam (1 + delta), s = g/(1 + g e)), by damped
    Newton with the exact Jacobian in (l, e), l = log(1 + delta) >= 0 (delta spans decades
    below the interpolation threshold), from delta = d0 (the m1 = infinity value) and e one
    fixed-point step from 0."""
    n = Btr.shape[0]
    inv_m = 0.0 if math.isinf(m) else 1.0 / m

    def evaluate(ell: float, e: float) -> tuple:
        mu, s = lam * math.exp(ell), g / (1.0 + g * e)
        R = _resolvent(Btr, K1, mu, s)
        RK = R @ K1
        F = np.array([-math.expm1(-ell) - inv_m * (n - mu * np.trace(R)),
                      e - float(np.trace(RK)) / m1])
        return F, R, RK, mu, s

    ell = math.log1p(float(d0))
    F, R, RK, mu, s = evaluate(ell, 0.0)
    e = float(np.trace(RK)) / m1
    F, R, RK, mu, s = evaluate(ell, e)
    hist: list[float] = []
    for it in range(1, TWO_LAYER_MAX_ITER + 1):
        # d mu/d l = mu, d s/d e = -g^2/(1 + g e)^2 = -s^2; d tr R/d mu = -tr R^2,
        # d tr R/d s = -tr(R K1 R), d tr K1 R/d mu = -tr(K1 R^2), d tr K1 R/d s = -tr (K1 R)^2
        trR2 = float(np.sum(R * R))
        trRKR = float(np.sum(RK * R))
        trKRKR = float(np.sum(RK * RK.T))
        J = np.array([
            [math.exp(-ell) + inv_m * mu * (float(np.trace(R)) - mu * trR2),
             inv_m * mu * trRKR * s * s],
            [mu * trRKR / m1, 1.0 - trKRKR * s * s / m1]])
        step = np.linalg.solve(J, -F)
        # the full Newton step measures the error (not the damped one, which may be small
        # far from the root): absolute in l (relative in 1 + delta), relative in e
        rel = max(abs(float(step[0])), abs(float(step[1])) / max(e + float(step[1]), 1e-300))
        norm0 = float(np.max(np.abs(F)))
        t = 1.0
        for _ in range(_HALVINGS):
            ln, en = max(ell + t * step[0], 0.0), max(e + t * step[1], 0.0)
            Fn, Rn, RKn, mun, sn = evaluate(ln, en)
            if float(np.max(np.abs(Fn))) <= norm0 or norm0 == 0.0:
                break
            t *= 0.5
        hist.append(rel)
        ell, e, F, R, RK, mu, s = ln, en, Fn, Rn, RKn, mun, sn
        if rel <= TWO_LAYER_RTOL:
            return (math.expm1(ell), e, R,
                    SolverReport(converged=True, residual=rel, tolerance=TWO_LAYER_RTOL,
                                 iterations=it, history=tuple(hist),
                                 message="Newton on (log(1 + delta), e)"))
    raise ConvergenceError(f"the two-layer equivalent's (delta, e) did not converge "
                           f"(m = {m}, m1 = {m1}, ridge = {lam})", hist)


def two_layer_rf_equivalent(K1: Any, K2: Any, gain: float, codes_train: Any, codes_test: Any,
                            K: int, *, width: float, hidden_width: float, ridges: Any
                            ) -> tuple[EquivalentPrediction, ...]:
    """Deterministic equivalent of random-feature ridge on a two-layer network with a hidden
    layer m_1 wide, for each ridge (module docstring).

    Parameters
    ----------
    K1, K2 : tuple (train, cross, test_diag)
        The first layer's kernel K_1 and the network's CK K_2 (its second layer), each as
        its train block (n, n), test-by-train block (n_test, n) and test diagonal (n_test,).
    gain : float
        g = E[sigma_2'(tau_1 xi)]^2 of the second layer at its input scale, > 0.
    codes_train, codes_test : array_like of int
        Classes 0..K-1.
    K : int
    width : float
        m, the number of features (``math.inf``: kernel ridge, where the hidden layer still
        acts through its own finite width).
    hidden_width : float
        m_1 > 0 (``math.inf`` gives :func:`~rmt_deq.generalization.equivalent.
        rf_ridge_equivalent` with Phi = K_2).
    ridges : float or sequence of float

    Returns
    -------
    tuple of EquivalentPrediction
        ``delta`` is the outer fixed point; the test MSE's variance part holds every
        fluctuation over the weights (both layers).

    Raises
    ------
    ShapeMismatchError
        Inconsistent shapes.
    InvalidParameterError
        width, hidden_width or gain not > 0; K1_train not positive definite; K_2 - g K_1
        not positive semi-definite on the training columns; a ridge <= 0.
    ConvergenceError
        The Newton iteration on (delta, e) did not converge.
    """
    rid = check_ridges(ridges)
    m, m1, g = float(width), float(hidden_width), float(gain)
    for val, name in ((m, "width"), (m1, "hidden_width")):
        if not val > 0:
            raise InvalidParameterError(f"{name} must be > 0 (or inf); got {val!r}")
    if not (math.isfinite(g) and g > 0):
        raise InvalidParameterError(f"gain must be finite and > 0; got {gain!r}")
    ctr = np.asarray(codes_train, dtype=np.int64)
    cte = np.asarray(codes_test, dtype=np.int64)
    n, nt = ctr.size, cte.size
    K1tr, K1tx, K1td = _blocks(K1, "K1", n, nt)
    K2tr, K2tx, K2td = _blocks(K2, "K2", n, nt)
    try:
        c1 = cho_factor(K1tr, lower=True, check_finite=False)
    except LinAlgError:
        raise InvalidParameterError("K1_train (the first layer's kernel on the training "
                                    "columns) is not positive definite") from None
    L = cho_solve(c1, K1tx.T, check_finite=False).T           # K1_tx K1_tr^{-1}, nt x n
    sig_c = np.maximum(K1td - np.sum(L * K1tx, axis=1), 0.0)  # diag of Sigma_c
    Btr, Btx = K2tr - g * K1tr, K2tx - g * K1tx
    phi = np.linalg.eigvalsh(K2tr)
    if phi[0] < -NEGATIVE_EIGEN_RTOL * max(float(phi[-1]), 0.0):
        raise InvalidParameterError(f"K2_train has the eigenvalue {phi[0]:.3g}; an expected "
                                    f"Gram matrix is positive semi-definite")
    phi = np.maximum(phi, 0.0)
    Y, Yt = class_targets(ctr, K), class_targets(cte, K)
    hid = 0.0 if math.isinf(m1) else 1.0 / m1
    inv_m = 0.0 if math.isinf(m) else 1.0 / m
    Mx = Btx - L @ Btr                                        # nt x n
    # independent of the ridge: the hidden layer's projection of the targets, (L K2 L^T)_ii
    LY = L @ Y
    LK2L = np.sum((L @ K2tr) * L, axis=1)
    ML = np.sum(Mx * L, axis=1)
    out = []
    for lam in rid:
        d0, _ = solve_delta(phi, m, lam)
        if math.isinf(m1):
            d, e, rep = d0, 0.0, None
            R = _resolvent(Btr, K1tr, lam * (1.0 + d), g)
        else:
            d, e, R, rep = _solve(Btr, K1tr, g, m, m1, lam, d0)
        mu = lam * (1.0 + d)
        s = g / (1.0 + g * e)
        RK = R @ K1tr
        RKR = RK @ R                                          # Rbar K1 Rbar
        den = 1.0 - hid * s * s * float(np.sum(RK * RK.T))
        kap = hid * s * s / den                               # kappa(A) = kap tr(RKR A)
        k_id = kap * float(np.trace(RKR))                     # kappa(I)
        R2 = R @ R + k_id * RKR                               # E[R^2]
        RY = R @ Y
        YKY = Y.T @ (RKR @ Y)                                 # Y^T Rbar K1 Rbar Y
        # k x k matrices: E[Y^T R Y], E[Y^T R^2 Y], E[Y^T R B R Y]
        y1 = Y.T @ RY
        y2 = RY.T @ RY + k_id * YKY
        yB = RY.T @ (Btr @ RY) + (kap * float(np.sum(RKR * Btr))) * YKY
        t1, t2 = float(np.trace(R)), float(np.trace(R2))
        D = 1.0 - inv_m * (n - 2.0 * mu * t1 + mu * mu * t2)
        train = mu * mu / n * (float(np.trace(y2))
                               + inv_m * (t1 - mu * t2) * float(np.trace(y1 - mu * y2)) / D)
        # test outputs: mean L Y + P Rbar Y, P = M - mu L
        P = Mx - mu * L
        mean = LY + P @ RY
        PRKR = P @ RKR
        k_col = kap * np.sum(PRKR * P, axis=1)                # kappa(p_i p_i^T)
        W = y1 - mu * y2 - yB                                 # E[Y^T R G R Y] g
        # T_i = K2_tt,ii - (U W U^T)_ii - (g/m1) Sigma_c,ii tr((Phi - B) W)
        MR, LR = Mx @ R, L @ R
        MR2, LR2 = Mx @ R2, L @ R2
        UWU = (np.sum(MR * Mx, axis=1) + mu * np.sum(MR2 * Mx, axis=1)
               + 2.0 * (ML - mu * mu * np.sum(MR2 * L, axis=1))
               + LK2L - mu * mu * np.sum(LR * L, axis=1)
               + mu ** 3 * np.sum(LR2 * L, axis=1))
        trBW = float(np.sum(Btr * R)) + mu * float(np.sum(Btr * R2))
        T = K2td - UWU - g * hid * sig_c * (n - mu * mu * t2 - trBW)
        V = inv_m * (y1 - mu * y2) / D                        # k x k, per unit of T_i
        covs = (T[:, None, None] * V[None] + (g * hid * sig_c)[:, None, None] * W[None]
                + k_col[:, None, None] * YKY[None])
        bias = float(np.sum((Yt - mean) ** 2)) / nt
        var = float(np.sum(np.trace(covs, axis1=1, axis2=2))) / nt
        acc = gaussian_accuracy(mean, covs, cte)
        if rep is None:
            rep = SolverReport(converged=True, residual=0.0, tolerance=TWO_LAYER_RTOL,
                               iterations=0, history=(), message="infinite hidden width")
        out.append(EquivalentPrediction(
            ridge=lam, width=m, train_mse=train, test_mse=bias + var, test_accuracy=acc,
            test_mse_mean_part=bias, test_mse_variance_part=var, delta=d, report=rep))
    return tuple(out)
