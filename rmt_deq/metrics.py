"""Distances between kernel matrices and between their spectra.

* :func:`operator_norm` (any square matrix, validated) and
  :func:`symmetric_operator_norm` (the fast path for symmetric matrices the caller knows
  to be finite: the Monte-Carlo error bars);
* :func:`relative_operator_distance`, :func:`relative_frobenius_distance`:
  ||K - K_ref|| / ||K_ref|| in the operator (spectral) and Frobenius norms -- the one
  relative error of the package, argument order (approximation, reference);
* :func:`spectral_distances`: Kolmogorov-Smirnov and 1-Wasserstein distances of observed
  eigenvalues to a reference spectrum, either other eigenvalues (empirical measures, each
  eigenvalue with weight 1/n) or a predicted distribution with an atom (any object with
  ``cdf``/``quantile``/``atom``/``atom_at``/``width``, e.g. the limiting bulk of
  docs/theory.md §7); :func:`ks_distance`, :func:`wasserstein1_distance`: the two
  distances between two sets of eigenvalues;
* :func:`top_eigen_comparison`: relative errors of the k largest eigenvalues, the
  alignment |<u_i, u_i^ref>| of the matching eigenvectors, and the alignment of the two
  top-k eigenspaces ||U_k^T U_k^ref||_F^2 / k;
* :func:`compare_kernels`: all of the above in one frozen result.

Matrix arguments are symmetric n x n kernels (eigenvalues by ``numpy.linalg.eigvalsh``);
the spectral distances also accept 1-D arrays of eigenvalues.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh

from rmt_deq._io import json_ready
from rmt_deq._validation import as_real_array, check_positive_finite, check_positive_int
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError

__all__ = ["operator_norm", "symmetric_operator_norm", "relative_operator_distance",
           "relative_frobenius_distance", "ks_distance", "wasserstein1_distance",
           "spectral_distances", "SpectralDistances", "nearest_eigenvalues", "SpectralDistribution", "TopEigenComparison",
           "top_eigen_comparison", "KernelComparison", "compare_kernels"]


#: above this size :func:`symmetric_operator_norm` finds the eigenvalue of largest modulus
#: by Lanczos iteration (ARPACK) instead of computing every eigenvalue (LAPACK): from about
#: there on Lanczos is the faster of the two (docs/sampling.md)
LANCZOS_MIN_SIZE = 257
#: relative tolerance of the Lanczos eigenvalue (far below any Monte-Carlo error bar)
LANCZOS_TOL = 1e-10


def _square(K: Any, name: str) -> np.ndarray:
    a = as_real_array(K, name)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ShapeMismatchError(f"{name} must be a non-empty square matrix, got shape "
                                 f"{a.shape}")
    return a


def _pair(K: Any, K_ref: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _square(K, "K"), _square(K_ref, "K_ref")
    if a.shape != b.shape:
        raise ShapeMismatchError(f"K is {a.shape} but K_ref is {b.shape}")
    return a, b


def _is_symmetric(a: np.ndarray) -> bool:
    return bool(np.allclose(a, a.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(a).max())))


def operator_norm(K: Any) -> float:
    """||K||_2 (largest singular value; |eigenvalue| for symmetric K)."""
    a = _square(K, "K")
    if _is_symmetric(a):
        w = np.linalg.eigvalsh(a)
        return float(max(abs(w[0]), abs(w[-1])))
    return float(np.linalg.norm(a, 2))


def symmetric_operator_norm(M: np.ndarray) -> float:
    """||M||_2 = max |eigenvalue| of a symmetric matrix, without validating it.

    For the hot loops that know M is a finite symmetric float array (the Monte-Carlo
    error bars of :mod:`rmt_deq.sampling`): only the lower triangle is read.  LAPACK
    (every eigenvalue) below :data:`LANCZOS_MIN_SIZE`; from there on Lanczos (ARPACK) for
    the eigenvalue of largest modulus to :data:`LANCZOS_TOL` relative, falling back to
    LAPACK if it does not converge.  :func:`operator_norm` is the validated version.
    """
    n = M.shape[0]
    if n >= LANCZOS_MIN_SIZE:
        v0 = np.ones(n) / math.sqrt(n)
        try:
            w = eigsh(M, k=1, which="LM", v0=v0, tol=LANCZOS_TOL, return_eigenvectors=False)
            return float(abs(w[0]))
        except (ArpackNoConvergence, ArpackError):
            pass
    w = np.linalg.eigvalsh(M)
    return float(max(abs(w[0]), abs(w[-1])))


def _nonzero(x: float, what: str) -> float:
    if x == 0:
        raise InvalidParameterError(
            f"{what} is zero (the reference kernel is the zero matrix): a distance relative "
            f"to it is undefined; compare absolute distances, e.g. operator_norm(K - K_ref)")
    return x


def relative_operator_distance(K: Any, K_ref: Any) -> float:
    """||K - K_ref||_2 / ||K_ref||_2: the relative error of K against the reference K_ref.

    The one relative operator-norm error of the package (convergence checks, the demo,
    the tests); the approximation comes first, the reference (the denominator) second.

    Parameters
    ----------
    K : array_like, shape (n, n)
        The approximation (e.g. a surrogate or a sampled kernel).
    K_ref : array_like, shape (n, n)
        The reference (e.g. the exact kernel).

    Returns
    -------
    float
    """
    a, b = _pair(K, K_ref)
    return operator_norm(a - b) / _nonzero(operator_norm(b), "||K_ref||_2")


def relative_frobenius_distance(K: Any, K_ref: Any) -> float:
    """||K - K_ref||_F / ||K_ref||_F."""
    a, b = _pair(K, K_ref)
    return float(np.linalg.norm(a - b) / _nonzero(float(np.linalg.norm(b)), "||K_ref||_F"))


def _spectrum(x: Any, name: str) -> np.ndarray:
    """The sorted eigenvalues of a symmetric matrix, or a 1-D array of eigenvalues sorted."""
    a = as_real_array(x, name)
    if a.ndim == 2:
        a = _square(a, name)
        if not _is_symmetric(a):
            raise InvalidParameterError(f"{name} is not symmetric; pass its eigenvalues")
        return np.linalg.eigvalsh(a)
    if a.ndim != 1 or a.size == 0:
        raise ShapeMismatchError(
            f"{name} must be a symmetric matrix or a 1-D array of eigenvalues, got shape "
            f"{a.shape}")
    return np.sort(a)


# ---------------------------------------------------------------------------------------
# spectral distances: one implementation, for empirical and predicted references
# ---------------------------------------------------------------------------------------
#: what a predicted reference distribution provides (duck typing, see SpectralDistribution)
DISTRIBUTION_ATTRIBUTES = ("cdf", "quantile", "atom", "atom_at", "width")
#: default: observed eigenvalues within this fraction of the reference's width of its atom
#: are counted at the atom (round-off of exact zero eigenvalues)
ATOM_TOLERANCE_REL = 1e-8
#: default quadrature points per empirical quantile step of W1 against a distribution
W1_SUBDIVISIONS = 16


class SpectralDistribution(Protocol):
    """A predicted eigenvalue distribution: an absolutely continuous part and possibly an
    atom (e.g. :class:`rmt_deq.spectra.bulk.BulkSpectrum`, docs/theory.md §7.4).

    ``cdf`` is right-continuous and nondecreasing (the atom a jump of height ``atom`` at
    ``atom_at``), ``quantile`` its generalised inverse on [0, 1], ``width`` the extent of
    the distribution (hull of its support and its atom).
    """

    atom: float
    atom_at: float

    @property
    def width(self) -> float: ...

    def cdf(self, y: np.ndarray) -> np.ndarray: ...

    def quantile(self, t: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class SpectralDistances:
    """Distances between observed eigenvalues and a reference spectrum.

    Attributes
    ----------
    ks : float
        Kolmogorov-Smirnov distance sup_x |F_obs(x) - F_ref(x)|.
    w1 : float
        1-Wasserstein distance int |F_obs - F_ref| dx = int_0^1 |Q_obs(t) - Q_ref(t)| dt
        (eigenvalue units).
    width : float
        Extent of the reference spectrum (of its support and atom; max - min of reference
        eigenvalues).
    w1_relative : float
        w1/width (inf for a reference of zero width).
    n_used : int
        Observed eigenvalues compared (after ``exclude``).
    excluded : tuple of float
        The observed eigenvalues removed as the nearest to each excluded position.
    """

    ks: float
    w1: float
    width: float
    w1_relative: float
    n_used: int
    excluded: tuple = ()

    def to_dict(self) -> dict:
        """JSON-ready dictionary of the fields (a non-finite number becomes null)."""
        return json_ready(dataclasses.asdict(self))


def _is_distribution(obj: Any) -> bool:
    return not isinstance(obj, np.ndarray) and hasattr(obj, "cdf")


def _empirical_cdf(values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The right-continuous empirical CDF of the sorted ``values``."""
    n = values.size
    return lambda y: np.searchsorted(values, y, side="right") / n


