"""The data of the spectral equations: class covariances reduced to what the equations need
(docs/theory.md §7.2-7.3).

Data model (docs/theory.md §1): X is p x n (columns are samples), the columns of class a are
(mu_a + omega_i)/sqrt(p) with omega_i ~ N(0, C_a), n_a samples, r_a = n_a/p.  The equations
of :mod:`rmt_deq.spectra.stieltjes` need traces tr(C_a Y)/p, tr(C_a Y C_b Y)/p and tr(Y)/p
of Y = (s I + sum_b c_b C_b)^{-1}, and M^T Y M for the isolated eigenvalues
(:mod:`rmt_deq.spectra.spikes`).  :func:`gram_model` prepares them once:

* diagonal covariances (or commuting full ones, jointly diagonalised once) become U <= p
  *distinct* coordinate tuples ((C_1)_jj, ..., (C_K)_jj) with weights, independent of n; a
  structured covariance (a few distinct variances) makes every evaluation O(K^2) whatever
  p.  Summed term by term they cost O(K^2 U) per evaluation point; from
  :data:`EXPANSION_MIN_U` distinct coordinates on (K <= 3) they are by default evaluated by
  Taylor expansions over boxes of coordinates (:mod:`rmt_deq.spectra._box_expansion`) at a
  cost independent of U, every sum within :data:`EXPANSION_TOL` of the sum of the absolute
  values of its terms (a proven truncation bound).  ``max_atoms`` optionally merges
  coordinates with nearly equal variances into at most that many groups (an
  approximation, second order in the merged spread, exact traces tr(C_a)/p kept);
* non-commuting full covariances are kept as matrices ("dense" backend): O(p^3) per
  evaluation (one complex inverse per point, :mod:`rmt_deq.spectra._fullcov`), plus
  O(K p^3) for a Jacobian, correct but slow: no factorisation can be shared between
  points (docs/spectra.md).

Measured costs are in docs/spectra.md (with the command that reproduces them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._results import readonly
from rmt_deq._validation import as_real_array
from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError
from rmt_deq.spectra._box_expansion import BoxExpansion, box_expansion
from rmt_deq.spectra._fullcov import dense_moments

__all__ = ["GramModel", "gram_model", "gram_model_from_mixture", "CHUNK_ENTRIES",
           "EXPANSION_MIN_U", "EXPANSION_ORDER", "EXPANSION_BOXES", "EXPANSION_TOL",
           "SUMMATIONS"]

#: largest number of complex entries (evaluation points x distinct coordinates) held at once
CHUNK_ENTRIES = 2_000_000
#: "auto" summation: the box expansion is used from this many distinct coordinates on
EXPANSION_MIN_U = 4096
#: largest Taylor order of the expansion, by K (K > 3: direct summation only)
EXPANSION_ORDER = {1: 32, 2: 24, 3: 20}
#: number of coordinate boxes of the expansion
EXPANSION_BOXES = 16
#: bound on the truncation error of every sum, relative to the sum of the absolute values
#: of its terms (a few times the round-off of the direct sum over 10^5 terms)
EXPANSION_TOL = 1e-14
#: how the diagonal backend sums over its coordinates
SUMMATIONS = ("auto", "direct", "expansion")

#: the spectral scale is this factor times the Marchenko-Pastur bound
#: max variance * (1 + sqrt(n/p))^2 of the right edge: the margin keeps the right edge
#: strictly inside (0, scale) (for one isotropic class the edge equals the bound)
_SCALE_MARGIN = 1.25
#: relative tolerance of the joint-diagonalisation test for full covariances
_COMMUTE_RTOL = 1e-9
#: a full covariance is refused as not PSD when its smallest eigenvalue is below
#: -_PSD_RTOL * max|entry| * p (round-off of an eigenvalue solve of a PSD matrix is far less)
_PSD_RTOL = 1e-10
#: eigenvalues of the dense backend's average covariance above _RANK_RTOL * largest * p
#: count towards its rank p_eff
_RANK_RTOL = 1e-12
#: coordinates whose variance tuples, divided by the largest variance, agree to this many
#: decimals are one group (duplicates up to round-off)
_DUPLICATE_DECIMALS = 13
#: weights of the generic combination sum_a theta_a C_a whose eigenvectors diagonalise
#: commuting covariances: 1 + frac(a * golden ratio), distinct and irrational-spaced
_GOLDEN = 0.6180339887498949
#: floor of the scales that divide (all-zero covariances are refused separately)
_TINY = 1e-300


@dataclass(frozen=True, eq=False)
class GramModel:
    """The data of the equations of docs/theory.md §7.2 for one mixture at given class sizes.

    Build with :func:`gram_model` or :func:`gram_model_from_mixture`.  Immutable: every
    array is read-only.

    Attributes
    ----------
    p : int
        Dimension.
    sizes : ndarray of int, shape (K,)
        Class sizes n_a (n = sizes.sum()).
    backend : {"diagonal", "dense"}
        "diagonal": diagonal covariances (given so, or jointly diagonalised commuting full
        ones), stored as U distinct coordinate groups; "dense": full non-commuting
        covariances (O(K p^3) per evaluation).
    weights : ndarray, shape (U,)
        (number of coordinates in each group)/p ("diagonal" backend; empty otherwise).
        Coordinates with zero variance in every class are dropped, so the weights sum to
        p_eff/p.
    variances : ndarray, shape (K, U)
        The variance of class a on group u ("diagonal" backend).
    covs : ndarray, shape (K, p, p) or None
        The full covariances ("dense" backend).
    mean_blocks : ndarray, shape (U, K, K) or None
        sum over the coordinates j of group u of mu_aj mu_bj (in the eigenbasis for jointly
        diagonalised covariances); "diagonal" backend with means.
    means : ndarray, shape (K, p) or None
        The class means ("dense" backend with means).
    MtM : ndarray, shape (K, K)
        M^T M = [mu_a . mu_b] (bias-corrected for plug-in means, see ``mean_bias``).
    mean_bias : ndarray, shape (K,)
        p/n_a for plug-in means (the estimated mu_a carry noise of covariance C_a/n_a, whose
        contribution is subtracted from M^T M and from M^T Y M), 0 for exact means.
    trace_sq : ndarray, shape (K,)
        tr(C_a^2)/p (the psi-block of the spike equation uses 2 tr(C_a^2)/p).
    traces : ndarray, shape (K,)
        tr(C_a)/p.
    p_eff : int
        Rank of the covariances together (coordinates with nonzero variance): the bulk of
        X^T X carries mass min(n, p_eff)/n, the atom at 0 the rest.
    scale : float
        Spectral scale: an upper bound of the right edge of the bulk of X^T X,
        1.25 * max variance * (1 + sqrt(n/p))^2 (the margin keeps the right edge strictly
        inside (0, scale): for a single isotropic class the edge equals the unscaled bound).
    compressed : bool
        True when ``max_atoms`` merged coordinates (an approximation).
    basis : str
        "diagonal", "joint-eigenbasis" or "dense".
    expansion : BoxExpansion or None
        Box expansion of the coordinate sums (diagonal backend with many distinct
        coordinates, see :func:`gram_model`'s ``summation``); None: direct sums.
    """

    p: int
    sizes: np.ndarray
    backend: str
    weights: np.ndarray
    variances: np.ndarray
    covs: np.ndarray | None = field(repr=False)
    mean_blocks: np.ndarray | None = field(repr=False)
    means: np.ndarray | None = field(repr=False)
    MtM: np.ndarray = field(repr=False)
    mean_bias: np.ndarray = field(repr=False)
    trace_sq: np.ndarray = field(repr=False)
    traces: np.ndarray = field(repr=False)
    p_eff: int
    scale: float
    compressed: bool
    basis: str
    expansion: BoxExpansion | None = field(default=None, repr=False)

    # -- basic quantities ------------------------------------------------------------------
    @property
    def K(self) -> int:
        """Number of classes."""
        return int(self.sizes.shape[0])

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.sizes.sum())

    @property
    def ratios(self) -> np.ndarray:
        """r_a = n_a/p, shape (K,)."""
        return self.sizes / self.p

    @property
    def unknown(self) -> str:
        """The Newton unknown: "delta" when n >= p_eff, "g" when n < p_eff."""
        return "delta" if self.n >= self.p_eff else "g"

    @property
    def atom(self) -> float:
        """Mass of the point atom of the spectrum of X^T X at 0: max(0, 1 - p_eff/n)."""
        return max(0.0, 1.0 - self.p_eff / self.n)

    @property
    def n_distinct(self) -> int:
        """U, the number of coordinate groups of the diagonal backend (p for dense)."""
        return int(self.weights.shape[0]) if self.backend == "diagonal" else self.p

    # -- resolvent moments -------------------------------------------------------------------
    def moments(self, coeff: np.ndarray, shift: np.ndarray, *, second: bool = True,
                mean: bool = False) -> tuple:
        """The traces of Y = (shift I + sum_b coeff_b C_b)^{-1}, one matrix per row.

        Parameters
        ----------
        coeff : ndarray of complex, shape (N, K)
        shift : ndarray of complex, shape (N,)
        second, mean : bool
            Also compute the second moments / the means' quadratic form (else None).

        Returns
        -------
        first : ndarray, shape (N, K)
            tr(C_a Y)/p.
        second : ndarray, shape (N, K, K) or None
            tr(C_a Y C_b Y)/p.
        trace : ndarray, shape (N,)
            tr(Y)/p over the kept coordinates (all p directions for the dense backend).
        meanq : ndarray, shape (N, K, K) or None
            M^T Y M, bias-corrected for plug-in means (zero without means).

        Inputs are trusted (a private evaluation of :mod:`rmt_deq.spectra.stieltjes`).
        With the box expansion every sum is within :data:`EXPANSION_TOL` of the sum of the
        absolute values of its terms, plus round-off.
        """
        if self.backend == "diagonal" and self.expansion is not None:
            first, sec, trace = self.expansion.sums(coeff, shift, second=second)
            mq = None
            if mean:
                if self.mean_blocks is None:
                    mq = np.zeros((coeff.shape[0], self.K, self.K), dtype=complex)
                else:   # direct (only the final evaluation of the spike equation needs it)
                    mq = np.zeros((coeff.shape[0], self.K, self.K), dtype=complex)
                    step = max(1, CHUNK_ENTRIES // max(1, self.n_distinct))
                    for i0 in range(0, coeff.shape[0], step):
                        sl = slice(i0, i0 + step)
                        Y = 1.0 / (shift[sl, None] + coeff[sl] @ self.variances)
                        mq[sl] = np.einsum("nu,ukl->nkl", Y, self.mean_blocks)
        elif self.backend == "diagonal":
            D = shift[:, None] + coeff @ self.variances           # (N, U)
            Y = 1.0 / D
            Yw = Y * self.weights
            first = Yw @ self.variances.T
            trace = Yw.sum(axis=1)
            sec = None
            if second:
                K = self.K
                CC = (self.variances[:, None, :] * self.variances[None, :, :]).reshape(K * K, -1)
                sec = ((Y * Yw) @ CC.T).reshape(-1, K, K)
            mq = None
            if mean:
                mq = (np.einsum("nu,ukl->nkl", Y, self.mean_blocks)
                      if self.mean_blocks is not None
                      else np.zeros((Y.shape[0], self.K, self.K), dtype=complex))
        else:
            first, sec, trace, mq = self._dense_moments(coeff, shift, second, mean)
        if mean and np.any(self.mean_bias):
            # plug-in means: E[mu^ Y mu^] = mu Y mu + tr(C_a Y)/n_a on the diagonal
            idx = np.arange(self.K)
            mq[:, idx, idx] -= first * self.mean_bias
        return first, sec, trace, mq

    def _dense_moments(self, coeff: np.ndarray, shift: np.ndarray, second: bool,
                       mean: bool) -> tuple:
        """:meth:`moments` of the dense backend: one p x p complex inverse per point,
        points batched (:func:`~rmt_deq.spectra._fullcov.dense_moments`)."""
        return dense_moments(self.covs, self.means, coeff, shift, second, mean,
                             CHUNK_ENTRIES)

    def to_dict(self) -> dict:
        """JSON-ready summary (not the covariances): p, n, sizes, K, backend, basis,
        n_distinct, p_eff, scale, compressed, unknown, traces, summation, trace_sq."""
        return json_ready({
            "p": self.p, "n": self.n, "sizes": self.sizes, "K": self.K,
            "backend": self.backend, "basis": self.basis,
            "n_distinct": self.n_distinct, "p_eff": self.p_eff,
            "scale": self.scale, "compressed": self.compressed,
            "unknown": self.unknown, "traces": self.traces,
            "summation": "direct" if self.expansion is None else "expansion",
            "trace_sq": self.trace_sq})


def _check_sizes(sizes: Any, K: int) -> np.ndarray:
    s = np.asarray(sizes)
    if s.shape != (K,):
        raise ShapeMismatchError(f"sizes must have shape (K,) = ({K},); got {s.shape}")
    if not np.issubdtype(s.dtype, np.integer):
        if not np.all(np.isfinite(s.astype(float))) or not np.all(s == np.round(s)):
            raise InvalidParameterError(f"sizes must be integers; got {s.tolist()}")
    s = s.astype(np.int64)
    if (s < 0).any() or s.sum() == 0:
        raise InvalidParameterError(
            f"sizes must be non-negative with a positive sum; got {s.tolist()}")
    return s


def _joint_diagonalise(covs: np.ndarray) -> np.ndarray | None:
    """An orthogonal Q with Q^T C_a Q diagonal for every a, or None if they do not commute."""
    K, p, _ = covs.shape
    theta = 1.0 + np.modf(np.arange(1, K + 1) * _GOLDEN)[0]
    S = np.tensordot(theta, covs, axes=1)
    _, Q = np.linalg.eigh(0.5 * (S + S.T))
    for a in range(K):
        R = Q.T @ covs[a] @ Q
        off = R - np.diag(np.diag(R))
        scale = max(float(np.max(np.abs(covs[a]))), _TINY)
        if float(np.max(np.abs(off))) > _COMMUTE_RTOL * scale * max(1.0, math.sqrt(p)):
            return None
    return Q


def _compress(var: np.ndarray, mu: np.ndarray | None, max_atoms: int | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """Group coordinates: duplicates (to round-off) always, near values when more than
    max_atoms.

    var (K, p_kept) variances, mu (K, p_kept) means or None.  Returns weights (U,) as counts,
    variances (K, U) (group means: traces exact), mean blocks (U, K, K) or None, compressed.
    """
    K, pk = var.shape
    scale = max(float(np.max(np.abs(var))), _TINY)
    key = np.round(var.T / scale, _DUPLICATE_DECIMALS)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    compressed = False
    if max_atoms is not None and counts.size > max_atoms:
        # quantile bins per class, b^K <= max_atoms cells (occupied ones only are kept)
        b = max(2, int(math.floor(max_atoms ** (1.0 / K))))
        codes = np.zeros(pk, dtype=np.int64)
        for a in range(K):
            edges = np.quantile(var[a], np.linspace(0, 1, b + 1)[1:-1])
            codes = codes * b + np.searchsorted(edges, var[a], side="right")
        _, inv, counts = np.unique(codes, return_inverse=True, return_counts=True)
        inv = inv.ravel()
        compressed = True
    U = counts.size
    sums = np.zeros((K, U))
    for a in range(K):
        sums[a] = np.bincount(inv, weights=var[a], minlength=U)
    variances = sums / counts
    blocks = None
    if mu is not None:
        outer = mu[:, None, :] * mu[None, :, :]                   # (K, K, pk)
        blocks = np.zeros((U, K, K))
        for a in range(K):
            for b2 in range(K):
                blocks[:, a, b2] = np.bincount(inv, weights=outer[a, b2], minlength=U)
    return counts.astype(float), variances, blocks, compressed


def _owned(a: np.ndarray | None) -> np.ndarray | None:
    """A read-only copy (a model never shares memory with the caller's arrays)."""
    return None if a is None else readonly(np.array(a))


def _check_full_psd(C: np.ndarray) -> None:
    """Refuse a full covariance that is not positive semi-definite (beyond round-off)."""
    p = C.shape[1]
    for a in range(C.shape[0]):
        lam_min = float(np.linalg.eigvalsh(C[a])[0])
        if lam_min < -_PSD_RTOL * max(float(np.max(np.abs(C[a]))), _TINY) * p:
            raise InvalidParameterError(
                f"covs[{a}] is not positive semi-definite (smallest eigenvalue "
                f"{lam_min:.3g})")


def gram_model(covs: Any, sizes: Any, *, means: Any = None, mean_bias: Any = None,
               trace_sq: Any = None, max_atoms: int | None = None,
               joint_diagonalise: bool = True, summation: str = "auto") -> GramModel:
    """Build the model of docs/theory.md §7.2 from class covariances and class sizes.

    Parameters
    ----------
    covs : array_like, shape (K, p) or (K, p, p)
        Diagonals of diagonal covariances, or full symmetric PSD matrices (unnormalised
        units: x = (mu + omega)/sqrt(p), omega ~ N(0, C_a)).
    sizes : array_like of int, shape (K,)
        Class sizes n_a.
    means : array_like, shape (K, p), optional
        Class means mu_a (rows), needed only by the spike equation.
    mean_bias : array_like, shape (K,), optional
        p/n_a when ``means`` are plug-in estimates (class averages of the data), whose
        noise is then removed from M^T M and M^T Y M; default 0 (exact means).
    trace_sq : array_like, shape (K,), optional
        tr(C_a^2)/p to use in the spike equation's psi block (e.g. the unbiased plug-in
        estimate); default computed from ``covs``.
    max_atoms : int, optional
        Merge coordinates into at most this many groups (quantile bins of the variances)
        when there are more distinct ones: an approximation for very large p with
        continuous variance profiles ("diagonal" backend only).  Default: exact (only
        identical coordinates are merged).
    joint_diagonalise : bool
        For full covariances, test whether they commute and, if so, use the diagonal
        backend in their joint eigenbasis (default True).
    summation : {"auto", "direct", "expansion"}
        How the diagonal backend evaluates its sums over the U distinct coordinates.
        "direct": term by term, O(U) per point.  "expansion": Taylor expansions over
        :data:`EXPANSION_BOXES` boxes of coordinates
        (:class:`~rmt_deq.spectra._box_expansion.BoxExpansion`), O(number of moments) per
        point, with every sum within :data:`EXPANSION_TOL` of the sum of the absolute
        values of its terms of the direct sum (a rigorous truncation bound; a box where the
        bound cannot be met at a point is summed directly there).  "auto" (default):
        "expansion" when U >= :data:`EXPANSION_MIN_U` and K <= 3, else "direct".  Ignored
        by the dense backend.

    Returns
    -------
    GramModel

    Raises
    ------
    ShapeMismatchError, NonFiniteInputError, InvalidParameterError
        Bad shapes, NaN/inf, negative variances, all-zero covariances, bad sizes.
    """
    C = as_real_array(covs, "covs")
    if C.ndim not in (2, 3) or 0 in C.shape or (C.ndim == 3 and C.shape[1] != C.shape[2]):
        raise ShapeMismatchError(
            f"covs must have shape (K, p) (diagonals) or (K, p, p); got {C.shape}")
    K, p = C.shape[0], C.shape[1]
    s = _check_sizes(sizes, K)
    mu = None
    if means is not None:
        mu = as_real_array(means, "means")
        if mu.shape != (K, p):
            raise ShapeMismatchError(f"means must have shape (K, p) = ({K}, {p}); got {mu.shape}")
    bias = np.zeros(K) if mean_bias is None else as_real_array(mean_bias, "mean_bias")
    if bias.shape != (K,):
        raise ShapeMismatchError(f"mean_bias must have shape ({K},); got {bias.shape}")
    if max_atoms is not None and (isinstance(max_atoms, bool) or not isinstance(
            max_atoms, (int, np.integer)) or max_atoms < 2):
        raise InvalidParameterError(f"max_atoms must be an integer >= 2 or None, got {max_atoms!r}")
    if not isinstance(joint_diagonalise, (bool, np.bool_)):
        raise InvalidParameterError("joint_diagonalise must be True or False")
    if summation not in SUMMATIONS:
        raise InvalidParameterError(
            f"summation must be 'auto', 'direct' or 'expansion', got {summation!r}")
    basis = "diagonal"
    var = None
    Q = None
    if C.ndim == 3:
        C = 0.5 * (C + np.transpose(C, (0, 2, 1)))
        _check_full_psd(C)
        if joint_diagonalise:
            Q = _joint_diagonalise(C)
        if Q is not None:
            var = np.clip(np.einsum("ji,ajk,ki->ai", Q, C, Q), 0.0, None)
            basis = "joint-eigenbasis"
            if mu is not None:
                mu = mu @ Q
    else:
        if (C < 0).any():
            raise InvalidParameterError("covs (diagonals) must be non-negative variances")
        var = C
    if mu is not None:
        MtM = mu @ mu.T - np.diag(bias * (np.trace(C, axis1=1, axis2=2) if C.ndim == 3
                                          else C.sum(axis=1)) / p)
    else:
        MtM = np.zeros((K, K))
    if var is not None:
        traces = var.sum(axis=1) / p
        tsq = (var ** 2).sum(axis=1) / p
        keep = var.max(axis=0) > 0
        p_eff = int(keep.sum())
        if p_eff == 0:
            raise InvalidParameterError("the covariances are all zero: there is no bulk")
        counts, variances, blocks, compressed = _compress(
            var[:, keep], None if mu is None else mu[:, keep], max_atoms)
        weights = counts / p
        vmax = float(variances.max())
        covs_dense = None
        means_dense = None
        backend = "diagonal"
    else:
        traces = np.trace(C, axis1=1, axis2=2) / p
        tsq = np.einsum("aij,aji->a", C, C) / p
        Cbar = np.tensordot(s / s.sum(), C, axes=1)
        ev = np.linalg.eigvalsh(0.5 * (Cbar + Cbar.T))
        p_eff = int((ev > _RANK_RTOL * max(float(ev[-1]), _TINY) * p).sum())
        vmax = max(float(np.linalg.eigvalsh(C[a])[-1]) for a in range(K))
        weights = np.zeros(0)
        variances = np.zeros((K, 0))
        blocks = None
        compressed = False
        covs_dense = C
        means_dense = mu
        backend = "dense"
        basis = "dense"
    if trace_sq is not None:
        tsq = as_real_array(trace_sq, "trace_sq")
        if tsq.shape != (K,):
            raise ShapeMismatchError(f"trace_sq must have shape ({K},); got {tsq.shape}")
    if not vmax > 0:
        raise InvalidParameterError("the covariances are all zero: there is no bulk")
    n = int(s.sum())
    scale = _SCALE_MARGIN * vmax * (1.0 + math.sqrt(n / p)) ** 2
    expansion = None
    if backend == "diagonal" and summation != "direct":
        U = weights.shape[0]
        if summation == "expansion" or (U >= EXPANSION_MIN_U and K in EXPANSION_ORDER):
            order = EXPANSION_ORDER.get(K)
            if order is None:
                raise InvalidParameterError(
                    f"summation='expansion' is implemented for K <= "
                    f"{max(EXPANSION_ORDER)} classes; got K = {K}")
            expansion = box_expansion(weights, variances, order, EXPANSION_BOXES,
                                      EXPANSION_TOL, CHUNK_ENTRIES)
    return GramModel(
        p=int(p), sizes=_owned(s), backend=backend, weights=_owned(weights),
        variances=_owned(variances), covs=_owned(covs_dense), mean_blocks=_owned(blocks),
        means=_owned(means_dense), MtM=_owned(0.5 * (MtM + MtM.T)), mean_bias=_owned(bias),
        trace_sq=_owned(tsq), traces=_owned(traces), p_eff=p_eff, scale=float(scale),
        compressed=compressed, basis=basis, expansion=expansion)


def gram_model_from_mixture(mixture: GaussianMixture, n_or_sizes: Any, *,
                            max_atoms: int | None = None, with_means: bool = True,
                            summation: str = "auto") -> GramModel:
    """:func:`gram_model` for a :class:`~rmt_deq.data.mixture.GaussianMixture`.

    Parameters
    ----------
    mixture : GaussianMixture
    n_or_sizes : int, array_like of int (K,), or MixtureSample
        Number of samples (sizes by largest-remainder rounding), explicit class sizes, or
        a sample (its sizes).
    max_atoms : int, optional
        See :func:`gram_model`.
    with_means : bool
        Carry the means (needed by :mod:`rmt_deq.spectra.spikes`; default True).
    summation : {"auto", "direct", "expansion"}
        See :func:`gram_model`.
    """
    if not isinstance(mixture, GaussianMixture):
        raise InvalidParameterError(
            f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    if isinstance(n_or_sizes, MixtureSample):
        sizes = np.asarray(n_or_sizes.sizes)
    elif isinstance(n_or_sizes, (int, np.integer)) and not isinstance(n_or_sizes, bool):
        sizes = mixture.sizes(int(n_or_sizes))
    else:
        sizes = n_or_sizes
    return gram_model(mixture.covs, sizes, means=mixture.means if with_means else None,
                      max_atoms=max_atoms, summation=summation)
