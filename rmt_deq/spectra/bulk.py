"""Limiting eigenvalue spectra of mixture Gram matrices and of kernel surrogates (theory.md §7).

No sampling: everything here is computed from the class covariances and the class sizes.

Data model (theory.md §1): X is p x n (columns are samples), the columns of class a are
(mu_a + omega_i)/sqrt(p) with omega_i ~ N(0, C_a), n_a samples, r_a = n_a/p.  The bulk of
X^T X (the means add only a rank-K perturbation) is described by the deterministic
equivalent of the resolvent (X X^T - z I_p)^{-1}::

    Qbar(z) = (-z I_p + sum_a r_a C_a / (1 + delta_a(z)))^{-1},   delta_a = tr(C_a Qbar)/p,
    m_{XX^T}(z) = tr Qbar(z)/p,     m_{X^TX}(z) = (p/n) m_{XX^T}(z) - (1 - p/n)/z,

or, equivalently, with g_b(z) = -1/(z (1 + delta_b(z))) (the class-b diagonal entry of the
co-resolvent (X^T X - z)^{-1}),

    Qbar = -(1/z) (I_p + sum_b r_b g_b C_b)^{-1},     m_{X^TX} = sum_a (n_a/n) g_a.

The K complex unknowns are found by Newton's method at each point of a grid (vectorised over
the grid), lowering Im z geometrically from the spectral scale to ``eta_min`` (default
1e-10 times the scale) with warm starts; the unknown is delta when n >= p and g when n < p
(each stays finite at z = 0).  The density of X^T X is Im m(x + i0)/pi; when n > p there is
in addition an atom of mass 1 - p/n at 0.

Cost.  With diagonal covariances (or commuting ones, which are jointly diagonalised once)
the equations need sums over the U <= p *distinct* coordinates (tuples (C_1)_jj, ...,
(C_K)_jj), independent of n; a structured covariance (a few distinct variances) makes them
O(K^2) whatever p.  Summed term by term they cost O(K^2 U) per grid point and Newton step.
From U = 4096 on (K <= 3) they are by default evaluated by Taylor expansions over 16 boxes
of coordinates (:class:`_BoxExpansion`) at a cost independent of U, every sum within 1e-14
of the sum of the absolute values of its terms (a proven truncation bound; pairs of points
and boxes where it cannot be met are summed directly): a 1000-point density at p = 1e5
distinct variances takes about 0.25 s (K = 2) or 0.6-0.8 s (K = 3) instead of about 60 s.
``max_atoms`` optionally merges coordinates with nearly equal variances into at most that
many groups (an approximation, second order in the merged spread, exact traces tr(C_a)/p
kept).  Non-commuting full covariances cost O(K p^3) per evaluation (a dense complex solve
per grid point and iteration): correct but slow.

Kernels.  A surrogate ``c1 X^T X + V A V^T + c0 I`` (the CK of theory.md §4, the NTK of §5,
or anything of that form) has the bulk of ``c1 X^T X + c0``: the low-rank part V A V^T
does not move it (it creates isolated eigenvalues, see :mod:`rmt_deq.spectra.spikes`).
:func:`kernel_bulk` maps the density, the support and the atom accordingly.

About the atom (n > p).  The surrogate has an atom of mass 1 - p/n at c0.  The *exact*
infinite-width kernel spreads these n - p eigenvalues over a width O(p^{-1/2}) around c0
(the fluctuating part of the higher Hermite terms, absent from the surrogate), so a
Kolmogorov-Smirnov distance to the exact spectrum is large at the atom even though the
1-Wasserstein distance is small.  The package reports the atom as its mass and position
(``atom``, ``atom_at``) and the absolutely continuous part as the density; plots may draw
the atom Gaussian-smoothed with a width chosen by the caller (see
:func:`rmt_deq.plotting.plot_spectrum`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from rmt_deq._validation import check_memory, memory_budget
from rmt_deq.errors import (ConvergenceError, InvalidParameterError, NonFiniteInputError,
                     ShapeMismatchError)

__all__ = [
    "GramModel",
    "StieltjesSolution",
    "BulkSpectrum",
    "gram_model",
    "gram_model_from_mixture",
    "stieltjes",
    "gram_density",
    "gram_support",
    "kernel_bulk",
    "as_low_rank_coefficients",
    "spectral_distances",
    "ETA_MIN_REL",
]

#: default smallest imaginary part, relative to the spectral scale of the model
ETA_MIN_REL = 1e-10
#: relative Newton tolerance on the unknowns
_NEWTON_TOL = 1e-13
#: relative Newton tolerance on the intermediate levels of the Im z continuation
_LEVEL_TOL = 1e-7
#: largest number of complex entries (grid points x distinct coordinates) held at once
_CHUNK_ENTRIES = 2_000_000
#: relative tolerance of the joint-diagonalisation test for full covariances
_COMMUTE_RTOL = 1e-9
#: "auto" summation: the expansion is used from this many distinct coordinates on
_EXPANSION_MIN_U = 4096
#: largest Taylor order of the expansion, by K (K > 3: direct summation only)
_EXPANSION_ORDER = {1: 32, 2: 24, 3: 20}
#: number of coordinate boxes of the expansion
_EXPANSION_BOXES = 16
#: bound on the truncation error of every sum, relative to the sum of the absolute values
#: of its terms (a few times the round-off of the direct sum over 10^5 terms)
_EXPANSION_TOL = 1e-14


def _check_points(N: int, K: int, max_memory: Any, what: str, fix: str) -> None:
    """Refuse N evaluation points whose per-point arrays exceed the memory budget.

    Per point the solve keeps about 8 + 8K complex numbers (delta, g, the Stieltjes
    transforms, the moments) and K^2 more for the means' quadratic form, twice over
    (conjugated copies), plus a few reals (grid, density); the per-chunk work arrays are
    bounded separately (``_CHUNK_ENTRIES``).
    """
    per_point = 2 * 16 * (10 + 8 * K + K * K) + 4 * 8
    check_memory(float(per_point) * N, memory_budget(max_memory),
                 f"{what} ({N:,} points)", fix)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _finite(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ShapeMismatchError(f"{name} must be a numeric array") from None
    if not np.all(np.isfinite(arr)):
        raise NonFiniteInputError(f"{name} has {int((~np.isfinite(arr)).sum())} NaN/inf "
                                  f"entries")
    return arr


# =======================================================================================
# fast coordinate sums: Taylor expansions over boxes of coordinates, with a bound
# =======================================================================================
def _q_thresholds(order: int, tol: float) -> np.ndarray:
    """qmax[k], k = 0..order: the largest q in [0, 1) with e1(q, k), e2(q, k) <= tol, where

    e1(q, k) = q^(k+1) (1 + q)/(1 - q)  bounds |1/D - T_k[1/D]| |D|,
    e2(q, k) = q^(k+1) ((k + 2) - (k + 1) q) (1 + q)^2/(1 - q)^2  bounds
               |1/D^2 - T_k[1/D^2]| |D|^2,

    T_k being the Taylor polynomial of degree k in eps = D/D0 - 1, |eps| <= q (see
    :class:`_BoxExpansion`).  Both bounds increase with q; bisection to 1e-15."""
    out = np.empty(order + 1)
    for k in range(order + 1):
        lo, hi = 0.0, 1.0
        for _ in range(60):
            q = 0.5 * (lo + hi)
            e1 = q ** (k + 1) * (1.0 + q) / (1.0 - q)
            e2 = q ** (k + 1) * ((k + 2) - (k + 1) * q) * (1.0 + q) ** 2 / (1.0 - q) ** 2
            if max(e1, e2) <= tol:
                lo = q
            else:
                hi = q
        out[k] = lo
    return out


class _BoxExpansion:
    """The coordinate sums of the diagonal backend, with a bounded truncation error.

    With D_u = s + sum_a c_a t_{a,u} (t_u = (C_1)_uu, ..., (C_K)_uu, weight w_u), the
    equations need, for each point (s, c),

        S_h = sum_u w_u h(t_u) / D_u           (h = 1 and h = t_a),
        S_ab = sum_u w_u t_{a,u} t_{b,u} / D_u^2,

    O(U) work each.  The coordinates are split once into boxes (k-d splits at the middle of
    the widest relative extent); in a box with centre t0 and half-extents rho, with
    D0 = s + c.t0 and y = t - t0,

        1/D = sum_k (-1)^k (c.y)^k / D0^(k+1),   (c.y)^k = sum_{|alpha|=k} k!/alpha! c^alpha y^alpha,

    so that sum_{u in box} w h(t) (c.y)^k only needs the moments sum w h(t) y^alpha,
    computed once.  |c.y|/|D0| <= q = sum_a |c_a| rho_a / |D0| for every coordinate of the
    box; truncating after degree k changes each term w h/D (w h/D^2) by at most
    e1(q, k) (e2(q, k)) times its absolute value (:func:`_q_thresholds`).  The degree k is
    the smallest with both bounds below ``tol``; a (point, box) pair with q too large for
    the largest order (in particular D0 near 0) is summed directly over the box.  Hence
    every sum differs from the direct sum by at most ``tol`` times the sum of the absolute
    values of its terms, plus round-off.  The cost per point is O(B * (number of moments))
    instead of O(U).
    """

    def __init__(self, weights: np.ndarray, variances: np.ndarray, order: int,
                 max_boxes: int, tol: float):
        K, U = variances.shape
        self.K, self.order, self.tol = K, int(order), float(tol)
        T = variances.T
        boxes = [np.arange(U)]
        # split the box of largest relative extent (rho_a / t0_a, scale-free) at its middle
        while len(boxes) < max_boxes:
            best, ib, ia = 0.0, -1, -1
            for i, idx in enumerate(boxes):
                lo, hi = T[idx].min(axis=0), T[idx].max(axis=0)
                rel = (hi - lo) / np.maximum(hi + lo, 1e-300)
                a = int(np.argmax(rel))
                if rel[a] > best:
                    best, ib, ia = float(rel[a]), i, a
            if ib < 0:
                break
            idx = boxes.pop(ib)
            col = T[idx, ia]
            mid = 0.5 * (col.min() + col.max())
            left = col <= mid
            boxes += [idx[left], idx[~left]]
        self.members = boxes
        B = len(boxes)
        # multi-indices sorted by degree; deg_start[k]: first index of degree k
        alphas = [np.zeros(K, dtype=np.int64)]
        deg_start = [0, 1]
        prev = [tuple([0] * K)]
        for k in range(1, self.order + 1):
            cur = sorted({tuple(a[:j] + (a[j] + 1,) + a[j + 1:]) for a in prev
                          for j in range(K)}, reverse=True)
            alphas += [np.array(a, dtype=np.int64) for a in cur]
            deg_start.append(deg_start[-1] + len(cur))
            prev = cur
        self.alphas = np.array(alphas)                                  # (nA, K)
        self.deg_start = np.array(deg_start)
        nA = self.alphas.shape[0]
        # monomials by recursion on the degree: y^alpha = y^(alpha - e_j) y_j, j the first
        # non-zero index of alpha
        lookup = {tuple(a): i for i, a in enumerate(self.alphas.tolist())}
        self.rec_dir = np.zeros(nA, dtype=np.int64)
        self.rec_parent = np.zeros(nA, dtype=np.int64)
        for i, a in enumerate(self.alphas.tolist()[1:], start=1):
            j = next(d for d in range(K) if a[d] > 0)
            b = list(a)
            b[j] -= 1
            self.rec_dir[i], self.rec_parent[i] = j, lookup[tuple(b)]
        deg = self.alphas.sum(axis=1)
        lg = np.array([math.lgamma(d + 1.0) for d in range(self.order + 1)])
        mult = np.exp(lg[deg] - lg[self.alphas].sum(axis=1))           # k!/alpha!
        self.pairs = [(a, b) for a in range(K) for b in range(a, K)]
        nh = 1 + K + len(self.pairs)
        self.centers = np.empty((B, K))
        self.radii = np.empty((B, K))
        mom = np.empty((B, nh, nA))
        for i, idx in enumerate(boxes):
            Tb = T[idx]
            c0 = 0.5 * (Tb.min(axis=0) + Tb.max(axis=0))
            Y = Tb - c0
            self.centers[i] = c0
            self.radii[i] = np.abs(Y).max(axis=0)
            mon = self._monomials(Y, nA)
            wb = weights[idx]
            H = np.empty((nh, idx.size))
            H[0] = wb
            H[1:1 + K] = wb * Tb.T
            for j, (a, b) in enumerate(self.pairs):
                H[1 + K + j] = wb * Tb[:, a] * Tb[:, b]
            mom[i] = (H @ mon) * mult
        # per degree k: (n_k, B * nh) blocks for the matrix products
        self.blocks = [np.ascontiguousarray(
            mom[:, :, deg_start[k]:deg_start[k + 1]].transpose(2, 0, 1).reshape(-1, B * nh))
            for k in range(self.order + 1)]
        self.nh = nh
        self.qmax = _q_thresholds(self.order, self.tol)
        self.weights = weights
        self.variances = variances

    def _monomials(self, Y: np.ndarray, nA: int) -> np.ndarray:
        """(M, nA) array of Y^alpha for the first nA multi-indices (Y: (M, K))."""
        mon = np.empty((Y.shape[0], nA), dtype=Y.dtype)
        mon[:, 0] = 1.0
        for k in range(1, len(self.deg_start) - 1):
            s0, s1 = self.deg_start[k], min(self.deg_start[k + 1], nA)
            if s0 >= nA:
                break
            mon[:, s0:s1] = mon[:, self.rec_parent[s0:s1]] * Y[:, self.rec_dir[s0:s1]]
        return mon

    @property
    def n_boxes(self) -> int:
        return len(self.members)

    def entries_per_point(self) -> int:
        """Complex entries held per point during :meth:`sums` (chunk sizing)."""
        return int((self.order + 1) * self.n_boxes * self.nh + self.alphas.shape[0])

    def sums(self, coeff: np.ndarray, shift: np.ndarray, *, second: bool = True
             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """first (N, K) = S_{t_a}, sec (N, K, K) = S_ab (or None), trace (N,) = S_1."""
        K, B = self.K, self.n_boxes
        N = coeff.shape[0]
        nh = self.nh if second else 1 + K
        first = np.zeros((N, K), dtype=complex)
        trace = np.zeros(N, dtype=complex)
        sec = np.zeros((N, K, K), dtype=complex) if second else None
        D0 = shift[:, None] + coeff @ self.centers.T                         # (N, B)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = (np.abs(coeff) @ self.radii.T) / np.abs(D0)
        q = np.where(np.isfinite(q), q, np.inf)
        need = np.searchsorted(self.qmax, q.ravel(), side="left").reshape(q.shape)
        far = need <= self.order
        if np.any(far):
            P = int(need[far].max())
            nA = int(self.deg_start[P + 1])
            # c^alpha for |alpha| <= P, as (2N, nA) real (real parts, then imaginary parts)
            mon = self._monomials(coeff, nA)                                 # c^alpha
            # rows 2n, 2n+1: real and imaginary parts of c^alpha at point n
            mon2 = np.stack([mon.real, mon.imag], axis=1)                    # (N, 2, nA)
            # AA[n, k, part, b, h]: part (real, imaginary) of sum_{|alpha|=k} c^alpha M[b,h,alpha]
            AA = np.empty((N, P + 1, 2, B, nh))
            for k in range(P + 1):
                s0, s1 = self.deg_start[k], self.deg_start[k + 1]
                blk = self.blocks[k].reshape(s1 - s0, B, self.nh)[:, :, :nh].reshape(s1 - s0, -1)
                r = mon2[:, :, s0:s1].reshape(2 * N, s1 - s0) @ blk            # (2N, B nh)
                AA[:, k] = r.reshape(N, 2, B, nh)
            inv = np.where(far, 1.0 / np.where(far, D0, 1.0), 0.0)        # (N, B)
            gam = np.empty((N, P + 1, B), dtype=complex)     # (-1)^k / D0^(k+1)
            gam[:, 0] = inv
            if P > 0:
                gam[:, 1:] = inv[:, None] * np.cumprod(
                    np.broadcast_to(-inv[:, None], (N, P, B)), axis=1)
            L = (P + 1) * B
            rows = 4 if second else 2
            G = np.empty((N, rows, P + 1, 2, B))
            G[:, 0, :, 0], G[:, 0, :, 1] = gam.real, -gam.imag    # real part of gam A
            G[:, 1, :, 0], G[:, 1, :, 1] = gam.imag, gam.real     # imaginary part
            if second:
                # 1/D^2 = sum_k (k+1) (-1)^k (c.y)^k / D0^(k+2)
                g2 = gam * inv[:, None, :] * (np.arange(P + 1) + 1.0)[None, :, None]
                G[:, 2, :, 0], G[:, 2, :, 1] = g2.real, -g2.imag
                G[:, 3, :, 0], G[:, 3, :, 1] = g2.imag, g2.real
            Sx = np.matmul(G.reshape(N, rows, 2 * L), AA.reshape(N, 2 * L, nh))
            S = Sx[:, 0] + 1j * Sx[:, 1]                                      # (N, nh)
            trace += S[:, 0]
            first += S[:, 1:1 + K]
            if second:
                S2 = Sx[:, 2, 1 + K:] + 1j * Sx[:, 3, 1 + K:]
                for j, (a, b) in enumerate(self.pairs):
                    sec[:, a, b] = S2[:, j]
                    sec[:, b, a] = S2[:, j]
        if not np.all(far):
            for b in np.flatnonzero(~np.all(far, axis=0)):
                rows = np.flatnonzero(~far[:, b])
                idx = self.members[b]
                V = self.variances[:, idx]
                w = self.weights[idx]
                step = max(1, _CHUNK_ENTRIES // max(1, idx.size))
                for i0 in range(0, rows.size, step):
                    rr = rows[i0:i0 + step]
                    Y = 1.0 / (shift[rr, None] + coeff[rr] @ V)
                    Yw = Y * w
                    first[rr] += Yw @ V.T
                    trace[rr] += Yw.sum(axis=1)
                    if second:
                        CC = (V[:, None, :] * V[None, :, :]).reshape(K * K, -1)
                        sec[rr] += ((Y * Yw) @ CC.T).reshape(-1, K, K)
        return first, sec, trace


# =======================================================================================
# the model: covariances reduced to what the equations need
# =======================================================================================
@dataclass(frozen=True, eq=False)
class GramModel:
    """The data of the §7 equations for one mixture at given class sizes.

    Build with :func:`gram_model` or :func:`gram_model_from_mixture`.

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
    expansion : _BoxExpansion or None
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
    expansion: Any = field(default=None, repr=False)

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
    def _moments(self, coeff: np.ndarray, shift: np.ndarray, *, second: bool = True,
                 mean: bool = False) -> tuple:
        """For Y = (shift I + sum_b coeff_b C_b)^{-1} (one matrix per row):

        first (N, K) = tr(C_a Y)/p, second (N, K, K) = tr(C_a Y C_b Y)/p,
        trace (N,) = tr(Y)/p (over the kept coordinates), meanq (N, K, K) = M^T Y M
        (bias-corrected).  ``second``/``mean`` False: returned as None.
        """
        if self.backend == "diagonal" and self.expansion is not None:
            first, sec, trace = self.expansion.sums(coeff, shift, second=second)
            mq = None
            if mean:
                if self.mean_blocks is None:
                    mq = np.zeros((coeff.shape[0], self.K, self.K), dtype=complex)
                else:   # direct (only the final evaluation of the spike equation needs it)
                    mq = np.zeros((coeff.shape[0], self.K, self.K), dtype=complex)
                    step = max(1, _CHUNK_ENTRIES // max(1, self.n_distinct))
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
            N, K, p = coeff.shape[0], self.K, self.p
            first = np.empty((N, K), dtype=complex)
            trace = np.empty(N, dtype=complex)
            sec = np.empty((N, K, K), dtype=complex) if second else None
            mq = np.zeros((N, K, K), dtype=complex) if mean else None
            eye = np.eye(p)
            for i in range(N):
                Mi = shift[i] * eye + np.tensordot(coeff[i], self.covs, axes=1)
                Y = np.linalg.inv(Mi)
                Y = 0.5 * (Y + Y.T)
                trace[i] = np.trace(Y) / p
                YC = [Y @ self.covs[a] for a in range(K)]
                for a in range(K):
                    first[i, a] = np.trace(YC[a]) / p
                if second:
                    for a in range(K):
                        for b in range(a, K):
                            v = np.sum(YC[a] * YC[b].T) / p
                            sec[i, a, b] = sec[i, b, a] = v
                if mean and self.means is not None:
                    mq[i] = self.means @ Y @ self.means.T
        if mean and np.any(self.mean_bias):
            # plug-in means: E[mu^ Y mu^] = mu Y mu + tr(C_a Y)/n_a on the diagonal
            idx = np.arange(self.K)
            mq[:, idx, idx] -= first * self.mean_bias
        return first, sec, trace, mq

    def as_dict(self) -> dict:
        """JSON-ready summary (not the covariances)."""
        return {"p": self.p, "n": self.n, "sizes": self.sizes.tolist(), "K": self.K,
                "backend": self.backend, "basis": self.basis,
                "n_distinct": self.n_distinct, "p_eff": self.p_eff,
                "scale": self.scale, "compressed": self.compressed,
                "unknown": self.unknown, "traces": self.traces.tolist(),
                "summation": "direct" if self.expansion is None else "expansion",
                "trace_sq": self.trace_sq.tolist()}


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
    theta = 1.0 + np.modf(np.arange(1, K + 1) * 0.6180339887498949)[0]
    S = np.tensordot(theta, covs, axes=1)
    _, Q = np.linalg.eigh(0.5 * (S + S.T))
    for a in range(K):
        R = Q.T @ covs[a] @ Q
        off = R - np.diag(np.diag(R))
        scale = max(float(np.max(np.abs(covs[a]))), 1e-300)
        if float(np.max(np.abs(off))) > _COMMUTE_RTOL * scale * max(1.0, math.sqrt(p)):
            return None
    return Q


def _compress(var: np.ndarray, mu: np.ndarray | None, max_atoms: int | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """Group coordinates: exact duplicates always, near values when more than max_atoms.

    var (K, p_kept) variances, mu (K, p_kept) means or None.  Returns weights (U,) as counts,
    variances (K, U) (group means: traces exact), mean blocks (U, K, K) or None, compressed.
    """
    K, pk = var.shape
    scale = max(float(np.max(np.abs(var))), 1e-300)
    key = np.round(var.T / scale, 13)
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


def gram_model(covs: Any, sizes: Any, *, means: Any = None, mean_bias: Any = None,
               trace_sq: Any = None, max_atoms: int | None = None,
               joint_diagonalise: bool = True, summation: str = "auto") -> GramModel:
    """Build the §7 model from class covariances and class sizes.

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
        "direct": term by term, O(U) per point.  "expansion": Taylor expansions over 16
        boxes of coordinates (see :class:`_BoxExpansion`), O(number of moments) per point,
        with every sum within 1e-14 of the sum of the absolute values of its terms of the
        direct sum (a rigorous truncation bound; a box where the bound cannot be met at a
        point is summed directly there).  "auto" (default): "expansion" when
        U >= 4096 and K <= 3, else "direct".  Ignored by the dense backend.

    Returns
    -------
    GramModel

    Raises
    ------
    ShapeMismatchError, NonFiniteInputError, InvalidParameterError
        Bad shapes, NaN/inf, negative variances, all-zero covariances, bad sizes.
    """
    C = _finite(covs, "covs")
    if C.ndim not in (2, 3) or 0 in C.shape or (C.ndim == 3 and C.shape[1] != C.shape[2]):
        raise ShapeMismatchError(
            f"covs must have shape (K, p) (diagonals) or (K, p, p); got {C.shape}")
    K, p = C.shape[0], C.shape[1]
    s = _check_sizes(sizes, K)
    mu = None
    if means is not None:
        mu = _finite(means, "means")
        if mu.shape != (K, p):
            raise ShapeMismatchError(f"means must have shape (K, p) = ({K}, {p}); got {mu.shape}")
    bias = np.zeros(K) if mean_bias is None else _finite(mean_bias, "mean_bias")
    if bias.shape != (K,):
        raise ShapeMismatchError(f"mean_bias must have shape ({K},); got {bias.shape}")
    if max_atoms is not None and (isinstance(max_atoms, bool) or not isinstance(
            max_atoms, (int, np.integer)) or max_atoms < 2):
        raise InvalidParameterError(f"max_atoms must be an integer >= 2 or None, got {max_atoms!r}")
    if not isinstance(joint_diagonalise, (bool, np.bool_)):
        raise InvalidParameterError("joint_diagonalise must be True or False")
    if summation not in ("auto", "direct", "expansion"):
        raise InvalidParameterError(
            f"summation must be 'auto', 'direct' or 'expansion', got {summation!r}")
    basis = "diagonal"
    var = None
    Q = None
    if C.ndim == 3:
        C = 0.5 * (C + np.transpose(C, (0, 2, 1)))
        for a in range(K):
            lam_min = float(np.linalg.eigvalsh(C[a])[0])
            if lam_min < -1e-10 * max(float(np.max(np.abs(C[a]))), 1e-300) * p:
                raise InvalidParameterError(
                    f"covs[{a}] is not positive semi-definite (smallest eigenvalue "
                    f"{lam_min:.3g})")
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
        p_eff = int((ev > 1e-12 * max(float(ev[-1]), 1e-300) * p).sum())
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
        tsq = _finite(trace_sq, "trace_sq")
        if tsq.shape != (K,):
            raise ShapeMismatchError(f"trace_sq must have shape ({K},); got {tsq.shape}")
    if not vmax > 0:
        raise InvalidParameterError("the covariances are all zero: there is no bulk")
    n = int(s.sum())
    scale = 1.25 * vmax * (1.0 + math.sqrt(n / p)) ** 2
    expansion = None
    if backend == "diagonal" and summation != "direct":
        U = weights.shape[0]
        if summation == "expansion" or (U >= _EXPANSION_MIN_U and K in _EXPANSION_ORDER):
            order = _EXPANSION_ORDER.get(K)
            if order is None:
                raise InvalidParameterError(
                    f"summation='expansion' is implemented for K <= "
                    f"{max(_EXPANSION_ORDER)} classes; got K = {K}")
            expansion = _BoxExpansion(weights, variances, order, _EXPANSION_BOXES,
                                      _EXPANSION_TOL)
    return GramModel(
        p=int(p), sizes=_readonly(s), backend=backend, weights=_readonly(weights),
        variances=_readonly(variances), covs=None if covs_dense is None else _readonly(covs_dense),
        mean_blocks=None if blocks is None else _readonly(blocks),
        means=None if means_dense is None else _readonly(means_dense),
        MtM=_readonly(0.5 * (MtM + MtM.T)), mean_bias=_readonly(bias),
        trace_sq=_readonly(tsq), traces=_readonly(traces), p_eff=p_eff, scale=float(scale),
        compressed=compressed, basis=basis, expansion=expansion)


def gram_model_from_mixture(mixture: Any, n_or_sizes: Any, *, max_atoms: int | None = None,
                            with_means: bool = True, summation: str = "auto") -> GramModel:
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
    from rmt_deq.data.mixture import GaussianMixture, MixtureSample

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


# =======================================================================================
# the solver
# =======================================================================================
@dataclass(frozen=True, eq=False)
class StieltjesSolution:
    """Solution of the §7 equations at a set of points z.

    Attributes
    ----------
    z : ndarray of complex, shape (N,)
        Points actually solved at (real inputs get Im z = eta_min).
    delta : ndarray of complex, shape (N, K)
        delta_a(z) = tr(C_a Qbar)/p.
    g : ndarray of complex, shape (N, K)
        g_a(z) = -1/(z (1 + delta_a)), the class-a diagonal of the co-resolvent.
    m_gram : ndarray of complex, shape (N,)
        m_{X^TX}(z) from the trace: (p/n) tr Qbar/p - (1 - p/n)/z.
    m_gram_from_g : ndarray of complex, shape (N,)
        sum_a (n_a/n) g_a(z); equal to ``m_gram`` at a solution (a check).
    m_cov : ndarray of complex, shape (N,)
        m_{XX^T}(z) = tr Qbar/p.
    m_cov_kept : ndarray of complex, shape (N,)
        tr Qbar/p over the coordinates with nonzero variance (no atom of zero coordinates).
    mean_quadratic : ndarray of complex, shape (N, K, K) or None
        M^T (I_p + z Qbar(z)) M (bias-corrected), when requested.
    residual : ndarray, shape (N,)
        max_a |F_a| of the final Newton iterate (scaled equations).
    unknown : str
        "delta" or "g".
    evaluations : int
        Newton evaluations (counting all points of a batch as one).
    """

    z: np.ndarray
    delta: np.ndarray
    g: np.ndarray
    m_gram: np.ndarray
    m_gram_from_g: np.ndarray
    m_cov: np.ndarray
    m_cov_kept: np.ndarray
    mean_quadratic: np.ndarray | None
    residual: np.ndarray
    unknown: str
    evaluations: int


def _residual_jacobian(model: GramModel, u: np.ndarray, z: np.ndarray, form: str
                       ) -> tuple[np.ndarray, np.ndarray, tuple]:
    r = model.ratios
    K = model.K
    eye = np.eye(K)
    if form == "delta":
        w = 1.0 / (1.0 + u)
        first, sec, trace, _ = model._moments(r * w, -z)
        F = u - first
        J = eye - sec * (r * w * w)[:, None, :]
    else:
        first, sec, trace, _ = model._moments(r * u, np.ones_like(z))
        sz = first - z[:, None]
        F = u * sz - 1.0
        J = eye * sz[:, :, None] - u[:, :, None] * sec * r[None, None, :]
    return F, J, (first, trace)


def _fixed_point(model: GramModel, u: np.ndarray, z: np.ndarray, form: str, iters: int,
                 tol: float = 1e-12) -> np.ndarray:
    """Plain fixed-point iteration (robust at Im z of the order of the scale), until the
    relative change is below ``tol`` (a loose ``tol`` only brings Newton into its basin)."""
    r = model.ratios
    for _ in range(iters):
        if form == "delta":
            first, _, _, _ = model._moments(r / (1.0 + u), -z, second=False)
            new = first
        else:
            first, _, _, _ = model._moments(r * u, np.ones_like(z), second=False)
            new = 1.0 / (first - z[:, None])
        if np.all(np.abs(new - u) <= tol * (np.abs(new) + 1e-300)):
            return new
        u = new
    return u


def _valid(u: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Stieltjes-class check: Im u >= 0 and Im(z u) >= 0 (both up to round-off)."""
    au = np.abs(u)
    zu = z[:, None] * u
    tol = 1e-9
    ok = (u.imag >= -tol * au) & (zu.imag >= -tol * np.abs(zu))
    return np.all(ok & np.isfinite(u), axis=1)


def _newton(model: GramModel, u0: np.ndarray, z: np.ndarray, form: str, max_iter: int,
            uscale: float, tol: Any = _NEWTON_TOL
            ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Undamped Newton from u0; returns (u, converged, evaluations, last residual).

    A point has converged when its relative step falls below ``tol`` (``_NEWTON_TOL`` at
    the target Im z; looser on the intermediate levels of the continuation, whose solutions
    only serve as warm starts), or when the
    step stagnates at round-off level (below 1e-7 relative and no longer halving), which
    happens next to a support edge where the Jacobian is nearly singular.
    """
    u = u0.copy()
    N = z.shape[0]
    tol = np.broadcast_to(np.asarray(tol, dtype=float), (N,))
    conv = np.zeros(N, dtype=bool)
    res = np.full(N, np.inf)
    prev = np.full(N, np.inf)
    active = np.arange(N)
    evals = 0
    for _ in range(max_iter):
        if active.size == 0:
            break
        F, J, _ = _residual_jacobian(model, u[active], z[active], form)
        evals += 1
        try:
            step = np.linalg.solve(J, F[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.full_like(F, np.nan)
        res[active] = np.max(np.abs(F), axis=1)
        u[active] -= step
        rel = np.max(np.abs(step) / (np.abs(u[active]) + uscale), axis=1)
        small = (rel <= tol[active]) | ((rel <= 1e-7) & (rel >= 0.5 * prev[active]))
        prev[active] = rel
        bad = ~np.isfinite(rel)
        conv[active[small]] = True
        u[active[bad]] = np.nan
        active = active[~(small | bad)]
    return u, conv, evals, res


def _solve_points(model: GramModel, x: np.ndarray, eta: np.ndarray, form: str, *,
                  max_iter: int = 30) -> tuple[np.ndarray, np.ndarray, int]:
    """Solve at z = x + i eta (eta > 0) by lowering Im z from the scale with warm starts."""
    N = x.shape[0]
    s = model.scale
    uscale = 1e-6 if form == "delta" else 1e-6 / s
    eta0 = np.maximum(eta, s)
    z0 = x + 1j * eta0
    # initial guess from the large-|z| expansion, then fixed point, then Newton
    if form == "delta":
        u = -(model.traces[None, :] / z0[:, None]).astype(complex)
    else:
        u = (-1.0 / z0[:, None]) * np.ones((1, model.K), dtype=complex)
    u = _fixed_point(model, u, z0, form, 200, tol=1e-3)
    u, conv, evals, res = _newton(model, u, z0, form, max_iter, uscale,
                                  tol=np.where(eta0 <= eta * (1 + 1e-12), _NEWTON_TOL,
                                               _LEVEL_TOL))
    ok = conv & _valid(u, z0)
    if not np.all(ok):
        i = int(np.flatnonzero(~ok)[0])
        raise ConvergenceError(
            f"the §7 equations did not converge at the starting point z = {z0[i]:.6g} "
            f"(Im z = scale)", [float(res[i])])
    cur = eta0.copy()
    ratio = np.full(N, 0.05)
    todo = cur > eta * (1 + 1e-12)
    while np.any(todo):
        idx = np.flatnonzero(todo)
        new_eta = cur[idx] * ratio[idx]
        # land on the target instead of leaving a last step of less than a decade
        new_eta = np.where(new_eta < 10.0 * eta[idx], eta[idx], new_eta)
        zt = x[idx] + 1j * new_eta
        final = new_eta <= eta[idx] * (1 + 1e-12)
        ut, ct, e, rt = _newton(model, u[idx], zt, form, 12, uscale,
                                tol=np.where(final, _NEWTON_TOL, _LEVEL_TOL))
        evals += e
        good = ct & _valid(ut, zt)
        gi, bi = idx[good], idx[~good]
        u[gi] = ut[good]
        cur[gi] = new_eta[good]
        ratio[gi] = np.maximum(ratio[gi] ** 1.5, 1e-3)
        ratio[bi] = np.sqrt(ratio[bi])
        if np.any(ratio[bi] > 0.999):
            i = int(bi[np.argmax(ratio[bi])])
            raise ConvergenceError(
                f"the §7 equations could not be continued towards the real axis at "
                f"x = {x[i]:.8g} (Im z = {cur[i]:.3g}, target {eta[i]:.3g})",
                [float(v) for v in rt[~good][:5]])
        todo = cur > eta * (1 + 1e-12)
    return u, res, evals


def stieltjes(model: GramModel, z: Any, *, eta_min: float | None = None,
              mean_quadratic: bool = False, max_memory: float | None = None
              ) -> StieltjesSolution:
    """Solve the §7 equations at the points z.

    Parameters
    ----------
    model : GramModel
    z : array_like of real or complex, shape (N,) or scalar
        Real points mean x + i0 (solved at Im z = ``eta_min``); points with Im z > 0 are
        solved there; points with Im z < 0 by conjugate symmetry.  Units of X^T X.
    eta_min : float, optional
        Im z used for real points; default ``ETA_MIN_REL * model.scale``.
    mean_quadratic : bool
        Also return M^T (I_p + z Qbar) M (needed by the spike equation).
    max_memory : float, optional
        Bytes the per-point results may use (default 2 GiB); checked before solving.

    Returns
    -------
    StieltjesSolution

    Raises
    ------
    ConvergenceError
        Newton failed (the residual history is attached).
    NonFiniteInputError
        NaN/inf in z.
    """
    if not isinstance(model, GramModel):
        raise InvalidParameterError(f"model must be a GramModel, got {type(model).__name__}")
    zz = np.atleast_1d(np.asarray(z, dtype=complex)).ravel()
    _check_points(zz.size, model.K, max_memory, "the solution of the §7 equations",
                  "evaluate fewer points at a time, or raise max_memory")
    if not np.all(np.isfinite(zz)):
        raise NonFiniteInputError("z has NaN/inf entries")
    eta_min = ETA_MIN_REL * model.scale if eta_min is None else float(eta_min)
    if not eta_min > 0:
        raise InvalidParameterError(f"eta_min must be > 0, got {eta_min!r}")
    lower = zz.imag < 0
    x = zz.real.copy()
    eta = np.abs(zz.imag)
    eta = np.where(eta > 0, eta, eta_min)
    form = model.unknown
    N = x.shape[0]
    K = model.K
    u = np.empty((N, K), dtype=complex)
    res = np.empty(N)
    evals = 0
    chunk = max(1, _CHUNK_ENTRIES // max(1, model.n_distinct * max(1, K)))
    if model.expansion is not None:
        chunk = max(16, _CHUNK_ENTRIES // model.expansion.entries_per_point())
    if model.backend == "dense":
        chunk = 1
    for start in range(0, N, chunk):
        sl = slice(start, start + chunk)
        u[sl], res[sl], e = _solve_points(model, x[sl], eta[sl], form)
        evals += e
    zs = x + 1j * eta
    r = model.ratios
    n, p = model.n, model.p
    # derived quantities (one more evaluation, also the means' quadratic form)
    first = np.empty((N, K), dtype=complex)
    trace = np.empty(N, dtype=complex)
    mq = np.empty((N, K, K), dtype=complex) if mean_quadratic else None
    for start in range(0, N, chunk):
        sl = slice(start, start + chunk)
        if form == "delta":
            f, _, tr, m = model._moments(r / (1.0 + u[sl]), -zs[sl], second=False,
                                         mean=mean_quadratic)
        else:
            f, _, tr, m = model._moments(r * u[sl], np.ones_like(zs[sl]), second=False,
                                         mean=mean_quadratic)
        first[sl], trace[sl] = f, tr
        if mean_quadratic:
            mq[sl] = m
    if form == "delta":
        delta = u
        g = -1.0 / (zs[:, None] * (1.0 + delta))
        m_cov_kept = trace
        if mean_quadratic:
            mq = model.MtM[None] + zs[:, None, None] * mq
    else:
        g = u
        delta = -1.0 - 1.0 / (zs[:, None] * g)
        m_cov_kept = -trace / zs
        if mean_quadratic:
            mq = model.MtM[None] - mq
    dropped = 1.0 - model.p_eff / p
    if model.backend == "dense":
        # the dense trace runs over all p directions, null ones included
        m_cov = m_cov_kept
        m_cov_kept = m_cov + dropped / zs
    else:
        m_cov = m_cov_kept - dropped / zs
    m_gram = (p / n) * m_cov - (1.0 - p / n) / zs
    m_from_g = g @ (model.sizes / n)
    out = [zs, delta, g, m_gram, m_from_g, m_cov, m_cov_kept]
    if np.any(lower):
        out = [np.where(lower.reshape((-1,) + (1,) * (a.ndim - 1)), np.conj(a), a) for a in out]
        if mq is not None:
            mq = np.where(lower[:, None, None], np.conj(mq), mq)
    return StieltjesSolution(z=out[0], delta=out[1], g=out[2], m_gram=out[3],
                             m_gram_from_g=out[4], m_cov=out[5], m_cov_kept=out[6],
                             mean_quadratic=mq, residual=res, unknown=form, evaluations=evals)


def _ac_density(model: GramModel, sol: StieltjesSolution) -> np.ndarray:
    """Absolutely continuous density of X^T X from a solution at x + i eta."""
    if sol.unknown == "delta":
        d = (model.p / model.n) * sol.m_cov_kept.imag / math.pi
    else:
        d = sol.m_gram.imag / math.pi
    return np.maximum(d, 0.0)


def gram_density(model: GramModel, x: Any, *, eta_min: float | None = None) -> np.ndarray:
    """Limiting density of the absolutely continuous part of the spectrum of X^T X.

    Parameters
    ----------
    model : GramModel
    x : array_like of float, shape (N,)
        Points (units of X^T X eigenvalues).
    eta_min : float, optional
        See :func:`stieltjes`.

    Returns
    -------
    ndarray, shape (N,)
        Density (per unit of eigenvalue); it integrates to 1 - ``model.atom`` (the atom of
        mass max(0, 1 - p_eff/n) at 0 is not included).
    """
    x = _finite(x, "x")
    shape = x.shape
    xr = np.atleast_1d(x).ravel()
    dens = np.zeros(xr.shape)
    pos = xr > 0 if model.atom > 0 else np.ones(xr.shape, dtype=bool)
    pos &= xr >= -1e-12 * model.scale
    if np.any(pos):
        sol = stieltjes(model, xr[pos], eta_min=eta_min)
        dens[pos] = _ac_density(model, sol)
    return dens.reshape(shape)


def gram_support(model: GramModel, *, scan: int = 1024, rtol: float = 1e-10
                 ) -> tuple[tuple[float, float], ...]:
    """Support intervals of the absolutely continuous part of the spectrum of X^T X.

    The density is scanned on ``scan`` points of (0, scale]; each edge is then refined by
    bisection on "inside the support" (density above 1e-7 of its typical value, at
    Im z = 1e-14 scale) to ``rtol * scale``.  Gaps narrower than scale/scan may be missed.

    Returns
    -------
    tuple of (lo, hi) pairs, increasing (units of X^T X eigenvalues).
    """
    if not isinstance(scan, (int, np.integer)) or isinstance(scan, bool) or scan < 16:
        raise InvalidParameterError(f"scan must be an integer >= 16, got {scan!r}")
    _check_points(int(scan), model.K, None, "the support scan", "lower scan")
    s = model.scale
    xs = s * (np.arange(scan) + 0.5) / scan
    eta_e = 1e-14 * s
    d = gram_density(model, xs, eta_min=eta_e)
    typical = (1.0 - model.atom) / s
    thr = 1e-7 * typical
    inside = d > thr
    if not inside.any():
        raise ConvergenceError(
            f"no bulk found on (0, {s:.4g}]: the density never exceeds {thr:.3g}", [])
    # brackets for each edge: (outside point, inside point)
    idx = np.flatnonzero(np.diff(inside.astype(np.int8)))
    lo_br = []   # (out, in) pairs for left edges
    hi_br = []
    if inside[0]:
        lo_br.append((0.0, xs[0]))
    for i in idx:
        if inside[i + 1]:
            lo_br.append((xs[i], xs[i + 1]))
        else:
            hi_br.append((xs[i + 1], xs[i]))
    if inside[-1]:
        raise ConvergenceError(
            f"the density is still positive at the scale bound {s:.4g}; the bulk bound is "
            f"wrong", [])
    br = np.array(lo_br + hi_br, dtype=float)
    out_pt, in_pt = br[:, 0].copy(), br[:, 1].copy()
    tol = rtol * s
    while np.max(np.abs(in_pt - out_pt)) > tol:
        mid = 0.5 * (in_pt + out_pt)
        dm = np.zeros_like(mid)
        pos = mid > 0
        if np.any(pos):
            dm[pos] = gram_density(model, mid[pos], eta_min=eta_e)
        ins = dm > thr
        in_pt = np.where(ins, mid, in_pt)
        out_pt = np.where(ins, out_pt, mid)
    edges = 0.5 * (in_pt + out_pt)
    nl = len(lo_br)
    los = np.sort(edges[:nl])
    his = np.sort(edges[nl:])
    if los.size != his.size:
        raise ConvergenceError("unbalanced support edges (internal error)", [])
    return tuple((float(a), float(b)) for a, b in zip(los, his))


# =======================================================================================
# kernels: c1 X^T X + c0 (+ low rank)
# =======================================================================================
def as_low_rank_coefficients(coefficients: Any) -> tuple[float, np.ndarray, float]:
    """(c1, L, c0) of a surrogate ``c1 X^T X + V L V^T + c0 I``.

    Accepts :class:`~rmt_deq.kernels.surrogate.SurrogateCoefficients` (the CK of §4, or the NTK of §5
    from :func:`rmt_deq.kernels.ntk_surrogate.ntk_surrogate_coefficients`), any object with
    attributes ``c1``, ``c0`` and one of ``A``/``D``/``low_rank`` ((K+1) x (K+1)), a
    mapping with those keys, or a tuple (c1, L, c0).

    Raises
    ------
    InvalidParameterError, ShapeMismatchError
    """
    if isinstance(coefficients, tuple) and len(coefficients) == 3:
        c1, L, c0 = coefficients
    else:
        get = (coefficients.get if isinstance(coefficients, dict)
               else lambda k, d=None: getattr(coefficients, k, d))
        c1, c0 = get("c1"), get("c0")
        L = None
        for key in ("A", "D", "low_rank"):
            L = get(key)
            if L is not None:
                break
        if c1 is None or c0 is None or L is None:
            raise InvalidParameterError(
                f"coefficients must provide c1, c0 and a (K+1) x (K+1) low-rank matrix "
                f"(A, D or low_rank); got {type(coefficients).__name__}")
    try:
        c1, c0 = float(c1), float(c0)
    except (TypeError, ValueError):
        raise InvalidParameterError("c1 and c0 must be real numbers") from None
    L = _finite(L, "low-rank matrix")
    if L.ndim != 2 or L.shape[0] != L.shape[1] or L.shape[0] < 2:
        raise ShapeMismatchError(f"the low-rank matrix must be (K+1) x (K+1); got {L.shape}")
    if not (math.isfinite(c1) and math.isfinite(c0)):
        raise NonFiniteInputError("c1 and c0 must be finite")
    return c1, 0.5 * (L + L.T), c0


@dataclass(frozen=True, eq=False)
class BulkSpectrum:
    """Limiting spectrum (bulk and atom) of ``c1 X^T X + c0 I`` (+ any low-rank part).

    Attributes
    ----------
    x : ndarray, shape (N,)
        Grid (eigenvalue units of the kernel).
    density : ndarray, shape (N,)
        Density of the absolutely continuous part on the grid; integrates to 1 - atom.
    support : tuple of (lo, hi)
        Support intervals of the absolutely continuous part (kernel units, increasing).
    atom : float
        Mass of the point atom (max(0, 1 - p_eff/n)), 0 if none.
    atom_at : float
        Its position, c0.
    c1, c0 : float
        The kernel is c1 X^T X + c0 I (+ low rank).
    gram_support : tuple of (lo, hi)
        Support of the bulk of X^T X (its own units).
    model : GramModel
    cdf_x, cdf_values : ndarray
        Nodes (Chebyshev-clustered at the edges) and values of the cumulative distribution
        function of the bulk + atom, for :meth:`cdf` and :meth:`quantile`.
    mass : float
        Numerical integral of the density (should be 1 - atom; the difference is reported
        as ``mass_error``).
    mass_error : float
    eta_min : float
        Im z of the density evaluation (X^T X units).
    """

    x: np.ndarray
    density: np.ndarray
    support: tuple
    atom: float
    atom_at: float
    c1: float
    c0: float
    gram_support: tuple
    model: GramModel = field(repr=False)
    cdf_x: np.ndarray = field(repr=False)
    cdf_values: np.ndarray = field(repr=False)
    mass: float
    mass_error: float
    eta_min: float

    @property
    def width(self) -> float:
        """Extent of the spectrum (hull of the support and the atom)."""
        lo = min([a for a, _ in self.support] + ([self.atom_at] if self.atom > 0 else []))
        hi = max([b for _, b in self.support] + ([self.atom_at] if self.atom > 0 else []))
        return float(hi - lo)

    def cdf(self, y: Any) -> np.ndarray:
        """Cumulative distribution function of the limiting spectrum (right-continuous)."""
        y = np.asarray(y, dtype=float)
        xs, F = self.cdf_x, self.cdf_values
        # right-continuous: at a jump (repeated node) take the upper value
        idx = np.searchsorted(xs, y, side="right")
        out = np.where(idx == 0, 0.0, 1.0)
        inner = (idx > 0) & (idx < xs.size)
        i = idx[inner]
        x0, x1 = xs[i - 1], xs[i]
        f0, f1 = F[i - 1], F[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(x1 > x0, (y[inner] - x0) / (x1 - x0), 1.0)
        out = out.astype(float)
        out[inner] = f0 + t * (f1 - f0)
        out[idx >= xs.size] = F[-1]
        return out

    def quantile(self, t: Any) -> np.ndarray:
        """Quantile function (generalised inverse of :meth:`cdf`), t in [0, 1]."""
        t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
        return np.interp(t, self.cdf_values, self.cdf_x)

    def as_dict(self) -> dict:
        """JSON-ready dictionary: x, density, support, atom, atom_at, c1, c0, mass."""
        return {"x": self.x.tolist(), "density": self.density.tolist(),
                "support": [[float(a), float(b)] for a, b in self.support],
                "atom": float(self.atom), "atom_at": float(self.atom_at),
                "c1": float(self.c1), "c0": float(self.c0),
                "gram_support": [[float(a), float(b)] for a, b in self.gram_support],
                "mass": float(self.mass), "mass_error": float(self.mass_error)}


def _cdf_table(model: GramModel, gsup: Sequence[tuple[float, float]], c1: float, c0: float,
               nodes: int, eta_min: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """CDF of c1 X^T X + c0 on Chebyshev nodes of each support interval, with the atom."""
    # x = lo + (hi - lo)(1 - cos theta)/2: the substitution makes square-root edges (and
    # inverse square-root hard edges) smooth; midpoint rule in theta (open at the edges)
    theta = np.linspace(0.0, math.pi, nodes + 1)
    mid = 0.5 * (theta[1:] + theta[:-1])
    pieces = []   # (x_kernel_nodes, cumulative mass within interval)
    total = 0.0
    for lo, hi in gsup:
        xb = lo + (hi - lo) * 0.5 * (1.0 - np.cos(theta))
        xm = lo + (hi - lo) * 0.5 * (1.0 - np.cos(mid))
        d = gram_density(model, xm, eta_min=eta_min)
        integrand = d * 0.5 * (hi - lo) * np.sin(mid)
        cum = np.concatenate([[0.0], np.cumsum(integrand * np.diff(theta))])
        pieces.append((xb, cum))
        total += float(cum[-1])
    ac = 1.0 - model.atom
    # assemble in kernel units, increasing
    segs = []
    for xg, cum in pieces:
        y = c1 * xg + c0
        m = cum * (ac / total) if total > 0 else cum
        if c1 < 0:
            y, m = y[::-1], (m[-1] - m)[::-1]
        segs.append((y, m))
    segs.sort(key=lambda s: s[0][0])
    events = []
    for y, m in segs:
        events.append((float(y[0]), "seg", (y, m)))
    if model.atom > 0:
        events.append((float(c0), "atom", None))
    events.sort(key=lambda e: (e[0], 0 if e[1] == "atom" else 1))
    xs, F = [], []
    acc = 0.0
    for pos, kind, data in events:
        if kind == "atom":
            xs += [pos, pos]
            F += [acc, acc + model.atom]
            acc += model.atom
        else:
            y, m = data
            xs += list(y)
            F += list(acc + m)
            acc += float(m[-1])
    xs = np.asarray(xs)
    F = np.minimum(np.maximum.accumulate(np.asarray(F)), 1.0)
    order = np.argsort(xs, kind="stable")
    return xs[order], F[order], total


def kernel_bulk(model: GramModel, coefficients: Any = None, *, c1: float | None = None,
                c0: float | None = None, x: Any = None, num: int = 1000,
                margin: float = 0.05, scan: int = 1024, cdf_nodes: int = 400,
                eta_min: float | None = None, max_memory: float | None = None
                ) -> BulkSpectrum:
    """Limiting bulk (density, support, atom) of a surrogate ``c1 X^T X + V L V^T + c0 I``.

    Parameters
    ----------
    model : GramModel
    coefficients : optional
        Anything :func:`as_low_rank_coefficients` accepts (only c1 and c0 matter for the
        bulk); or give ``c1`` and ``c0`` directly.  ``c1 = 1, c0 = 0`` is X^T X itself.
    x : array_like, shape (N,), optional
        Grid (kernel units); default ``num`` points spanning the support (and the atom)
        with a relative ``margin`` on both sides.
    num : int
        Default grid size.
    margin : float
        Relative margin of the default grid.
    scan : int
        Scan points of :func:`gram_support`.
    cdf_nodes : int
        Chebyshev nodes per support interval for the CDF.
    eta_min : float, optional
        See :func:`stieltjes`.
    max_memory : float, optional
        Bytes the grids (``num``, ``scan``, ``cdf_nodes`` per support interval) may use
        (default 2 GiB); checked before anything is allocated.

    Returns
    -------
    BulkSpectrum

    Raises
    ------
    MemoryBudgetError
        A grid size whose arrays would exceed ``max_memory`` (the message gives the
        estimate).

    Notes
    -----
    A kernel with c1 = 0 has no bulk: the whole spectrum (up to the low-rank part) is the
    atom at c0, reported with ``atom = 1`` and an empty support.
    """
    if coefficients is not None:
        if c1 is not None or c0 is not None:
            raise InvalidParameterError("give coefficients or (c1, c0), not both")
        c1, _, c0 = as_low_rank_coefficients(coefficients)
    if c1 is None or c0 is None:
        c1 = 1.0 if c1 is None else c1
        c0 = 0.0 if c0 is None else c0
    c1, c0 = float(c1), float(c0)
    if not (math.isfinite(c1) and math.isfinite(c0)):
        raise NonFiniteInputError("c1 and c0 must be finite")
    if not isinstance(num, (int, np.integer)) or isinstance(num, bool) or num < 2:
        raise InvalidParameterError(f"num must be an integer >= 2, got {num!r}")
    if not isinstance(cdf_nodes, (int, np.integer)) or isinstance(cdf_nodes, bool) \
            or cdf_nodes < 2:
        raise InvalidParameterError(f"cdf_nodes must be an integer >= 2, got {cdf_nodes!r}")
    for what, size in (("the density grid (num)", num), ("the support scan (scan)", scan),
                       ("the CDF nodes of one support interval (cdf_nodes)", cdf_nodes)):
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            _check_points(int(size), model.K, max_memory, what,
                          "use a smaller grid, or raise max_memory")
    eta = ETA_MIN_REL * model.scale if eta_min is None else float(eta_min)
    if c1 == 0.0:
        xg = (np.linspace(c0 - 1.0, c0 + 1.0, num) if x is None
              else np.atleast_1d(_finite(x, "x")))
        return BulkSpectrum(x=_readonly(xg), density=_readonly(np.zeros(xg.shape)),
                            support=(), atom=1.0, atom_at=c0, c1=c1, c0=c0,
                            gram_support=(), model=model,
                            cdf_x=_readonly(np.array([c0, c0])),
                            cdf_values=_readonly(np.array([0.0, 1.0])), mass=0.0,
                            mass_error=0.0, eta_min=eta)
    gsup = gram_support(model, scan=scan)
    ksup = sorted((min(c1 * a + c0, c1 * b + c0), max(c1 * a + c0, c1 * b + c0))
                  for a, b in gsup)
    atom = model.atom
    if x is None:
        lo = min([a for a, _ in ksup] + ([c0] if atom > 0 else []))
        hi = max([b for _, b in ksup] + ([c0] if atom > 0 else []))
        w = hi - lo
        xg = np.linspace(lo - margin * w, hi + margin * w, int(num))
    else:
        xg = np.atleast_1d(_finite(x, "x")).astype(float)
    zeta = (xg - c0) / c1
    dens = gram_density(model, zeta, eta_min=eta) / abs(c1)
    cx, cF, total = _cdf_table(model, gsup, c1, c0, int(cdf_nodes), eta)
    ac = 1.0 - atom
    return BulkSpectrum(x=_readonly(xg), density=_readonly(dens),
                        support=tuple((float(a), float(b)) for a, b in ksup),
                        atom=float(atom), atom_at=c0, c1=c1, c0=c0,
                        gram_support=gsup, model=model, cdf_x=_readonly(cx),
                        cdf_values=_readonly(cF), mass=float(total),
                        mass_error=float(total - ac), eta_min=eta)


# =======================================================================================
# comparison with observed eigenvalues
# =======================================================================================
def spectral_distances(bulk: BulkSpectrum, eigenvalues: Any, *, exclude: Any = None,
                       subdivisions: int = 16, atom_tolerance: float | None = None) -> dict:
    """Kolmogorov-Smirnov and 1-Wasserstein distances between eigenvalues and a bulk.

    Parameters
    ----------
    bulk : BulkSpectrum
        The predicted distribution (absolutely continuous part and atom).
    eigenvalues : array_like, shape (n,)
        Observed eigenvalues (e.g. of an exact kernel).
    exclude : array_like, optional
        Predicted isolated eigenvalues (spikes): for each, the observed eigenvalue nearest
        to it is removed before comparing (the bulk of an n x n matrix then has n - S
        eigenvalues).
    subdivisions : int
        Quadrature points per empirical quantile step for W1.
    atom_tolerance : float, optional
        Observed eigenvalues within this distance of the atom are counted at the atom
        (round-off of exact zero eigenvalues); default 1e-8 times the predicted width.
        (It does not hide the O(p^{-1/2}) spreading of the atom by an exact kernel.)

    Returns
    -------
    dict
        ``ks`` (sup |F_emp - F|), ``w1`` (int |F_emp - F|), ``width`` (of the predicted
        spectrum), ``w1_relative`` (w1/width), ``n_used``, ``excluded``.
    """
    ev = np.sort(_finite(eigenvalues, "eigenvalues").ravel())
    removed = []
    if exclude is not None:
        keep = np.ones(ev.size, dtype=bool)
        for s in np.atleast_1d(_finite(exclude, "exclude")):
            cand = np.flatnonzero(keep)
            j = cand[np.argmin(np.abs(ev[cand] - s))]
            keep[j] = False
            removed.append(float(ev[j]))
        ev = ev[keep]
    n = ev.size
    if n == 0:
        raise InvalidParameterError("no eigenvalues left to compare")
    if bulk.atom > 0:
        tol = 1e-8 * bulk.width if atom_tolerance is None else float(atom_tolerance)
        ev = np.sort(np.where(np.abs(ev - bulk.atom_at) <= tol, bulk.atom_at, ev))
    # KS: at each eigenvalue, both one-sided limits (F continuous except at the atom)
    pts = np.unique(ev if bulk.atom == 0 else np.append(ev, bulk.atom_at))
    Fe_right = np.searchsorted(ev, pts, side="right") / n
    Fe_left = np.searchsorted(ev, pts, side="left") / n
    ks = max(float(np.max(np.abs(Fe_right - bulk.cdf(pts)))),
             float(np.max(np.abs(Fe_left - bulk.cdf(np.nextafter(pts, -np.inf))))))
    # W1 = int_0^1 |Q_emp(t) - Q(t)| dt
    m = int(subdivisions)
    t = (np.arange(n * m) + 0.5) / (n * m)
    q_emp = ev[np.minimum((t * n).astype(int), n - 1)]
    w1 = float(np.mean(np.abs(q_emp - bulk.quantile(t))))
    width = bulk.width
    return {"ks": ks, "w1": w1, "width": width,
            "w1_relative": w1 / width if width > 0 else float("inf"),
            "n_used": int(n), "excluded": removed}