def _ks(ev: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray],
        extra: tuple = ()) -> float:
    """sup_x |F_ev(x) - F(x)| for sorted ``ev`` and any nondecreasing right-continuous F.

    F_ev is constant between consecutive observed eigenvalues and F is monotone, so the
    supremum is attained at a one-sided limit at an observed eigenvalue: both limits are
    compared there (and at the ``extra`` points).  Exact for an empirical F too.
    """
    n = ev.size
    pts = np.unique(np.append(ev, extra) if len(extra) else ev)
    Fe_right = np.searchsorted(ev, pts, side="right") / n
    Fe_left = np.searchsorted(ev, pts, side="left") / n
    return max(float(np.max(np.abs(Fe_right - cdf(pts)))),
               float(np.max(np.abs(Fe_left - cdf(np.nextafter(pts, -np.inf))))))


def _w1_empirical(a: np.ndarray, b: np.ndarray) -> float:
    """int |F_a - F_b| dx of two sorted samples, exactly (both CDFs are step functions)."""
    grid = np.concatenate([a, b])
    grid.sort(kind="mergesort")
    Fa = np.searchsorted(a, grid, side="right") / a.size
    Fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.sum(np.abs(Fa - Fb)[:-1] * np.diff(grid)))


def _w1_quantile(ev: np.ndarray, quantile: Callable[[np.ndarray], np.ndarray],
                 subdivisions: int) -> float:
    """int_0^1 |Q_ev(t) - Q(t)| dt by the midpoint rule, ``subdivisions`` points per step
    1/n of the empirical quantile function (exact where Q is constant on a point's cell)."""
    n = ev.size
    t = (np.arange(n * subdivisions) + 0.5) / (n * subdivisions)
    q_emp = ev[np.minimum((t * n).astype(int), n - 1)]
    return float(np.mean(np.abs(q_emp - quantile(t))))


