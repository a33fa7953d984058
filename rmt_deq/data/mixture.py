"""K-class Gaussian mixture data and its statistics (theory.md section 1).

Conventions (used everywhere in the package): the data matrix ``X`` is ``p x n`` and its
*columns* are the samples.  For a sample ``i`` of class ``a``::

    x_i = (mu_a + omega_i) / sqrt(p),      omega_i ~ N(0, C_a),

so the means ``mu_a`` and the noise ``omega_i`` live in "unnormalised" units
(``||mu_a|| = O(1)``, ``||C_a|| = O(1)``) and ``||x_i||^2 ~ tr(C_a)/p = O(1)``.

With ``c_a = n_a / n`` the class proportions *of the sample*::

    C° = sum_a c_a C_a,  C_a° = C_a - C°,   tau0^2 = tr(C°)/p,
    t_a  = tr(C_a°)/sqrt(p)                     (centred, O(1))
    T_ab = tr(C_a C_b)/p                        (UNcentred, a matrix product in the trace)
    T°_ab = tr(C_a° C_b°)/p = [(I - 1 c^T) T (I - c 1^T)]_ab
    s2   = tr(C°^2)/p = c^T T c
    psi_i = (||omega_i||^2 - tr C_a)/p,         V = [J/sqrt(p), psi]  (n x (K+1)).

:class:`GaussianMixture` holds a known mixture (exact statistics, sampling);
:func:`plugin_statistics` estimates every statistic from any labelled data matrix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from rmt_deq._validation import (as_data_matrix, as_float_array, as_labels, as_rng, check_choice,
                                 check_positive_int)
from rmt_deq.errors import InvalidParameterError, NonFiniteInputError, ShapeMismatchError

__all__ = [
    "default_mixture",
    "GaussianMixture",
    "MixtureSample",
    "MixtureStatistics",
    "PluginEstimate",
    "class_sizes",
    "class_indicators",
    "compute_psi",
    "build_V",
    "statistics_from_traces",
    "plugin_statistics",
]

#: relative tolerance for symmetry / positive semi-definiteness / sum-to-one checks
_SYM_RTOL = 1e-10
_PSD_RTOL = 1e-10
_SUM_TOL = 1e-8


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=a.dtype, copy=True)
    a.setflags(write=False)
    return a


def _finite_float_array(value: Any, name: str) -> np.ndarray:
    try:
        return as_float_array(value, name)
    except (InvalidParameterError, NonFiniteInputError):
        raise
    except (TypeError, ValueError):
        raise ShapeMismatchError(f"{name} must be a numeric array") from None


# ---------------------------------------------------------------------------------------
# small helpers shared with the surrogate module
# ---------------------------------------------------------------------------------------
def class_sizes(n: int, proportions: Any) -> np.ndarray:
    """Class sizes n_a for n samples, by deterministic largest-remainder rounding.

    Each class first gets ``floor(n c_a)``; the remaining samples go, one each, to the
    classes with the largest fractional parts ``n c_a - floor(n c_a)`` (ties: lower class
    index first).  The result sums to ``n`` and differs from ``n c_a`` by less than 1.

    Parameters
    ----------
    n : int
        Total number of samples, > 0.
    proportions : array_like, shape (K,)
        Non-negative, summing to 1.

    Returns
    -------
    ndarray of int, shape (K,)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise InvalidParameterError(f"n (number of samples) must be a positive integer, got {n!r}")
    c = _check_proportions(proportions, None)
    exact = n * c
    base = np.floor(exact).astype(np.int64)
    rest = int(n - base.sum())
    frac = exact - base
    order = np.lexsort((np.arange(c.size), -frac))  # largest fraction first, then index
    base[order[:rest]] += 1
    return base


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
    traces = _finite_float_array(traces, "traces")
    return np.einsum("ij,ij->j", W, W) / p - traces[codes]


