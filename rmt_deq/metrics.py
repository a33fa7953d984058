"""Distances between kernel matrices and between their spectra.

* :func:`relative_operator_distance`, :func:`relative_frobenius_distance`:
  ||K - K_ref|| / ||K_ref|| in the operator (spectral) and Frobenius norms;
* :func:`ks_distance`, :func:`wasserstein1_distance`: Kolmogorov-Smirnov and
  1-Wasserstein distances between two eigenvalue distributions (empirical measures, each
  eigenvalue with weight 1/n);
* :func:`top_eigen_comparison`: relative errors of the k largest eigenvalues, the
  alignment |<u_i, u_i^ref>| of the matching eigenvectors, and the alignment of the two
  top-k eigenspaces ||U_k^T U_k^ref||_F^2 / k;
* :func:`compare_kernels`: all of the above in one frozen result.

Matrix arguments are symmetric n x n kernels (eigenvalues by ``numpy.linalg.eigvalsh``);
the spectral distances also accept 1-D arrays of eigenvalues.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rmt_deq._validation import as_float_array, check_positive_finite, check_positive_int
from rmt_deq.errors import InvalidParameterError, NonFiniteInputError, ShapeMismatchError

__all__ = ["operator_norm", "relative_operator_distance", "relative_frobenius_distance",
           "ks_distance", "wasserstein1_distance", "TopEigenComparison",
           "top_eigen_comparison", "KernelComparison", "compare_kernels"]


def _real(x: Any, name: str) -> np.ndarray:
    try:
        return as_float_array(x, name)
    except (InvalidParameterError, NonFiniteInputError):
        raise
    except (TypeError, ValueError):
        raise ShapeMismatchError(f"{name} must be a numeric array") from None


def _square(K: Any, name: str) -> np.ndarray:
    a = _real(K, name)
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


def _nonzero(x: float, what: str) -> float:
    if x == 0:
        raise InvalidParameterError(
            f"{what} is zero (the reference kernel is the zero matrix): a distance relative "
            f"to it is undefined; compare absolute distances, e.g. operator_norm(K - K_ref)")
    return x


def relative_operator_distance(K: Any, K_ref: Any) -> float:
    """||K - K_ref||_2 / ||K_ref||_2.

    Parameters
    ----------
    K, K_ref : array_like, shape (n, n)

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
    a = _real(x, name)
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


def _cdfs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = np.concatenate([a, b])
    grid.sort(kind="mergesort")
    Fa = np.searchsorted(a, grid, side="right") / a.size
    Fb = np.searchsorted(b, grid, side="right") / b.size
    return grid, Fa, Fb


def ks_distance(spec: Any, spec_ref: Any) -> float:
    """Kolmogorov-Smirnov distance sup_x |F(x) - F_ref(x)| of two eigenvalue distributions.

    Parameters
    ----------
    spec, spec_ref : array_like
        Symmetric matrices or 1-D arrays of eigenvalues (sizes may differ).
    """
    a, b = _spectrum(spec, "spec"), _spectrum(spec_ref, "spec_ref")
    _, Fa, Fb = _cdfs(a, b)
    return float(np.max(np.abs(Fa - Fb)))


def wasserstein1_distance(spec: Any, spec_ref: Any) -> float:
    """1-Wasserstein distance integral |F(x) - F_ref(x)| dx of two eigenvalue distributions.

    In the units of the eigenvalues (divide by a scale, e.g. ||K_ref||, for a relative
    number).  Sizes may differ.
    """
    a, b = _spectrum(spec, "spec"), _spectrum(spec_ref, "spec_ref")
    grid, Fa, Fb = _cdfs(a, b)
    return float(np.sum(np.abs(Fa - Fb)[:-1] * np.diff(grid)))


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