def nearest_eigenvalues(eigenvalues: Any, positions: Any) -> np.ndarray:
    """Indices of the observed eigenvalues matched to predicted positions.

    Each position, in the order given, takes the nearest eigenvalue not taken by an
    earlier position (how the observed isolated eigenvalue of each predicted one is
    identified).

    Parameters
    ----------
    eigenvalues : array_like, shape (n,)
    positions : array_like, shape (S,), S <= n

    Returns
    -------
    ndarray of int, shape (S,)
        Indices into ``eigenvalues`` (distinct).

    Raises
    ------
    InvalidParameterError
        More positions than eigenvalues, or a value that is not finite.
    """
    ev = np.asarray(as_real_array(eigenvalues, "eigenvalues"), dtype=float).ravel()
    pos = np.atleast_1d(as_real_array(positions, "positions")).ravel()
    if pos.size > ev.size:
        raise InvalidParameterError(
            f"{pos.size} positions but only {ev.size} eigenvalues: pass at most one "
            f"position per eigenvalue")
    keep = np.ones(ev.size, dtype=bool)
    out = np.empty(pos.size, dtype=np.intp)
    for i, s in enumerate(pos):
        cand = np.flatnonzero(keep)
        j = cand[np.argmin(np.abs(ev[cand] - s))]
        keep[j] = False
        out[i] = j
    return out