def build_V(codes: Any, psi: Any, p: int, K: int) -> np.ndarray:
    """V = [J/sqrt(p), psi], shape (n, K+1): class indicators scaled by 1/sqrt(p), then psi."""
    psi = _finite_float_array(psi, "psi")
    codes = np.asarray(codes, dtype=np.int64)
    if psi.ndim != 1 or psi.shape != codes.shape:
        raise ShapeMismatchError(
            f"psi must be a 1-D array with one entry per sample (n = {codes.size}); "
            f"got shape {psi.shape}")
    V = np.empty((codes.size, K + 1))
    V[:, :K] = class_indicators(codes, K) / math.sqrt(p)
    V[:, K] = psi
    return V


def _check_proportions(proportions: Any, K: int | None) -> np.ndarray:
    c = _finite_float_array(proportions, "proportions")
    if c.ndim != 1 or (K is not None and c.shape[0] != K) or c.size == 0:
        want = f"(K,) = ({K},)" if K is not None else "(K,)"
        raise ShapeMismatchError(f"proportions must have shape {want}; got shape {c.shape}")
    if (c < 0).any():
        raise InvalidParameterError(
            f"proportions must be non-negative; got {c.tolist()}")
    s = float(c.sum())
    if abs(s - 1.0) > _SUM_TOL:
        raise InvalidParameterError(
            f"proportions must sum to 1 (got sum = {s:.12g}); divide them by their sum")
    return c


