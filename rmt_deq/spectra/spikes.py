"""Isolated eigenvalues (spikes) of kernel surrogates and their eigenvector alignments
(docs/theory.md §7.5-7.6).

Write X = Z + M J^T/sqrt(p) (M = [mu_1..mu_K] p x K, Z the noise part, J the n x K class
indicators).  A surrogate ``c1 X^T X + V L V^T + c0 I`` (V = [J/sqrt(p), psi]; L the
(K+1) x (K+1) low-rank matrix: A of the CK, D of the NTK) is then

    c1 Z^T Z + c0 I + U B U^T,        U = [J/sqrt(p), Z^T M, psi]   (n x (2K+1)),
    B = [[c1 M^T M + L_JJ + beta 1 1^T, c1 I_K, L_Jpsi],
         [c1 I_K,                       0,      0     ],
         [L_psiJ,                       0,      L_psipsi]]

(beta = 0 for the uncentred T).  With zeta = (lambda - c0)/c1 and r_a = n_a/p, the
deterministic equivalent of H(lambda) = U^T (c1 Z^T Z + c0 I - lambda)^{-1} U is

    H(lambda) = (1/c1) blockdiag( diag_a(r_a g_a(zeta)),
                                  M^T (I_p + zeta Qbar(zeta)) M,
                                  sum_a r_a (2 tr(C_a^2)/p) g_a(zeta) )

(:mod:`rmt_deq.spectra.stieltjes` gives g and Qbar).  A spike is a lambda outside the bulk
(and off the atom) where det(I + B H(lambda)) = 0.  With B = P D P^T (D the nonzero eigenvalues),
this is det E(lambda) = 0 for E = D^{-1} + P^T H(lambda) P.  H is increasing in lambda (its
derivative U^T R^2 U is positive semi-definite), so each sorted eigenvalue e_k(lambda) of E
is continuous and increasing on every gap of the spectrum and crosses zero at most once
there: the number of spikes in a gap is the drop of the number of negative eigenvalues of
E across it (multiplicities included).  The gaps searched: right of the bulk, between the
atom and the bulk (n > p), the inner gaps of the bulk, and left of everything.  Each root is
found by Brent's method on its branch.

Eigenvectors.  At a spike lambda_s on branch k with E(lambda_s) v = 0, the residue of
(1/p) J^T (G - lambda)^{-1} J gives (1/p) (J^T u)(J^T u)^T = w w^T / e_k'(lambda_s) with
w = [H(lambda_s) P v]_J and e_k' = v^T P^T H'(lambda_s) P v > 0 (H' by a complex step), so the
alignment of the unit eigenvector u with the normalised class indicator j_a/sqrt(n_a) is

    <u, j_a/sqrt(n_a)>^2 = w_a^2 / (r_a e_k'(lambda_s))     (summing to <= 1 over a).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq

from rmt_deq._io import json_ready
from rmt_deq._results import readonly
from rmt_deq._validation import (as_real_array, check_options, check_positive_finite,
                                 check_positive_int)
from rmt_deq.errors import (ConvergenceError, InvalidParameterError, NonFiniteInputError,
                            ShapeMismatchError)
from rmt_deq.spectra.bulk import BulkSpectrum, as_low_rank_coefficients, kernel_bulk
from rmt_deq.spectra.model import GramModel
from rmt_deq.spectra.stieltjes import stieltjes

__all__ = [
    "Spikes",
    "spike_matrix",
    "isolated_eigenvalues",
    "observed_alignments",
]

#: relative offset from the bulk edges / atom (in units of the spectral scale)
_EDGE_OFFSET = 1e-8
#: eigenvalues of B below this fraction of its largest one are treated as zero
_RANK_RTOL = 1e-12
#: an infinite gap is bracketed by doubling a step that starts at this fraction of the
#: kernel's spectral scale, at most _MAX_DOUBLINGS times (2^80 scales: beyond any spike)
_FAR_STEP = 0.5
_MAX_DOUBLINGS = 80
#: complex step of the derivative H'(lambda) ~ Im H(lambda + i h)/h, relative to the
#: distance of the spike to the nearest edge of its gap (the error is O((h/dist)^2))
_COMPLEX_STEP = 1e-6
#: Brent's method: relative tolerance (a few ulps) and iteration cap
_BRENT_RTOL = 4 * np.finfo(float).eps
_BRENT_MAXITER = 200
#: grid size of the bulk computed when isolated_eigenvalues is not given one (only its
#: support and atom are used)
_BULK_NUM = 64
#: a given bulk belongs to the same kernel when c1 and c0 agree to this relative tolerance
_SAME_COEFFICIENTS = 1e-12
#: floor of the scales that divide
_TINY = 1e-300


@dataclass(frozen=True, eq=False)
class Spikes:
    """Predicted isolated eigenvalues of a surrogate ``c1 X^T X + V L V^T + c0 I``
    (docs/theory.md §7.5-7.6).

    Immutable: every array is read-only.

    Attributes
    ----------
    positions : ndarray, shape (S,)
        Spike positions (kernel units), increasing.
    alignments : ndarray, shape (S, K)
        <u_s, j_a/sqrt(n_a)>^2: squared cosine between the spike's unit eigenvector and the
        normalised indicator of class a.
    zeta : ndarray, shape (S,)
        (position - c0)/c1, in units of X^T X eigenvalues.
    branch : ndarray of int, shape (S,)
        Index k of the sorted eigenvalue of E(lambda) that vanishes.
    slope : ndarray, shape (S,)
        e_k'(lambda_s) > 0.
    gap : tuple of (lo, hi)
        For each spike, the gap of the limiting spectrum it lies in (may be infinite).
    gaps : tuple of (lo, hi)
        All gaps searched, with the number of spikes found in each (``counts``).
    counts : tuple of int
    B : ndarray, shape (2K+1, 2K+1)
        The low-rank matrix of the U B U^T form.
    rank : int
        Rank of B (number of branches).
    c1, c0 : float
    bulk : BulkSpectrum
        The bulk whose gaps were searched.
    """

    positions: np.ndarray
    alignments: np.ndarray
    zeta: np.ndarray
    branch: np.ndarray
    slope: np.ndarray
    gap: tuple
    gaps: tuple
    counts: tuple
    B: np.ndarray = field(repr=False)
    rank: int
    c1: float
    c0: float
    bulk: BulkSpectrum = field(repr=False)

    @property
    def count(self) -> int:
        """Number of spikes."""
        return int(self.positions.shape[0])

    def to_dict(self) -> dict:
        """JSON-ready dictionary: positions, alignments, zeta, branch, gaps (an unbounded
        side of a gap is null), counts, rank."""
        return json_ready({"positions": self.positions, "alignments": self.alignments,
                           "zeta": self.zeta, "branch": self.branch,
                           "gaps": [[a, b] for a, b in self.gaps],
                           "counts": self.counts, "rank": self.rank})


def _B_matrix(model: GramModel, c1: float, L: np.ndarray, beta: float) -> np.ndarray:
    K = model.K
    if L.shape != (K + 1, K + 1):
        raise ShapeMismatchError(
            f"the low-rank matrix must be (K+1) x (K+1) = ({K + 1}, {K + 1}) for K = {K} "
            f"classes; got {L.shape}")
    B = np.zeros((2 * K + 1, 2 * K + 1))
    B[:K, :K] = c1 * np.asarray(model.MtM) + L[:K, :K] + beta
    B[:K, K:2 * K] = c1 * np.eye(K)
    B[K:2 * K, :K] = c1 * np.eye(K)
    B[:K, 2 * K] = L[:K, K]
    B[2 * K, :K] = L[K, :K]
    B[2 * K, 2 * K] = L[K, K]
    return 0.5 * (B + B.T)


def _blocks(model: GramModel, zeta: np.ndarray, eta_min: float | None) -> np.ndarray:
    """blockdiag(diag(r g), M^T(I + zeta Qbar)M, sum_a r_a 2 tr(C_a^2)/p g_a) at zeta
    (complex, shape (N, 2K+1, 2K+1)); real zeta are taken at + i eta_min."""
    K = model.K
    sol = stieltjes(model, zeta, eta_min=eta_min, mean_quadratic=True)
    r = model.ratios
    N = sol.z.shape[0]
    H = np.zeros((N, 2 * K + 1, 2 * K + 1), dtype=complex)
    idx = np.arange(K)
    H[:, idx, idx] = r * sol.g
    H[:, K:2 * K, K:2 * K] = sol.mean_quadratic
    H[:, 2 * K, 2 * K] = sol.g @ (2.0 * r * np.asarray(model.trace_sq))
    return H


def spike_matrix(model: GramModel, coefficients: Any, lam: Any, *, beta: float = 0.0,
                 eta_min: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """H(lambda) and B of the spike equation det(I + B H(lambda)) = 0 (docs/theory.md §7.5).

    B is the (2K+1) x (2K+1) matrix with c1 X^T X + V L V^T + c0 I = c1 Z^T Z + c0 I +
    U B U^T exactly, U = [J/sqrt(p), Z^T M, psi]; H(lambda) is the deterministic equivalent
    of U^T (c1 Z^T Z + c0 I - lambda)^{-1} U (its cross blocks vanish), which
    :func:`isolated_eigenvalues` uses on the gaps of the bulk.

    Parameters
    ----------
    model : GramModel
        With the means (:func:`~rmt_deq.spectra.model.gram_model_from_mixture`).
    coefficients :
        Anything :func:`~rmt_deq.spectra.bulk.as_low_rank_coefficients` accepts.
    lam : array_like, shape (N,)
        Points (kernel units), outside the bulk for a real-valued H.
    beta : float
        Extra constant added to the J block of B (the alpha3 s2 block when the surrogate
        was built with the centred T°); 0 for the uncentred T.
    eta_min : float, optional
        Im z of real points (X^T X units), see :func:`~rmt_deq.spectra.stieltjes.stieltjes`.

    Returns
    -------
    H : ndarray of complex, shape (N, 2K+1, 2K+1)
        At real lambda outside the bulk, real up to the Im z = ``eta_min`` of the
        evaluation (its imaginary part is O(eta_min)).
    B : ndarray, shape (2K+1, 2K+1)
    """
    _check_model(model)
    c1, L, c0 = as_low_rank_coefficients(coefficients)
    if c1 == 0.0:
        raise InvalidParameterError("c1 = 0: the surrogate has no bulk and no spike equation")
    beta = _check_beta(beta)
    lam = np.atleast_1d(np.asarray(lam, dtype=complex))
    H = _blocks(model, (lam - c0) / c1, eta_min) / c1
    return H, _B_matrix(model, c1, L, beta)


def _check_model(model: Any) -> None:
    if not isinstance(model, GramModel):
        raise InvalidParameterError(f"model must be a GramModel, got {type(model).__name__}")


def _check_beta(beta: Any) -> float:
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"beta must be a real number, got {beta!r}") from None
    if not math.isfinite(beta):
        raise NonFiniteInputError("beta must be finite")
    return beta


class _Branches:
    """E(lambda) = D^{-1} + P^T H(lambda) P for real lambda in a gap (real part of H)."""

    def __init__(self, model: GramModel, c1: float, c0: float, B: np.ndarray,
                 eta_min: float | None) -> None:
        self.model, self.c1, self.c0, self.eta_min = model, c1, c0, eta_min
        d, P = np.linalg.eigh(B)
        keep = np.abs(d) > _RANK_RTOL * max(float(np.max(np.abs(d))), _TINY)
        self.d, self.P = d[keep], P[:, keep]
        self.Dinv = np.diag(1.0 / self.d)
        self.evaluations = 0

    @property
    def rank(self) -> int:
        return int(self.d.shape[0])

    def H(self, lam: np.ndarray) -> np.ndarray:
        self.evaluations += 1
        Hc = _blocks(self.model, (np.asarray(lam, float) - self.c0) / self.c1, self.eta_min)
        return Hc.real / self.c1

    def E(self, lam: np.ndarray) -> np.ndarray:
        H = self.H(lam)
        return self.Dinv[None] + np.einsum("ik,nij,jl->nkl", self.P, H, self.P)

    def eig(self, lam: float) -> np.ndarray:
        return np.linalg.eigvalsh(self.E(np.array([lam]))[0])

    def negatives(self, lam: np.ndarray) -> np.ndarray:
        E = self.E(np.atleast_1d(lam))
        return np.sum(np.linalg.eigvalsh(E) < 0, axis=1)

    @property
    def negatives_at_infinity(self) -> int:
        return int(np.sum(self.d < 0))


def _gaps(bulk: BulkSpectrum) -> list[tuple[float, float]]:
    obstacles = [tuple(iv) for iv in bulk.support]
    if bulk.atom > 0:
        obstacles.append((bulk.atom_at, bulk.atom_at))
    obstacles.sort()
    merged: list[list[float]] = []
    for a, b in obstacles:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    gaps = [(-math.inf, merged[0][0])]
    for (_, b), (a2, _) in zip(merged[:-1], merged[1:]):
        gaps.append((b, a2))
    gaps.append((merged[-1][1], math.inf))
    return gaps


def _far_end(br: _Branches, start: float, direction: float, step0: float) -> float:
    """A point beyond every spike of an infinite gap (negatives count = count at infinity)."""
    target = br.negatives_at_infinity
    step = step0
    for _ in range(_MAX_DOUBLINGS):
        lam = start + direction * step
        if int(br.negatives(np.array([lam]))[0]) == target:
            return lam
        step *= 2.0
    raise ConvergenceError(
        f"could not bracket the spikes of the infinite gap starting at {start:.6g}", [])


def _alignment(br: _Branches, lam: float, k: int, dist: float) -> tuple[np.ndarray, float]:
    """The alignments <u, j_a/sqrt(n_a)>^2 = w_a^2/(r_a e_k') of the spike at ``lam`` on
    branch k (docs/theory.md §7.6), and the slope e_k'(lam); ``dist`` is its distance to
    the nearest edge of its gap."""
    model = br.model
    K = model.K
    E = br.E(np.array([lam]))[0]
    ev, vec = np.linalg.eigh(E)
    v = vec[:, k]
    H = br.H(np.array([lam]))[0]
    # complex-step derivative of H in lambda: H'(lam) ~ Im H(lam + i h)/h
    h = _COMPLEX_STEP * dist
    zeta = (lam + 1j * h - br.c0) / br.c1
    Hc = _blocks(model, np.array([zeta]), br.eta_min)[0] / br.c1
    dH = Hc.imag / h
    Pv = br.P @ v
    slope = float(Pv @ dH @ Pv)
    w = (H @ Pv)[:K]
    r = model.ratios
    with np.errstate(divide="ignore", invalid="ignore"):
        align = np.where(r > 0, w ** 2 / (r * slope), 0.0)
    return align, slope


def isolated_eigenvalues(model: GramModel, coefficients: Any, *, bulk: BulkSpectrum | None = None,
                         beta: float = 0.0, eta_min: float | None = None,
                         xtol: float = 1e-12, **options: Any) -> Spikes:
    """Spikes of ``c1 X^T X + V L V^T + c0 I`` and their eigenvector alignments
    (docs/theory.md §7.5-7.6).

    Parameters
    ----------
    model : GramModel
        With the class means (:func:`~rmt_deq.spectra.model.gram_model_from_mixture`, or
        :func:`~rmt_deq.spectra.model.gram_model` with ``means=``); without means M = 0.
    coefficients :
        The coefficients of the CK surrogate (G form, docs/theory.md §4) or of the NTK
        surrogate (docs/theory.md §5), or anything
        :func:`~rmt_deq.spectra.bulk.as_low_rank_coefficients` accepts (c1, L, c0).
    bulk : BulkSpectrum, optional
        The bulk of the same kernel (computed if not given, with
        :func:`~rmt_deq.spectra.bulk.kernel_bulk`).
    beta : float
        See :func:`spike_matrix`.
    eta_min : float, optional
        Im z of the real-axis evaluations (X^T X units).
    xtol : float
        Root tolerance relative to the spectral scale (> 0).
    **options
        ``scan`` is passed to :func:`~rmt_deq.spectra.bulk.kernel_bulk` when ``bulk`` is None;
        any other keyword is rejected.

    Returns
    -------
    Spikes

    Raises
    ------
    InvalidParameterError
        c1 = 0, or ``bulk`` for other coefficients.
    ConvergenceError
        The equations of docs/theory.md §7.2 or the bracketing failed.
    """
    check_options(options, ("scan",), "isolated_eigenvalues")
    _check_model(model)
    c1, L, c0 = as_low_rank_coefficients(coefficients)
    if c1 == 0.0:
        raise InvalidParameterError(
            "c1 = 0: the surrogate c0 I + V L V^T has no bulk; its spikes are those of a "
            "finite-rank matrix (not handled here)")
    beta = _check_beta(beta)
    xtol = check_positive_finite(xtol, "xtol")
    if bulk is None:
        bulk = kernel_bulk(model, c1=c1, c0=c0, num=_BULK_NUM, **options)
    elif not isinstance(bulk, BulkSpectrum) or abs(bulk.c1 - c1) > _SAME_COEFFICIENTS * abs(c1) \
            or abs(bulk.c0 - c0) > _SAME_COEFFICIENTS * max(1.0, abs(c0)) \
            or bulk.model is not model:
        raise InvalidParameterError(
            "bulk must be the BulkSpectrum of this model with the same c1 and c0")
    B = _B_matrix(model, c1, L, beta)
    br = _Branches(model, c1, c0, B, eta_min)
    scale_l = abs(c1) * model.scale
    eps = _EDGE_OFFSET * scale_l
    tol = float(xtol) * scale_l
    gaps = _gaps(bulk)
    out_pos, out_k, out_gap = [], [], []
    counts = []
    for lo, hi in gaps:
        a = lo + eps if math.isfinite(lo) else None
        b = hi - eps if math.isfinite(hi) else None
        if a is not None and b is not None and b <= a:
            counts.append(0)
            continue
        if a is None:
            a = _far_end(br, b, -1.0, _FAR_STEP * scale_l)
        if b is None:
            b = _far_end(br, a, +1.0, _FAR_STEP * scale_l)
        na, nb = br.negatives(np.array([a, b]))
        found = 0
        for k in range(int(nb), int(na)):
            f = lambda lam, k=k: float(br.eig(lam)[k])  # noqa: E731
            fa, fb = f(a), f(b)
            if not (fa < 0 <= fb):
                raise ConvergenceError(
                    f"branch {k} does not change sign on the gap ({a:.6g}, {b:.6g}) "
                    f"(e = {fa:.3g}, {fb:.3g}): the monotonicity of E was lost", [])
            root = brentq(f, a, b, xtol=tol, rtol=_BRENT_RTOL, maxiter=_BRENT_MAXITER)
            out_pos.append(root)
            out_k.append(k)
            out_gap.append((lo, hi))
            found += 1
        counts.append(found)
    order = np.argsort(out_pos) if out_pos else np.array([], dtype=int)
    pos = np.asarray(out_pos, dtype=float)[order]
    ks = np.asarray(out_k, dtype=int)[order]
    gap = tuple(out_gap[i] for i in order)
    K = model.K
    align = np.zeros((pos.size, K))
    slope = np.zeros(pos.size)
    for i, (lam, k, (lo, hi)) in enumerate(zip(pos, ks, gap)):
        dist = min(abs(lam - lo), abs(hi - lam), scale_l)
        align[i], slope[i] = _alignment(br, float(lam), int(k), dist)
    return Spikes(positions=readonly(pos), alignments=readonly(align),
                  zeta=readonly((pos - c0) / c1), branch=readonly(ks), slope=readonly(slope),
                  gap=gap, gaps=tuple(gaps), counts=tuple(counts), B=readonly(B),
                  rank=br.rank, c1=c1, c0=c0, bulk=bulk)


def observed_alignments(vectors: Any, labels: Any, K: int | None = None) -> np.ndarray:
    """<u, j_a/sqrt(n_a)>^2 for observed eigenvectors (columns of ``vectors``), the
    quantity :attr:`Spikes.alignments` predicts (docs/theory.md §7.6).

    Parameters
    ----------
    vectors : array_like, shape (n, S)
        Unit eigenvectors as columns.
    labels : array_like of int, shape (n,)
        Class of each sample, 0..K-1.
    K : int, optional
        Number of classes (default max label + 1).

    Returns
    -------
    ndarray, shape (S, K)

    Raises
    ------
    ShapeMismatchError
        ``vectors`` not 1-D/2-D, or labels not one per row of ``vectors``.
    InvalidParameterError
        Labels that are not integers in [0, K).
    """
    U = as_real_array(vectors, "vectors")
    if U.ndim == 1:
        U = U[:, None]
    if U.ndim != 2 or U.shape[0] == 0:
        raise ShapeMismatchError(
            f"vectors must be an n x S array of eigenvectors (columns); got shape {U.shape}")
    lab = as_real_array(labels, "labels")
    if lab.shape != (U.shape[0],):
        raise ShapeMismatchError(
            f"labels must have one entry per row of vectors ({U.shape[0]}); got {lab.shape}")
    if not np.all(lab == np.round(lab)) or lab.min() < 0:
        raise InvalidParameterError("labels must be the integer classes 0..K-1")
    lab = lab.astype(np.int64)
    K = int(lab.max()) + 1 if K is None else check_positive_int(K, "K")
    if lab.max() >= K:
        raise InvalidParameterError(
            f"labels go up to {int(lab.max())} but K = {K}: labels must be in 0..K-1")
    J = np.zeros((lab.size, K))
    J[np.arange(lab.size), lab] = 1.0
    sizes = J.sum(axis=0)
    proj = (J.T @ U) ** 2 / np.where(sizes > 0, sizes, 1.0)[:, None]
    return proj.T
