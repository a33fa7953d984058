"""K-class Gaussian mixture data: the model and its samples (docs/theory.md §1).

Conventions (used everywhere in the package): the data matrix ``X`` is ``p x n`` and its
*columns* are the samples.  For a sample ``i`` of class ``a``::

    x_i = (mu_a + omega_i) / sqrt(p),      omega_i ~ N(0, C_a),

so the means ``mu_a`` and the noise ``omega_i`` live in "unnormalised" units
(``||mu_a|| = O(1)``, ``||C_a|| = O(1)``) and ``||x_i||^2 ~ tr(C_a)/p = O(1)``.

:class:`GaussianMixture` holds a known mixture: it draws samples (:class:`MixtureSample`)
and gives their exact statistics and psi (:mod:`rmt_deq.data.statistics`, where the
plug-in estimates from any labelled data matrix are too); :func:`default_mixture` is the
mixture of the demo and the convergence checks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from rmt_deq._results import readonly
from rmt_deq._validation import as_real_array, as_rng, check_positive_int
from rmt_deq.data.statistics import (MixtureStatistics, build_V, compute_psi,
                                     statistics_from_traces)
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError

__all__ = ["default_mixture", "GaussianMixture", "MixtureSample", "class_sizes"]

#: relative tolerance for symmetry / positive semi-definiteness / sum-to-one checks
_SYM_RTOL = 1e-10
_PSD_RTOL = 1e-10
_SUM_TOL = 1e-8


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


def _check_proportions(proportions: Any, K: int | None) -> np.ndarray:
    c = as_real_array(proportions, "proportions")
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
        means = as_real_array(self.means, "means")
        if means.ndim != 2 or 0 in means.shape:
            raise ShapeMismatchError(
                f"means must be a 2-D array of shape (K, p) with one class mean per row; "
                f"got shape {means.shape}")
        K, p = means.shape
        covs = as_real_array(self.covs, "covs")
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
        object.__setattr__(self, "means", readonly(means.copy()))
        object.__setattr__(self, "covs", readonly(covs.copy()))
        object.__setattr__(self, "proportions", readonly(c.copy()))

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
        return readonly(tr / self.p)

    @cached_property
    def T(self) -> np.ndarray:
        """Uncentred T_ab = tr(C_a C_b)/p, shape (K, K) (a matrix product in the trace)."""
        if self.diagonal:
            T = self.covs @ self.covs.T
        else:  # tr(C_a C_b) = sum_ij (C_a)_ij (C_b)_ji
            T = np.einsum("aij,bji->ab", self.covs, self.covs)
        return readonly(0.5 * (T + T.T) / self.p)

    @cached_property
    def _factors(self) -> np.ndarray:
        """Square-root factors F_a with F_a F_a^T = C_a (sqrt of the diagonal, or eigh)."""
        if self.diagonal:
            return readonly(np.sqrt(self.covs))
        F = np.empty_like(self.covs)
        for a in range(self.K):
            lam, Q = np.linalg.eigh(self.covs[a])
            # eigenvalues at round-off level are zero (sqrt would amplify eps to sqrt(eps))
            floor = self.p * np.finfo(float).eps * max(float(lam[-1]), 0.0)
            F[a] = Q * np.sqrt(np.where(lam > floor, lam, 0.0))
        return readonly(F)

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
        return MixtureSample(X=readonly(X), labels=readonly(labels),
                             omega=readonly(omega), sizes=readonly(s))

    # -- statistics ----------------------------------------------------------------------
    def statistics(self, n_or_sizes: Any) -> MixtureStatistics:
        """Exact docs/theory.md §1 statistics at the given class sizes.

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