# ---------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MixtureStatistics:
    """The section-1 statistics of a K-class mixture at given class sizes.

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
    traces = _finite_float_array(traces, "traces")
    T = _finite_float_array(T, "T")
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
        traces=_readonly(traces), t=_readonly(t), T=_readonly(T), T_centred=_readonly(T_c),
        tau0=math.sqrt(tau0_sq), s2=s2, proportions=_readonly(c),
        sizes=_readonly(sizes.astype(np.int64)), p=int(p), n=n)


# ---------------------------------------------------------------------------------------
# the mixture
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MixtureSample:
    """Data drawn from a :class:`GaussianMixture`.

    Attributes
    ----------
    X : ndarray, shape (p, n)
        The data; columns are samples, grouped by class (class 0 first).
    labels : ndarray of int, shape (n,)
        Class of each column, in 0..K-1 (non-decreasing).
    omega : ndarray, shape (p, n)
        The noise: X = (means[labels].T + omega)/sqrt(p).
    sizes : ndarray of int, shape (K,)
        Class sizes n_a.
    """

    X: np.ndarray
    labels: np.ndarray
    omega: np.ndarray
    sizes: np.ndarray

    @property
    def p(self) -> int:
        return int(self.X.shape[0])

    @property
    def n(self) -> int:
        return int(self.X.shape[1])


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """A K-class Gaussian mixture: x = (mu_a + omega)/sqrt(p), omega ~ N(0, C_a).

    Parameters
    ----------
    means : array_like, shape (K, p)
        mu_a as rows (unnormalised units, ||mu_a|| = O(1)).
    covs : array_like, shape (K, p) or (K, p, p)
        Either the diagonals of diagonal covariances (K x p) or full symmetric positive
        semi-definite matrices (K x p x p).
    proportions : array_like, shape (K,), optional
        Population class proportions (non-negative, summing to 1); default uniform.

    Raises
    ------
    ShapeMismatchError
        means not 2-D, covs not (K, p) / (K, p, p), proportions not (K,).
    NonFiniteInputError
        NaN/inf in any input.
    InvalidParameterError
        a negative variance, a non-symmetric or non-PSD covariance, proportions negative or
        not summing to 1.
    """

    means: np.ndarray
    covs: np.ndarray
    proportions: np.ndarray | None = None

    def __post_init__(self) -> None:
        means = _finite_float_array(self.means, "means")
        if means.ndim != 2 or 0 in means.shape:
            raise ShapeMismatchError(
                f"means must be a 2-D array of shape (K, p) with one class mean per row; "
                f"got shape {means.shape}")
        K, p = means.shape
        covs = _finite_float_array(self.covs, "covs")
        if covs.shape == (K, p):
            if (covs < 0).any():
                a, j = np.argwhere(covs < 0)[0]
                raise InvalidParameterError(
                    f"covs[{a}] (a diagonal covariance) has a negative variance "
                    f"{covs[a, j]:.3g} at coordinate {j}")
        elif covs.shape == (K, p, p):
            covs = covs.copy()
            for a in range(K):
                C = covs[a]
                scale = max(float(np.max(np.abs(C))), 1e-300)
                asym = float(np.max(np.abs(C - C.T)))
                if asym > _SYM_RTOL * scale:
                    raise InvalidParameterError(
                        f"covs[{a}] is not symmetric (max |C - C^T| = {asym:.3g}); pass "
                        f"(C + C.T)/2 if the asymmetry is round-off")
                covs[a] = 0.5 * (C + C.T)
                lam_min = float(np.linalg.eigvalsh(covs[a])[0])
                if lam_min < -_PSD_RTOL * scale * p:
                    raise InvalidParameterError(
                        f"covs[{a}] is not positive semi-definite: smallest eigenvalue "
                        f"{lam_min:.3g}")
        else:
            raise ShapeMismatchError(
                f"covs must have shape (K, p) = ({K}, {p}) (diagonals) or (K, p, p) = "
                f"({K}, {p}, {p}) (full matrices), matching means of shape ({K}, {p}); "
                f"got shape {covs.shape}")
        if self.proportions is None:
            c = np.full(K, 1.0 / K)
        else:
            c = _check_proportions(self.proportions, K)
        object.__setattr__(self, "means", _readonly(means))
        object.__setattr__(self, "covs", _readonly(covs))
        object.__setattr__(self, "proportions", _readonly(c))

    # -- shape ---------------------------------------------------------------------------
    @property
    def K(self) -> int:
        """Number of classes."""
        return int(self.means.shape[0])

    @property
    def p(self) -> int:
        """Dimension."""
        return int(self.means.shape[1])

    @property
    def diagonal(self) -> bool:
        """True when the covariances are stored as K x p diagonals."""
        return self.covs.ndim == 2

    def cov(self, a: int) -> np.ndarray:
        """The full p x p covariance C_a (built from the diagonal if needed)."""
        return np.diag(self.covs[a]) if self.diagonal else np.array(self.covs[a])

    @cached_property
    def traces(self) -> np.ndarray:
        """tr(C_a)/p, shape (K,)."""
        tr = self.covs.sum(axis=1) if self.diagonal else np.trace(self.covs, axis1=1, axis2=2)
        return _readonly(tr / self.p)

    @cached_property
    def T(self) -> np.ndarray:
        """Uncentred T_ab = tr(C_a C_b)/p, shape (K, K) (a matrix product in the trace)."""
        if self.diagonal:
            T = self.covs @ self.covs.T
        else:  # tr(C_a C_b) = sum_ij (C_a)_ij (C_b)_ji
            T = np.einsum("aij,bji->ab", self.covs, self.covs)
        return _readonly(0.5 * (T + T.T) / self.p)

    @cached_property
    def _factors(self) -> np.ndarray:
        """Square-root factors F_a with F_a F_a^T = C_a (sqrt of the diagonal, or eigh)."""
        if self.diagonal:
            return _readonly(np.sqrt(self.covs))
        F = np.empty_like(self.covs)
        for a in range(self.K):
            lam, Q = np.linalg.eigh(self.covs[a])
            # eigenvalues at round-off level are zero (sqrt would amplify eps to sqrt(eps))
            floor = self.p * np.finfo(float).eps * max(float(lam[-1]), 0.0)
            F[a] = Q * np.sqrt(np.where(lam > floor, lam, 0.0))
        return _readonly(F)

    # -- sampling ------------------------------------------------------------------------
    def sizes(self, n: int) -> np.ndarray:
        """Class sizes for n samples (largest-remainder rounding of n * proportions)."""
        return class_sizes(n, self.proportions)

    def _resolve_sizes(self, n: Any, sizes: Any) -> np.ndarray:
        if sizes is None:
            if n is None:
                raise InvalidParameterError("give the number of samples n or explicit sizes")
            return self.sizes(n)
        s = np.asarray(sizes)
        if s.shape != (self.K,):
            raise ShapeMismatchError(
                f"sizes must have shape (K,) = ({self.K},); got shape {s.shape}")
        if not np.issubdtype(s.dtype, np.integer):
            if not np.all(np.isfinite(s)) or not np.all(s == np.round(s)):
                raise InvalidParameterError(f"sizes must be integers; got {s.tolist()}")
            s = s.astype(np.int64)
        if (s < 0).any() or s.sum() == 0:
            raise InvalidParameterError(
                f"sizes must be non-negative with a positive sum; got {s.tolist()}")
        if n is not None and int(n) != int(s.sum()):
            raise ShapeMismatchError(f"n = {n} but the sizes sum to {int(s.sum())}")
        return s.astype(np.int64)

    def sample(self, n: int | None = None, rng: Any = None, *,
               sizes: Sequence[int] | np.ndarray | None = None) -> MixtureSample:
        """Draw a labelled data matrix.

        Parameters
        ----------
        n : int, optional
            Number of samples; the class sizes are ``self.sizes(n)``.
        rng : int or numpy.random.Generator, optional
            Seed or generator (same seed -> same data).  ``None``: fresh entropy.
        sizes : array_like of int, shape (K,), optional
            Explicit class sizes (then ``n`` may be omitted; if given it must match).

        Returns
        -------
        MixtureSample
            X (p x n, columns grouped by class), labels, omega, sizes.
        """
        s = self._resolve_sizes(n, sizes)
        gen = as_rng(rng)
        labels = np.repeat(np.arange(self.K), s)
        Z = gen.standard_normal((self.p, int(s.sum())))
        omega = np.empty_like(Z)
        F = self._factors
        start = 0
        for a in range(self.K):
            sl = slice(start, start + int(s[a]))
            omega[:, sl] = F[a][:, None] * Z[:, sl] if self.diagonal else F[a] @ Z[:, sl]
            start += int(s[a])
        X = (self.means.T[:, labels] + omega) / math.sqrt(self.p)
        return MixtureSample(X=_readonly(X), labels=_readonly(labels),
                             omega=_readonly(omega), sizes=_readonly(s))

    # -- statistics ----------------------------------------------------------------------
    def statistics(self, n_or_sizes: Any) -> MixtureStatistics:
        """Exact section-1 statistics at the given class sizes.

        Parameters
        ----------
        n_or_sizes : int, array_like of int (K,), or MixtureSample
            The number of samples (sizes by largest-remainder rounding), explicit class
            sizes, or a sample (its sizes).  C° = sum_a (n_a/n) C_a uses these *sample*
            proportions.
        """
        if isinstance(n_or_sizes, MixtureSample):
            s = np.asarray(n_or_sizes.sizes)
            if s.shape != (self.K,) or n_or_sizes.p != self.p:
                raise ShapeMismatchError(
                    f"the sample (p = {n_or_sizes.p}, {s.shape[0]} classes) does not come "
                    f"from this mixture (p = {self.p}, K = {self.K})")
        elif isinstance(n_or_sizes, (int, np.integer)) and not isinstance(n_or_sizes, bool):
            s = self.sizes(int(n_or_sizes))
        else:
            s = self._resolve_sizes(None, n_or_sizes)
        return statistics_from_traces(self.traces, self.T, s, self.p)

    def psi(self, sample: MixtureSample) -> np.ndarray:
        """psi_i = (||omega_i||^2 - tr C_a)/p for a sample of this mixture, shape (n,)."""
        self._check_sample(sample)
        return compute_psi(sample.omega, sample.labels, self.traces)

    def V(self, sample: MixtureSample) -> np.ndarray:
        """V = [J/sqrt(p), psi], shape (n, K+1), for a sample of this mixture."""
        return build_V(sample.labels, self.psi(sample), self.p, self.K)

    def _check_sample(self, sample: MixtureSample) -> None:
        if not isinstance(sample, MixtureSample):
            raise InvalidParameterError(
                f"expected a MixtureSample (from GaussianMixture.sample), got "
                f"{type(sample).__name__}")
        if sample.p != self.p or np.asarray(sample.sizes).shape != (self.K,):
            raise ShapeMismatchError(
                f"the sample (p = {sample.p}, {np.asarray(sample.sizes).shape[0]} classes) "
                f"does not come from this mixture (p = {self.p}, K = {self.K})")


# ---------------------------------------------------------------------------------------
# plug-in estimates
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PluginEstimate:
    """Plug-in estimates of the section-1 quantities from labelled data.

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


