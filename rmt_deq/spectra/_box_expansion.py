"""Fast coordinate sums of the spectral equations: Taylor expansions over boxes of
coordinates, with a proven truncation bound (docs/theory.md §7.3, docs/spectra.md "Cost").

With diagonal covariances the equations of docs/theory.md §7.2 need, at each evaluation
point (s, c) (a shift and K complex coefficients), sums over the U distinct coordinate
tuples t_u = ((C_1)_uu, ..., (C_K)_uu) with weights w_u:

    S_h = sum_u w_u h(t_u) / D_u          (h = 1 and h = t_a),
    S_ab = sum_u w_u t_{a,u} t_{b,u} / D_u^2,          D_u = s + sum_a c_a t_{a,u},

O(U) work each.  :func:`box_expansion` prepares, once per model, the moments that evaluate
them at a cost independent of U (:meth:`BoxExpansion.sums`), every sum within ``tol`` of the
sum of the absolute values of its terms (plus round-off).  This module is a self-contained
numerical kernel: it knows nothing of the mixture model and is used only by
:mod:`rmt_deq.spectra.model`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rmt_deq._results import readonly

__all__ = ["BoxExpansion", "box_expansion", "q_thresholds"]

#: bisection steps of :func:`q_thresholds` (the bracket [0, 1] shrinks to 2^-60 < 1e-18)
_BISECTION_STEPS = 60
#: floor of the denominators of relative extents (avoids 0/0 for all-zero variances)
_TINY = 1e-300


def q_thresholds(order: int, tol: float) -> np.ndarray:
    """qmax[k], k = 0..order: the largest q in [0, 1) with e1(q, k), e2(q, k) <= tol, where

    e1(q, k) = q^(k+1) (1 + q)/(1 - q)  bounds |1/D - T_k[1/D]| |D|,
    e2(q, k) = q^(k+1) ((k + 2) - (k + 1) q) (1 + q)^2/(1 - q)^2  bounds
               |1/D^2 - T_k[1/D^2]| |D|^2,

    T_k being the Taylor polynomial of degree k in eps = D/D0 - 1, |eps| <= q (see
    :class:`BoxExpansion`).  Both bounds increase with q; found by bisection (to below
    1e-15, on the safe side: the returned q satisfies both bounds)."""
    out = np.empty(order + 1)
    for k in range(order + 1):
        lo, hi = 0.0, 1.0
        for _ in range(_BISECTION_STEPS):
            q = 0.5 * (lo + hi)
            e1 = q ** (k + 1) * (1.0 + q) / (1.0 - q)
            e2 = q ** (k + 1) * ((k + 2) - (k + 1) * q) * (1.0 + q) ** 2 / (1.0 - q) ** 2
            if max(e1, e2) <= tol:
                lo = q
            else:
                hi = q
        out[k] = lo
    return out


def _monomials(Y: np.ndarray, nA: int, deg_start: np.ndarray, rec_parent: np.ndarray,
               rec_dir: np.ndarray) -> np.ndarray:
    """(M, nA) array of Y^alpha for the first nA multi-indices (Y: (M, K)), by recursion on
    the degree: y^alpha = y^(alpha - e_j) y_j (``rec_parent``, ``rec_dir``)."""
    mon = np.empty((Y.shape[0], nA), dtype=Y.dtype)
    mon[:, 0] = 1.0
    for k in range(1, len(deg_start) - 1):
        s0, s1 = deg_start[k], min(deg_start[k + 1], nA)
        if s0 >= nA:
            break
        mon[:, s0:s1] = mon[:, rec_parent[s0:s1]] * Y[:, rec_dir[s0:s1]]
    return mon


def _split_boxes(T: np.ndarray, max_boxes: int) -> list[np.ndarray]:
    """Coordinate index sets: k-d splits of the box of largest relative extent
    (rho_a / t0_a, scale-free) at its middle, until ``max_boxes`` boxes (or no extent)."""
    boxes = [np.arange(T.shape[0])]
    while len(boxes) < max_boxes:
        best, ib, ia = 0.0, -1, -1
        for i, idx in enumerate(boxes):
            lo, hi = T[idx].min(axis=0), T[idx].max(axis=0)
            rel = (hi - lo) / np.maximum(hi + lo, _TINY)
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
    return boxes


@dataclass(frozen=True, eq=False)
class BoxExpansion:
    """The coordinate sums of the diagonal backend, with a bounded truncation error.

    The coordinates are split once into boxes (k-d splits at the middle of the widest
    relative extent); in a box with centre t0 and half-extents rho, with D0 = s + c.t0 and
    y = t - t0,

        1/D = sum_k (-1)^k (c.y)^k / D0^(k+1),   (c.y)^k = sum_{|alpha|=k} k!/alpha! c^alpha y^alpha,

    so that sum_{u in box} w h(t) (c.y)^k only needs the moments sum w h(t) y^alpha,
    computed once.  |c.y|/|D0| <= q = sum_a |c_a| rho_a / |D0| for every coordinate of the
    box; truncating after degree k changes each term w h/D (w h/D^2) by at most
    e1(q, k) (e2(q, k)) times its absolute value (:func:`q_thresholds`).  The degree k is
    the smallest with both bounds below ``tol``; a (point, box) pair with q too large for
    the largest order (in particular D0 near 0) is summed directly over the box.  Hence
    every sum differs from the direct sum by at most ``tol`` times the sum of the absolute
    values of its terms, plus round-off.  The cost per point is O(B * (number of moments))
    instead of O(U).

    Build with :func:`box_expansion`.  Every array is read-only.

    Attributes
    ----------
    K, order : int
        Number of classes; largest Taylor degree.
    tol : float
        The truncation bound, relative to the sum of the absolute values of the terms.
    members : tuple of ndarray
        Coordinate indices of each box.
    alphas : ndarray of int, shape (nA, K)
        Multi-indices sorted by degree; ``deg_start[k]`` is the first of degree k.
    rec_dir, rec_parent : ndarray of int, shape (nA,)
        Recursion of the monomials: y^alpha = y^alpha[rec_parent] * y[rec_dir].
    pairs : tuple of (int, int)
        The pairs a <= b of the second sums.
    centers, radii : ndarray, shape (B, K)
        Box centres t0 and half-extents rho.
    blocks : tuple of ndarray
        Per degree k, the moments as an (n_k, B * nh) matrix (nh = 1 + K + len(pairs)
        functions h: 1, t_a, t_a t_b).
    nh : int
    qmax : ndarray, shape (order + 1,)
        :func:`q_thresholds` of ``order`` and ``tol``.
    weights : ndarray, shape (U,)
    variances : ndarray, shape (K, U)
    chunk_entries : int
        Largest number of complex entries the direct fallback holds at once.
    """

    K: int
    order: int
    tol: float
    members: tuple
    alphas: np.ndarray
    deg_start: np.ndarray
    rec_dir: np.ndarray
    rec_parent: np.ndarray
    pairs: tuple
    centers: np.ndarray
    radii: np.ndarray
    blocks: tuple
    nh: int
    qmax: np.ndarray
    weights: np.ndarray
    variances: np.ndarray
    chunk_entries: int

    @property
    def n_boxes(self) -> int:
        """Number of boxes B."""
        return len(self.members)

    def entries_per_point(self) -> int:
        """Complex entries held per point during :meth:`sums` (chunk sizing)."""
        return int((self.order + 1) * self.n_boxes * self.nh + self.alphas.shape[0])

    def sums(self, coeff: np.ndarray, shift: np.ndarray, *, second: bool = True
             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """The sums at N points: coeff (N, K) = c, shift (N,) = s (complex).

        Returns first (N, K) = S_{t_a}, sec (N, K, K) = S_ab (or None without ``second``),
        trace (N,) = S_1.
        """
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
            mon = _monomials(coeff, nA, self.deg_start, self.rec_parent, self.rec_dir)
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
                step = max(1, self.chunk_entries // max(1, idx.size))
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


def box_expansion(weights: np.ndarray, variances: np.ndarray, order: int, max_boxes: int,
                  tol: float, chunk_entries: int) -> BoxExpansion:
    """Prepare the box expansion of the sums over the coordinates (weights (U,), variances
    (K, U)): at most ``max_boxes`` boxes, Taylor degrees up to ``order``, truncation bound
    ``tol`` (see :class:`BoxExpansion`); the direct fallback holds at most
    ``chunk_entries`` complex entries at once."""
    K = variances.shape[0]
    order = int(order)
    T = variances.T
    boxes = _split_boxes(T, max_boxes)
    B = len(boxes)
    # multi-indices sorted by degree; deg_start[k]: first index of degree k
    alphas = [np.zeros(K, dtype=np.int64)]
    deg_start = [0, 1]
    prev = [tuple([0] * K)]
    for k in range(1, order + 1):
        cur = sorted({tuple(a[:j] + (a[j] + 1,) + a[j + 1:]) for a in prev
                      for j in range(K)}, reverse=True)
        alphas += [np.array(a, dtype=np.int64) for a in cur]
        deg_start.append(deg_start[-1] + len(cur))
        prev = cur
    alphas = np.array(alphas)                                            # (nA, K)
    deg_start = np.array(deg_start)
    nA = alphas.shape[0]
    # monomials by recursion on the degree: y^alpha = y^(alpha - e_j) y_j, j the first
    # non-zero index of alpha
    lookup = {tuple(a): i for i, a in enumerate(alphas.tolist())}
    rec_dir = np.zeros(nA, dtype=np.int64)
    rec_parent = np.zeros(nA, dtype=np.int64)
    for i, a in enumerate(alphas.tolist()[1:], start=1):
        j = next(d for d in range(K) if a[d] > 0)
        b = list(a)
        b[j] -= 1
        rec_dir[i], rec_parent[i] = j, lookup[tuple(b)]
    deg = alphas.sum(axis=1)
    lg = np.array([math.lgamma(d + 1.0) for d in range(order + 1)])
    mult = np.exp(lg[deg] - lg[alphas].sum(axis=1))                      # k!/alpha!
    pairs = tuple((a, b) for a in range(K) for b in range(a, K))
    nh = 1 + K + len(pairs)
    centers = np.empty((B, K))
    radii = np.empty((B, K))
    mom = np.empty((B, nh, nA))
    for i, idx in enumerate(boxes):
        Tb = T[idx]
        c0 = 0.5 * (Tb.min(axis=0) + Tb.max(axis=0))
        Y = Tb - c0
        centers[i] = c0
        radii[i] = np.abs(Y).max(axis=0)
        mon = _monomials(Y, nA, deg_start, rec_parent, rec_dir)
        wb = weights[idx]
        H = np.empty((nh, idx.size))
        H[0] = wb
        H[1:1 + K] = wb * Tb.T
        for j, (a, b) in enumerate(pairs):
            H[1 + K + j] = wb * Tb[:, a] * Tb[:, b]
        mom[i] = (H @ mon) * mult
    # per degree k: (n_k, B * nh) blocks for the matrix products
    blocks = tuple(readonly(np.ascontiguousarray(
        mom[:, :, deg_start[k]:deg_start[k + 1]].transpose(2, 0, 1).reshape(-1, B * nh)))
        for k in range(order + 1))
    return BoxExpansion(
        K=K, order=order, tol=float(tol), members=tuple(readonly(m) for m in boxes),
        alphas=readonly(alphas), deg_start=readonly(deg_start), rec_dir=readonly(rec_dir),
        rec_parent=readonly(rec_parent), pairs=pairs, centers=readonly(centers),
        radii=readonly(radii), blocks=blocks, nh=nh, qmax=readonly(q_thresholds(order, float(tol))),
        weights=readonly(weights), variances=readonly(variances),
        chunk_entries=int(chunk_entries))
