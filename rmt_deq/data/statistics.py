"""The section-1 statistics of mixture data, exact or estimated (docs/theory.md §1).

With ``c_a = n_a / n`` the class proportions *of the sample* (X is p x n, columns are
samples, x_i = (mu_a + omega_i)/sqrt(p))::

    C° = sum_a c_a C_a,  C_a° = C_a - C°,   tau0^2 = tr(C°)/p,
    t_a  = tr(C_a°)/sqrt(p)                     (centred, O(1))
    T_ab = tr(C_a C_b)/p                        (UNcentred, a matrix product in the trace)
    T°_ab = tr(C_a° C_b°)/p = [(I - 1 c^T) T (I - c 1^T)]_ab
    s2   = tr(C°^2)/p = c^T T c
    psi_i = (||omega_i||^2 - tr C_a)/p,         V = [J/sqrt(p), psi]  (n x (K+1)).

:class:`MixtureStatistics` holds them (from a known mixture,
:meth:`rmt_deq.data.mixture.GaussianMixture.statistics`, or estimated);
:func:`plugin_statistics` estimates every one of them from any labelled data matrix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rmt_deq._results import readonly
from rmt_deq._validation import as_data_matrix, as_labels, as_real_array, check_choice
from rmt_deq.data._scale import class_residuals
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError

__all__ = ["MixtureStatistics", "PluginEstimate", "DIAG_ESTIMATORS", "class_indicators",
           "compute_psi", "build_V", "statistics_from_traces", "plugin_statistics"]

#: estimators of the diagonal T_aa = tr(C_a^2)/p (:func:`plugin_statistics`)
DIAG_ESTIMATORS = ("distribution_free", "gaussian")


def class_indicators(codes: Any, K: int) -> np.ndarray:
    """The n x K class-indicator matrix J (J[i, a] = 1 iff sample i is in class a)."""
    codes = np.asarray(codes, dtype=np.int64)
    J = np.zeros((codes.size, K))
    J[np.arange(codes.size), codes] = 1.0
    return J


def compute_psi(omega: Any, codes: Any, traces: Any) -> np.ndarray:
    """psi_i = (||omega_i||^2 - tr C_a)/p for every sample.

    Parameters
    ----------
    omega : array_like, shape (p, n)
        The noise vectors omega_i as columns (unnormalised units: x_i = (mu_a + omega_i)/sqrt p).
    codes : array_like of int, shape (n,)
        Class of each sample, in 0..K-1.
    traces : array_like, shape (K,)
        tr(C_a)/p.

    Returns
    -------
    ndarray, shape (n,)
    """
    W = as_data_matrix(omega, "omega")
    p, n = W.shape
    codes = np.asarray(codes, dtype=np.int64)
    if codes.shape != (n,):
        raise ShapeMismatchError(
            f"codes must have one entry per column of omega (n = {n}); got shape {codes.shape}")
    traces = as_real_array(traces, "traces")
    return np.einsum("ij,ij->j", W, W) / p - traces[codes]


def build_V(codes: Any, psi: Any, p: int, K: int) -> np.ndarray:
    """V = [J/sqrt(p), psi], shape (n, K+1): class indicators scaled by 1/sqrt(p), then psi."""
    psi = as_real_array(psi, "psi")
    codes = np.asarray(codes, dtype=np.int64)
    if psi.ndim != 1 or psi.shape != codes.shape:
        raise ShapeMismatchError(
            f"psi must be a 1-D array with one entry per sample (n = {codes.size}); "
            f"got shape {psi.shape}")
    V = np.empty((codes.size, K + 1))
    V[:, :K] = class_indicators(codes, K) / math.sqrt(p)
    V[:, K] = psi
    return V


# ---------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MixtureStatistics:
    """The docs/theory.md §1 statistics of a K-class mixture at given class sizes.

    Attributes
    ----------
    traces : ndarray, shape (K,)
        tr(C_a)/p.
    t : ndarray, shape (K,)
        t_a = tr(C_a°)/sqrt(p) = sqrt(p) (tr(C_a)/p - tau0^2).
    T : ndarray, shape (K, K)
        Uncentred T_ab = tr(C_a C_b)/p.
    T_centred : ndarray, shape (K, K)
        T°_ab = tr(C_a° C_b°)/p.
    tau0 : float
        sqrt(tr(C°)/p), the typical norm of a column of X.
    s2 : float
        tr(C°^2)/p = c^T T c.
    proportions : ndarray, shape (K,)
        c_a = n_a/n (of the sample, not of the population).
    sizes : ndarray of int, shape (K,)
        n_a.
    p, n : int
        Dimension and number of samples.
    """

    traces: np.ndarray
    t: np.ndarray
    T: np.ndarray
    T_centred: np.ndarray
    tau0: float
    s2: float
    proportions: np.ndarray
    sizes: np.ndarray
    p: int
    n: int

    @property
    def K(self) -> int:
        """Number of classes."""
        return int(self.t.shape[0])

    def as_dict(self) -> dict:
        """JSON-ready dictionary (lists and floats)."""
        return {"traces": self.traces.tolist(), "t": self.t.tolist(), "T": self.T.tolist(),
                "T_centred": self.T_centred.tolist(), "tau0": float(self.tau0),
                "s2": float(self.s2), "proportions": self.proportions.tolist(),
                "sizes": self.sizes.tolist(), "p": int(self.p), "n": int(self.n)}


def statistics_from_traces(traces: Any, T: Any, sizes: Any, p: int) -> MixtureStatistics:
    """Assemble :class:`MixtureStatistics` from tr(C_a)/p, the uncentred T and the sizes.

    Everything else is a function of these: with c = sizes/n,
    tau0^2 = c . traces, t = sqrt(p)(traces - tau0^2), T° = (I - 1c^T) T (I - c1^T),
    s2 = c^T T c.

    Parameters
    ----------
    traces : array_like, shape (K,)
    T : array_like, shape (K, K)
        Uncentred tr(C_a C_b)/p (symmetrised here).
    sizes : array_like of int, shape (K,)
        Class sizes n_a (>= 0, at least one > 0).
    p : int
        Dimension.
    """
    traces = as_real_array(traces, "traces")
    T = as_real_array(T, "T")
    sizes = np.asarray(sizes)
    K = traces.shape[0]
    if traces.ndim != 1 or T.shape != (K, K) or sizes.shape != (K,):
        raise ShapeMismatchError(
            f"traces (K,), T (K, K) and sizes (K,) must agree; got {traces.shape}, "
            f"{T.shape}, {sizes.shape}")
    if not np.issubdtype(sizes.dtype, np.integer) or (sizes < 0).any() or sizes.sum() == 0:
        raise InvalidParameterError(
            f"sizes must be non-negative integers with a positive sum; got {sizes.tolist()}")
    n = int(sizes.sum())
    c = sizes / n
    T = 0.5 * (T + T.T)
    tau0_sq = float(c @ traces)
    if not tau0_sq > 0:
        raise InvalidParameterError(
            f"tr(C°)/p = {tau0_sq:.3g} must be > 0 (the data has no noise)")
    t = math.sqrt(p) * (traces - tau0_sq)
    P = np.eye(K) - np.outer(np.ones(K), c)
    T_c = P @ T @ P.T
    T_c = 0.5 * (T_c + T_c.T)
    s2 = float(c @ T @ c)
    return MixtureStatistics(
        traces=readonly(traces.copy()), t=readonly(t), T=readonly(T), T_centred=readonly(T_c),
        tau0=math.sqrt(tau0_sq), s2=s2, proportions=readonly(c),
        sizes=readonly(sizes.astype(np.int64)), p=int(p), n=n)


# ---------------------------------------------------------------------------------------
# plug-in estimates
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PluginEstimate:
    """Plug-in estimates of the docs/theory.md §1 quantities from labelled data.

    Attributes
    ----------
    statistics : MixtureStatistics
        Estimated traces, t, T, T_centred, tau0, s2 (sizes and proportions are exact).
    psi : ndarray, shape (n,)
        Estimated psi_i (see :func:`plugin_statistics`).
    means : ndarray, shape (K, p)
        Estimated mu_a = sqrt(p) * (class mean of the columns of X).
    omega : ndarray, shape (p, n)
        Residuals sqrt(p) x_i - mu_a (estimated noise).
    codes : ndarray of int, shape (n,)
        Class of each sample in 0..K-1 (classes in sorted order of the original labels).
    classes : ndarray, shape (K,)
        The original label of each class.
    diag_estimator : str
        Estimator used for T_aa.
    """

    statistics: MixtureStatistics
    psi: np.ndarray
    means: np.ndarray
    omega: np.ndarray
    codes: np.ndarray
    classes: np.ndarray
    diag_estimator: str

    @property
    def V(self) -> np.ndarray:
        """V = [J/sqrt(p), psi], shape (n, K+1)."""
        return build_V(self.codes, self.psi, self.statistics.p, self.statistics.K)


def _trace_square_estimate(fro2: float, sum_diag_sq: float, trace: float, m: int,
                           estimator: str) -> float:
    """Unbiased estimate of tr(C^2) from the Gram G = W^T W of m mean-centred residuals.

    fro2 = ||G||_F^2, sum_diag_sq = sum_i G_ii^2, trace = tr G.
    """
    if estimator == "distribution_free":
        off = fro2 - sum_diag_sq  # sum_{i != j} G_ij^2
        return (off - 2.0 * sum_diag_sq / (m - 2)
                + trace * trace / ((m - 1) * (m - 2))) / (m * (m - 3))
    # gaussian: ||G||_F^2 - (tr G)^2/(m-1), rescaled
    return (fro2 - trace * trace / (m - 1)) / ((m - 2) * (m + 1))


def plugin_statistics(X: Any, labels: Any, *,
                      diag_estimator: str = "distribution_free") -> PluginEstimate:
    """Estimate every docs/theory.md §1 statistic from a labelled data matrix.

    The data need not be Gaussian: the estimators only assume that, within class ``a``,
    the columns ``y_i = sqrt(p) x_i`` are i.i.d. with mean mu_a and covariance C_a (and
    finite fourth moments).

    Estimators (n_a the size of class a, w_i = y_i - mu^_a the residuals):

    * mu^_a = sqrt(p) * mean of the class-a columns of X;
    * tr(C_a)/p: ``sum_{i in a} ||w_i||^2 / ((n_a - 1) p)`` -- unbiased (trace of the
      unbiased sample covariance S_a);
    * T_ab, a != b: ``tr(S_a S_b)/p = sum_{i in a, j in b} (w_i.w_j)^2 / ((n_a-1)(n_b-1) p)``,
      i.e. the average of (w_i.w_j)^2/p over pairs times n_a n_b/((n_a-1)(n_b-1)), which
      corrects the factor (1 - 1/n_a)(1 - 1/n_b) by which the estimated means shrink the
      residual covariances.  Unbiased (S_a, S_b independent), for any distribution.
    * T_aa (``diag_estimator="distribution_free"``, the default; needs n_a >= 4): with
      G = W_a^T W_a the m x m Gram of the residuals (m = n_a),

          tr(C_a^2)^ = [ sum_{i != j} G_ij^2 - 2 sum_i G_ii^2/(m-2)
                         + (tr G)^2/((m-1)(m-2)) ] / (m (m-3)),

      the off-diagonal U-statistic sum_{i != j} G_ij^2 / (m(m-1)) (whose mean is
      [(1 - 1/m)^2 + 1/m^2] tr C^2 + (tr C)^2/m^2 + O(kappa/m^2)) with the corrections
      that remove the (tr C)^2 leakage and the fourth-cumulant term kappa =
      E||w||^4 - (tr C)^2 - 2 tr C^2 caused by estimating the mean.  It is *exactly
      unbiased for any distribution* (it equals the location-invariant order-4
      U-statistic with kernel ((y_1 - y_2).(y_3 - y_4))^2 / 4); for Gaussian data its
      variance is about 4 (tr C_a^2)^2/m^2 + 8 tr(C_a^4)/m.
      ``diag_estimator="gaussian"`` (needs n_a >= 3) uses
      [||G||_F^2 - (tr G)^2/(m-1)] / ((m-2)(m+1)), unbiased only when kappa = 0
      (Gaussian data), biased by about kappa/m^2 otherwise; slightly smaller variance.
    * psi_i = (n_a/(n_a-1) ||w_i||^2 - tr(C_a)^)/p: unbiased (E||w_i||^2 =
      (1 - 1/n_a) tr C_a) and summing to zero within each class.  It estimates
      psi_i - (class mean of psi) of the true noise.  The error is dominated by
      -2 w_i.(sum_{j != i} w_j)/(n_a p) (residuals share the estimated mean), of standard
      deviation 2 sqrt(tr(C_a^2)/n_a)/p = O(1/p) per entry, so that relative to
      ||psi|| = O(1) the vector error is about sqrt(2/n_a) = O(p^{-1/2}).

    T°, s2, t and tau0 are the exact linear functions of these estimates (so T°_ab and s2
    are unbiased too; t and tau0^2 are unbiased, tau0 up to the square root).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; columns are samples.
    labels : array_like, shape (n,)
        Any labels; classes are numbered in sorted order of the distinct labels.
    diag_estimator : {"distribution_free", "gaussian"}

    Returns
    -------
    PluginEstimate

    Raises
    ------
    ShapeMismatchError, NonFiniteInputError
        bad X or labels (length different from n).
    InvalidParameterError
        a class with fewer than 2 samples (4 for the distribution-free T_aa, 3 for the
        Gaussian one).
    """
    Xa = as_data_matrix(X)
    p, n = Xa.shape
    codes, classes = as_labels(labels, n, p=p)
    check_choice(diag_estimator, "diag_estimator", DIAG_ESTIMATORS)
    return _plugin_estimate(Xa, codes, classes, diag_estimator)


def _plugin_estimate(X: np.ndarray, codes: np.ndarray, classes: np.ndarray,
                     diag_estimator: str) -> PluginEstimate:
    """:func:`plugin_statistics` on validated data, codes and estimator name."""
    p, n = X.shape
    K = classes.size
    sizes = np.bincount(codes, minlength=K).astype(np.int64)
    need = 4 if diag_estimator == "distribution_free" else 3
    small = np.flatnonzero(sizes < need)
    if small.size:
        a = int(small[0])
        raise InvalidParameterError(
            f"class {classes[a]!r} has only {int(sizes[a])} sample(s); the plug-in "
            f"estimates need at least 2 per class for the mean and the covariance trace, "
            f"and {need} for the {diag_estimator} estimate of tr(C_a^2)"
            + (" (diag_estimator='gaussian' needs 3)" if need == 4 else ""))
    means, W, sq, J, traces = class_residuals(X, codes, sizes)
    tr_sum = J.T @ sq  # sum_{i in a} ||w_i||^2
    diag_sq = J.T @ (sq * sq)  # sum_{i in a} ||w_i||^4
    # F_ab = ||W_a^T W_b||_F^2 = tr(W_a W_a^T W_b W_b^T): cheaper side of p vs n
    if p <= n:
        S = np.stack([W[:, codes == a] @ W[:, codes == a].T for a in range(K)])  # (K, p, p)
        F = np.einsum("aij,bij->ab", S, S)
    else:
        G = W.T @ W
        F = J.T @ (G * G) @ J
    F = 0.5 * (F + F.T)
    m = sizes.astype(float)
    T = F / np.outer(m - 1, m - 1)
    for a in range(K):
        T[a, a] = _trace_square_estimate(F[a, a], diag_sq[a], tr_sum[a], int(sizes[a]),
                                         diag_estimator)
    T /= p
    psi = (m / (m - 1))[codes] * sq / p - traces[codes]
    stats = statistics_from_traces(traces, T, sizes, p)
    return PluginEstimate(statistics=stats, psi=readonly(psi), means=readonly(means),
                          omega=readonly(W), codes=readonly(codes.astype(np.int64)),
                          classes=readonly(classes), diag_estimator=diag_estimator)