def _exclude(ev: np.ndarray, exclude: Any) -> tuple[np.ndarray, tuple]:
    """Remove, for each excluded position, the nearest remaining observed eigenvalue."""
    positions = np.atleast_1d(as_real_array(exclude, "exclude")).ravel()
    if positions.size > ev.size:
        raise InvalidParameterError(
            f"exclude has {positions.size} positions but there are only {ev.size} "
            f"eigenvalues: pass at most one position per eigenvalue to remove")
    idx = nearest_eigenvalues(ev, positions)
    keep = np.ones(ev.size, dtype=bool)
    keep[idx] = False
    return ev[keep], tuple(float(ev[j]) for j in idx)


def spectral_distances(eigenvalues: Any, reference: Any, *, exclude: Any = None,
                       subdivisions: int | None = None,
                       atom_tolerance: float | None = None) -> SpectralDistances:
    """Kolmogorov-Smirnov and 1-Wasserstein distances of observed eigenvalues to a
    reference spectrum: other eigenvalues, or a predicted distribution with an atom.

    Parameters
    ----------
    eigenvalues : array_like
        Observed eigenvalues (1-D), or a symmetric matrix (its eigenvalues).
    reference : array_like or SpectralDistribution
        Reference eigenvalues (or a symmetric matrix), compared as an empirical
        distribution; or a predicted distribution: any object with ``cdf``, ``quantile``,
        ``atom``, ``atom_at`` and ``width`` (duck typing, e.g.
        :class:`rmt_deq.spectra.bulk.BulkSpectrum`, docs/theory.md §7.4).
    exclude : array_like, optional
        Positions of eigenvalues to leave out (e.g. predicted isolated eigenvalues): for
        each, the observed eigenvalue nearest to it is removed before comparing (the bulk
        of an n x n matrix then has n - S eigenvalues).
    subdivisions : int, optional
        Against a distribution: quadrature points per empirical quantile step for W1
        (default :data:`W1_SUBDIVISIONS`).  Not applicable to an empirical reference (W1
        is then exact).
    atom_tolerance : float, optional
        Against a distribution with an atom: observed eigenvalues within this distance of
        the atom are counted at the atom (round-off of exact zero eigenvalues); default
        :data:`ATOM_TOLERANCE_REL` times the width.  It does not hide the O(p^{-1/2})
        spreading of the atom by an exact kernel.  Not applicable to an empirical
        reference.

    Returns
    -------
    SpectralDistances
        KS exact (the supremum over the one-sided limits at every observed eigenvalue);
        W1 exact against an empirical reference, by the midpoint rule against a
        distribution.

    Raises
    ------
    InvalidParameterError
        No eigenvalue left after ``exclude`` (or more positions than eigenvalues), a
        reference missing one of :data:`DISTRIBUTION_ATTRIBUTES`, the arguments swapped,
        an option that does not apply to an empirical reference, bad ``subdivisions`` or
        ``atom_tolerance``.
    NonFiniteInputError, ShapeMismatchError
        NaN/inf, or not eigenvalues / a symmetric matrix.
    """
    if _is_distribution(eigenvalues):
        raise InvalidParameterError(
            f"eigenvalues is a {type(eigenvalues).__name__} (a distribution): pass the "
            f"observed eigenvalues first and the reference second, "
            f"spectral_distances(eigenvalues, reference)")
    ev = _spectrum(eigenvalues, "eigenvalues")
    removed: tuple = ()
    if exclude is not None:
        ev, removed = _exclude(ev, exclude)
    n = ev.size
    if n == 0:
        raise InvalidParameterError("no eigenvalues left to compare")
    if _is_distribution(reference):
        missing = [a for a in DISTRIBUTION_ATTRIBUTES if not hasattr(reference, a)]
        if missing:
            raise InvalidParameterError(
                f"reference {type(reference).__name__} lacks {missing}: a predicted "
                f"distribution needs {list(DISTRIBUTION_ATTRIBUTES)} (e.g. a BulkSpectrum)")
        m = W1_SUBDIVISIONS if subdivisions is None else check_positive_int(
            subdivisions, "subdivisions")
        atom, atom_at = float(reference.atom), float(reference.atom_at)
        width = float(reference.width)
        if atom > 0:
            tol = ATOM_TOLERANCE_REL * width if atom_tolerance is None else _nonnegative(
                atom_tolerance, "atom_tolerance")
            ev = np.sort(np.where(np.abs(ev - atom_at) <= tol, atom_at, ev))
        ks = _ks(ev, reference.cdf, (atom_at,) if atom > 0 else ())
        w1 = _w1_quantile(ev, reference.quantile, m)
    else:
        for name, value in (("subdivisions", subdivisions), ("atom_tolerance", atom_tolerance)):
            if value is not None:
                raise InvalidParameterError(
                    f"{name} applies to a predicted reference distribution, not to reference "
                    f"eigenvalues (W1 between two sets of eigenvalues is exact, and they "
                    f"have no atom); leave it out")
        ref = _spectrum(reference, "reference")
        ks = _ks(ev, _empirical_cdf(ref))
        w1 = _w1_empirical(ev, ref)
        width = float(ref[-1] - ref[0])
    return SpectralDistances(ks=ks, w1=w1, width=width,
                             w1_relative=w1 / width if width > 0 else float("inf"),
                             n_used=int(n), excluded=removed)