def _class_residuals(X: np.ndarray, codes: np.ndarray, sizes: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The plug-in class means and residuals of labelled data (every class >= 2 samples).

    Returns mu^_a (K x p, the class means of sqrt(p) x_i), the residuals
    W = sqrt(p) X - mu^[codes] (p x n), ||w_i||^2 (n,), the indicators J (n x K) and the
    unbiased tr(C_a)/p estimates ``sum_{i in a} ||w_i||^2 / ((n_a - 1) p)`` (K,).  This is
    the one place where the plug-in data scale tau0^2 = sum_a c_a tr(C_a)/p starts from
    (:func:`plugin_statistics` and :func:`rmt_deq.data.conventions.data_scale`).
    """
    p = X.shape[0]
    Y = math.sqrt(p) * X
    J = class_indicators(codes, sizes.size)
    means = (Y @ J / sizes).T  # (K, p)
    W = Y - means.T[:, codes]
    sq = np.einsum("ij,ij->j", W, W)  # ||w_i||^2
    m = sizes.astype(float)
    traces = (J.T @ sq) / ((m - 1) * p)
    return means, W, sq, J, traces


def plugin_statistics(X: Any, labels: Any, *,
                      diag_estimator: str = "distribution_free") -> PluginEstimate:
    """Estimate every section-1 statistic from a labelled data matrix.

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
    X = as_data_matrix(X)
    p, n = X.shape
    codes, classes = as_labels(labels, n, p=p)
    check_choice(diag_estimator, "diag_estimator", ("distribution_free", "gaussian"))
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
    means, W, sq, J, traces = _class_residuals(X, codes, sizes)
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
    return PluginEstimate(statistics=stats, psi=_readonly(psi), means=_readonly(means),
                          omega=_readonly(W), codes=_readonly(codes.astype(np.int64)),
                          classes=_readonly(classes), diag_estimator=diag_estimator)


def default_mixture(p: int, K: int = 2, rng: Any = 0) -> GaussianMixture:
    """A K-class mixture in the proportional regime, used by the demo and the checks.

    Means have norm 3 along random directions.  Covariances are diagonal: for odd classes
    the first half of the coordinates has variance 1.5 and the second half 0.5 (a shape
    difference that is O(1) per coordinate), and class a's second half is scaled up by
    2a/(K sqrt p), so tr(C_a)/p = 1 + a/(K sqrt p): trace differences of order sqrt(p), as
    the regime requires (t_a = O(1)).  Equal proportions; ``rng`` seeds the mean directions.
    """
    p = check_positive_int(p, "p")
    K = check_positive_int(K, "K")
    gen = as_rng(rng)
    means = gen.standard_normal((K, p))
    means *= 3.0 / np.linalg.norm(means, axis=1, keepdims=True)
    covs = np.ones((K, p))
    half = p // 2
    for a in range(K):
        # shape differences O(1) per coordinate, trace differences O(sqrt p)
        covs[a, :half] *= 1.0 + 0.5 * (a % 2)
        covs[a, half:] *= 1.0 - 0.5 * (a % 2) + 2.0 * a / (K * math.sqrt(p))
    return GaussianMixture(means, covs, np.full(K, 1.0 / K))