def _nonnegative(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise InvalidParameterError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def ks_distance(spec: Any, spec_ref: Any) -> float:
    """Kolmogorov-Smirnov distance sup_x |F(x) - F_ref(x)| of two eigenvalue distributions
    (:func:`spectral_distances` with reference eigenvalues).

    Parameters
    ----------
    spec, spec_ref : array_like
        Symmetric matrices or 1-D arrays of eigenvalues (sizes may differ).
    """
    a, b = _spectrum(spec, "spec"), _spectrum(spec_ref, "spec_ref")
    return _ks(a, _empirical_cdf(b))


def wasserstein1_distance(spec: Any, spec_ref: Any) -> float:
    """1-Wasserstein distance integral |F(x) - F_ref(x)| dx of two eigenvalue distributions
    (:func:`spectral_distances` with reference eigenvalues).

    In the units of the eigenvalues (divide by a scale, e.g. ||K_ref||, for a relative
    number).  Sizes may differ.
    """
    a, b = _spectrum(spec, "spec"), _spectrum(spec_ref, "spec_ref")
    return _w1_empirical(a, b)


@dataclass(frozen=True, eq=False)
class TopEigenComparison:
    """The k largest eigenpairs of K against those of K_ref.

    Attributes
    ----------
    eigenvalues, reference_eigenvalues : ndarray, shape (k,)
        Largest first.
    relative_errors : ndarray, shape (k,)
        |lambda_i - lambda_i^ref| / max(|lambda_i^ref|, floor), floor = ``rel_floor`` *
        ||K_ref||_2: the plain relative error for eigenvalues above the floor; for
        (near-)zero reference eigenvalues the error relative to the floor (finite, never
        NaN; 0 for identical kernels).
    floor : float
        The absolute floor ``rel_floor * ||K_ref||_2`` that was used.
    alignments : ndarray, shape (k,)
        |<u_i, u_i^ref>| (1: same direction; meaningful for well-separated eigenvalues).
    subspace_alignment : float
        ||U_k^T U_k^ref||_F^2 / k in [0, 1] (1: the same top-k eigenspace).
    """

    eigenvalues: np.ndarray = field(repr=False)
    reference_eigenvalues: np.ndarray = field(repr=False)
    relative_errors: np.ndarray
    alignments: np.ndarray
    subspace_alignment: float
    floor: float = 0.0


#: default relative floor of the eigenvalue relative errors (a fraction of ||K_ref||_2)
DEFAULT_REL_FLOOR = 1e-6


def top_eigen_comparison(K: Any, K_ref: Any, k: int = 5, *,
                         rel_floor: float = DEFAULT_REL_FLOOR) -> TopEigenComparison:
    """Compare the top-k eigenvalues and eigenvectors of two symmetric kernels.

    Parameters
    ----------
    K, K_ref : array_like, shape (n, n), symmetric
    k : int
        Number of leading eigenpairs (at most n).
    rel_floor : float
        Relative errors are taken against max(|lambda_i^ref|, rel_floor ||K_ref||_2), so
        an eigenvalue of K_ref that is zero or below the floor (a rank-deficient kernel,
        k beyond its rank) gives a finite error measured on the scale of the floor instead
        of NaN or 1e28; in (0, 1).  The default 1e-6 is far above the rounding of computed
        eigenvalues (about n * 1e-16 ||K_ref||_2).

    Raises
    ------
    InvalidParameterError
        K_ref is the zero matrix (no scale to measure relative errors against), bad k or
        rel_floor, a non-symmetric matrix.
    """
    a, b = _pair(K, K_ref)
    k = check_positive_int(k, "k")
    rel_floor = check_positive_finite(rel_floor, "rel_floor")
    if not rel_floor < 1:
        raise InvalidParameterError(f"rel_floor must be in (0, 1), got {rel_floor!r}")
    n = a.shape[0]
    if k > n:
        raise InvalidParameterError(f"k = {k} exceeds the matrix size n = {n}")
    for name, x in (("K", a), ("K_ref", b)):
        if not _is_symmetric(x):
            raise InvalidParameterError(f"{name} is not symmetric")
    wa, va = np.linalg.eigh(a)
    wb, vb = np.linalg.eigh(b)
    scale = _nonzero(float(max(abs(wb[0]), abs(wb[-1]))), "||K_ref||_2")
    floor = rel_floor * scale
    wa, va = wa[::-1][:k], va[:, ::-1][:, :k]
    wb, vb = wb[::-1][:k], vb[:, ::-1][:, :k]
    rel = np.abs(wa - wb) / np.maximum(np.abs(wb), floor)
    overlap = va.T @ vb
    return TopEigenComparison(
        eigenvalues=wa, reference_eigenvalues=wb, relative_errors=rel,
        alignments=np.abs(np.diagonal(overlap)).copy(),
        subspace_alignment=float(np.sum(overlap ** 2) / k), floor=float(floor))


@dataclass(frozen=True, eq=False)
class KernelComparison:
    """Every comparison metric of K against K_ref.

    Attributes
    ----------
    operator : float
        Relative operator-norm distance.
    frobenius : float
        Relative Frobenius distance.
    ks : float
        Kolmogorov-Smirnov distance of the eigenvalue distributions.
    wasserstein1 : float
        1-Wasserstein distance of the eigenvalue distributions, divided by ||K_ref||_2.
    top : TopEigenComparison
    """

    operator: float
    frobenius: float
    ks: float
    wasserstein1: float
    top: TopEigenComparison

    def as_dict(self) -> dict:
        """Flat dict of the scalar metrics (top-k as lists)."""
        return {"operator": self.operator, "frobenius": self.frobenius, "ks": self.ks,
                "wasserstein1": self.wasserstein1,
                "top_relative_errors": self.top.relative_errors.tolist(),
                "top_alignments": self.top.alignments.tolist(),
                "top_subspace_alignment": self.top.subspace_alignment}


def compare_kernels(K: Any, K_ref: Any, k: int = 5, *,
                    rel_floor: float = DEFAULT_REL_FLOOR) -> KernelComparison:
    """All metrics of K against the reference K_ref (symmetric n x n kernels).

    Every metric is finite: identical kernels give 0 everywhere (alignments 1 for simple
    eigenvalues); a zero K_ref raises (no scale for the relative distances).

    Parameters
    ----------
    K, K_ref : array_like, shape (n, n)
    k : int
        Leading eigenpairs for :func:`top_eigen_comparison`.
    rel_floor : float
        Floor of the eigenvalue relative errors (:func:`top_eigen_comparison`).

    Returns
    -------
    KernelComparison

    Raises
    ------
    InvalidParameterError
        K_ref is the zero matrix.
    """
    a, b = _pair(K, K_ref)
    scale = _nonzero(operator_norm(b), "||K_ref||_2")
    return KernelComparison(
        operator=relative_operator_distance(a, b),
        frobenius=relative_frobenius_distance(a, b),
        ks=ks_distance(a, b),
        wasserstein1=wasserstein1_distance(a, b) / scale,
        top=top_eigen_comparison(a, b, k, rel_floor=rel_floor))
