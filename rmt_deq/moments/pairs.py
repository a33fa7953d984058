"""All pair expectations of n jointly Gaussian variables at once: the matrices
G_ij = E[phi_c(u_i) phi_c(u_j)] and Gdot_ij = E[phi'(u_i) phi'(u_j)] of the exact kernels
(docs/theory.md §2.2-2.3), on the engines of :mod:`rmt_deq.moments.bivariate` (closed
forms, the Mehler series with the 2-D quadrature for |rho| near 1, or the quadrature).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from rmt_deq._validation import (as_positive_array, check_choice, check_positive_int,
                                 check_tolerance, check_workers)
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.moments._scale_rule import KINDS, rule_moments, scale_moments
from rmt_deq.moments.bivariate import DEFAULT_KMAX, DEFAULT_TOL, METHODS
from rmt_deq.moments.mehler import HermiteTable, rho_limits
from rmt_deq.moments.pair_closed import closed_pair_expectations, has_closed_form, relu_family
from rmt_deq.moments.pair_quadrature import quad_pairs

__all__ = ["PairExpectations"]

#: the Mehler order the coefficient tables are first built to (extended on demand)
_FIRST_ORDER = 32
#: most threads used by default
_MAX_DEFAULT_WORKERS = 8


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(n, _MAX_DEFAULT_WORKERS))


class PairExpectations:
    """E[phi_c(u_i) phi_c(u_j)] and E[phi'(u_i) phi'(u_j)] for n jointly Gaussian u_i.

    The variances Sigma_ii are fixed at construction (so the per-sample Hermite
    coefficients are computed once); :meth:`evaluate` then takes any covariance with that
    diagonal.  This is the inner loop of the exact-kernel fixed point.

    Parameters
    ----------
    activation : name, Activation or callable
    variances : array_like, shape (n,)
        Sigma_ii > 0.
    centring : float
        c in phi_c = phi - c.
    method : {"auto", "closed", "mehler", "quadrature"}
    tol : float
        Accuracy of each entry relative to sqrt(E[f(u_i)^2] E[f(u_j)^2]).
    kmax : int
        Largest Mehler order; pairs whose |rho| needs more go to 2-D quadrature.
    workers : int, optional
        Threads for the O(K n^2) series (numpy releases the GIL); default: the CPUs
        available, at most 8.

    Attributes
    ----------
    diag_phi, diag_dphi : ndarray, shape (n,)
        E[phi_c(u_i)^2] and E[phi'(u_i)^2] (the diagonals of G and Gdot).
    moments : dict of str -> ndarray, shape (n,)
        The 1-D moments of :func:`rmt_deq.moments.scales.one_dimensional_moments` at the n
        scales.
    last_order : int
        Largest Mehler order used by the last :meth:`evaluate` (0 for closed forms).
    last_quadrature_pairs : int
        Number of pairs (i < j) evaluated by 2-D quadrature in the last call.
    """

    #: elements of the row blocks of the upper triangle that the threads share out
    _BLOCK_ELEMS = 1 << 16

    def __init__(self, activation: ActivationLike, variances: Any, centring: float = 0.0, *,
                 method: str = "auto", tol: float = DEFAULT_TOL, kmax: int = DEFAULT_KMAX,
                 workers: int | None = None) -> None:
        self.act = get_activation(activation)
        check_choice(method, "method", METHODS)
        self.tol = check_tolerance(tol)
        var = as_positive_array(variances, "variances", " (Sigma_ii)").reshape(-1)
        self.s = np.sqrt(var)
        self.n = var.size
        self.centring = float(centring)
        if method == "auto":
            method = "closed" if has_closed_form(self.act) else "mehler"
        if method == "closed" and not has_closed_form(self.act):
            # raises UnknownOptionError, naming the activation
            closed_pair_expectations(self.act, 0.0, self.s[:1], self.s[:1], np.zeros(1))
        self.method = method
        self.kmax = check_positive_int(kmax, "kmax")
        workers = check_workers(workers)
        self.workers = _default_workers() if workers is None else workers
        self._tables: dict[str, HermiteTable] = {}
        self._limits: dict[str, np.ndarray] = {}
        self._CT: dict[str, np.ndarray] = {}
        if method == "mehler":
            mom, (rule, F, Fe, D, De) = rule_moments(self.act, self.s, self.centring)
            c = self.centring
            self._tables["phi"] = HermiteTable(rule, F - c, None if Fe is None else Fe - c)
            self._tables["dphi"] = HermiteTable(rule, D, De)
            for kind in KINDS:
                self._extend(kind, _FIRST_ORDER)
            if relu_family(self.act) is not None:
                mom = scale_moments(self.act, self.s, c)
        else:
            mom = scale_moments(self.act, self.s, self.centring)
        self.moments = {k: np.asarray(v, float) for k, v in mom.items()}
        self.diag_phi, self.diag_dphi = self.moments["m2"], self.moments["d2"]
        self.last_order = 0
        self.last_quadrature_pairs = 0

    # --- Mehler helpers ---------------------------------------------------------------
    def _extend(self, kind: str, K: int) -> None:
        tab = self._tables[kind]
        K = min(K, self.kmax)
        tails = tab.relative_tails(K)
        self._limits[kind] = rho_limits(tails.max(axis=0), self.tol)
        self._CT[kind] = np.ascontiguousarray(tab.coefficients(K).T)   # (K+1, n)

    def _order_for(self, kind: str, absrho: float) -> int:
        """Smallest certified K for |rho| <= absrho, or -1 if K > kmax would be needed."""
        while True:
            lim = self._limits[kind]
            K = int(np.searchsorted(lim, absrho, side="left"))
            if K < lim.size:
                return K
            if lim.size - 1 >= self.kmax:
                return -1
            self._extend(kind, 2 * (lim.size - 1))

    def _series_block(self, kind: str, r0: int, r1: int, R: np.ndarray, K: int
                      ) -> np.ndarray:
        CT = self._CT[kind]
        acc = np.multiply.outer(CT[K, r0:r1], CT[K, r0:])
        tmp = np.empty_like(acc)
        for k in range(K - 1, -1, -1):
            acc *= R
            np.multiply.outer(CT[k, r0:r1], CT[k, r0:], out=tmp)
            acc += tmp
        return acc

    def _run_blocks(self, task: Callable[[int, int], None]) -> None:
        """Run task(r0, r1) over row blocks of the upper triangle (threaded)."""
        n = self.n
        rows = max(1, self._BLOCK_ELEMS // max(n, 1))
        blocks = [(r0, min(n, r0 + rows)) for r0 in range(0, n, rows)]
        if self.workers > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(max_workers=self.workers) as ex:
                for fut in [ex.submit(task, r0, r1) for r0, r1 in blocks]:
                    fut.result()
        else:
            for r0, r1 in blocks:
                task(r0, r1)

    def _closed_matrix(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        G = np.empty((n, n))
        D = np.empty((n, n))

        def task(r0: int, r1: int) -> None:
            res = closed_pair_expectations(self.act, self.centring, self.s[r0:r1, None],
                                           self.s[None, r0:], rho[r0:r1, r0:])
            for kind, out in (("phi", G), ("dphi", D)):
                out[r0:r1, r0:] = res[kind]
                out[r0:, r0:r1] = res[kind].T

        self._run_blocks(task)
        self.last_order, self.last_quadrature_pairs = 0, 0
        return G, D

    def _mehler(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        absr = np.abs(rho)
        np.fill_diagonal(absr, 0.0)
        amax = float(absr.max()) if n > 1 else 0.0
        # extend the coefficient tables to the order the largest |rho| needs (or kmax);
        # pairs beyond the reach of kmax go to the 2-D quadrature.  The tables are final
        # before the threaded blocks start, so the tasks only read shared state.
        cut = 1.0
        for kind in KINDS:
            if self._order_for(kind, amax) < 0:
                cut = min(cut, float(self._limits[kind][-1]))
        far = absr > cut if cut < 1.0 else None
        if far is not None:
            absr[far] = 0.0
        G = np.empty((n, n))
        D = np.empty((n, n))
        orders: list[int] = []

        def task(r0: int, r1: int) -> None:
            R = rho[r0:r1, r0:]
            bmax = float(absr[r0:r1, r0:].max())
            for kind, out in (("phi", G), ("dphi", D)):
                K = max(self._order_for(kind, bmax), 0)
                orders.append(K)
                acc = self._series_block(kind, r0, r1, R, K)
                out[r0:r1, r0:] = acc
                out[r0:, r0:r1] = acc.T

        self._run_blocks(task)
        self.last_order = max(orders) if orders else 0
        self.last_quadrature_pairs = 0
        if far is not None:
            iu, ju = np.nonzero(np.triu(far, 1))
            self.last_quadrature_pairs = int(iu.size)
            if iu.size:
                self._fill_quadrature(rho, iu, ju, G, D)
        return G, D

    def _quadrature_values(self, kind: str, iu: np.ndarray, ju: np.ndarray, r: np.ndarray
                           ) -> np.ndarray:
        """E[f(u_i) f(u_j)] by 2-D quadrature for the pairs (iu, ju) at correlations r."""
        d = self.diag_phi if kind == "phi" else self.diag_dphi
        scale = np.sqrt(np.abs(d[iu] * d[ju]))
        scale = np.where(scale > 0, scale, 1.0)
        return quad_pairs(self.act, kind, self.centring, self.s[iu], self.s[ju], r, scale,
                          self.tol)

    def _fill_quadrature(self, rho: np.ndarray, iu: np.ndarray, ju: np.ndarray,
                         G: np.ndarray, D: np.ndarray) -> None:
        r = rho[iu, ju]
        for kind, out in (("phi", G), ("dphi", D)):
            vals = self._quadrature_values(kind, iu, ju, r)
            out[iu, ju] = vals
            out[ju, iu] = vals

    def _mehler_tile(self, rho: np.ndarray, rows: slice, cols: slice, on_diagonal: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
        """The Mehler series on one tile, its order from the tile's largest |rho|; pairs
        beyond the reach of kmax by 2-D quadrature (as :meth:`_mehler` per row block)."""
        absr = np.abs(rho)
        if on_diagonal:
            np.fill_diagonal(absr, 0.0)
        amax = float(absr.max()) if absr.size else 0.0
        cut = 1.0
        for kind in KINDS:
            if self._order_for(kind, amax) < 0:
                cut = min(cut, float(self._limits[kind][-1]))
        far = absr > cut if cut < 1.0 else None
        if far is not None:
            absr[far] = 0.0
        bmax = float(absr.max()) if absr.size else 0.0
        out = []
        orders = []
        for kind in KINDS:
            K = max(self._order_for(kind, bmax), 0)
            orders.append(K)
            CT = self._CT[kind]
            acc = np.multiply.outer(CT[K, rows], CT[K, cols])
            tmp = np.empty_like(acc)
            for k in range(K - 1, -1, -1):
                acc *= rho
                np.multiply.outer(CT[k, rows], CT[k, cols], out=tmp)
                acc += tmp
            out.append(acc)
        self.last_order = max(orders)
        self.last_quadrature_pairs = 0
        if far is not None:
            if on_diagonal:
                far = np.triu(far, 1)
            li, lj = np.nonzero(far)
            self.last_quadrature_pairs = int(li.size)
            if li.size:
                iu, ju = li + rows.start, lj + cols.start
                for kind, acc in zip(KINDS, out):
                    acc[li, lj] = self._quadrature_values(kind, iu, ju, rho[li, lj])
        return out[0], out[1]

    # --- public -----------------------------------------------------------------------
    def evaluate(self, Sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """G and Gdot for the covariance ``Sigma`` (n x n; its diagonal is ignored).

        Returns
        -------
        G : ndarray, shape (n, n)
            E[phi_c(u_i) phi_c(u_j)].
        Gdot : ndarray, shape (n, n)
            E[phi'(u_i) phi'(u_j)].
        """
        S = np.asarray(Sigma, float)
        rho = S / np.multiply.outer(self.s, self.s)
        np.clip(rho, -1.0, 1.0, out=rho)
        np.fill_diagonal(rho, 1.0)
        if self.method == "closed":
            G, D = self._closed_matrix(rho)
        elif self.method == "mehler":
            G, D = self._mehler(rho)
        else:
            iu, ju = np.triu_indices(self.n, 1)
            G = np.empty((self.n, self.n))
            D = np.empty((self.n, self.n))
            self._fill_quadrature(rho, iu, ju, G, D)
            self.last_order, self.last_quadrature_pairs = 0, int(iu.size)
        np.fill_diagonal(G, self.diag_phi)
        np.fill_diagonal(D, self.diag_dphi)
        return G, D

    def evaluate_tile(self, Sigma: np.ndarray, rows: slice, cols: slice
                      ) -> tuple[np.ndarray, np.ndarray]:
        """G and Gdot on one tile ``rows`` x ``cols`` of the covariance.

        Parameters
        ----------
        Sigma : ndarray, shape (len(rows), len(cols))
            The covariances Sigma_ij of the tile.
        rows, cols : slice
            Contiguous index ranges (step 1, explicit start); ``rows == cols`` is a tile on
            the diagonal, whose diagonal entries are ignored (set to the variances).

        Returns
        -------
        G, Gdot : ndarray, shape (len(rows), len(cols))
            Each pair (i, j) by the same elementwise formulas as :meth:`evaluate`: the
            closed forms and the quadrature give the same numbers to a few ulps; the Mehler
            series takes its order from the tile's largest |rho| (not the row block's), so
            it agrees to the certified ``tol``.  On a diagonal tile only the upper triangle
            (i < j) is meant (the quadrature fills nothing below it).
        """
        S = np.asarray(Sigma, float)
        rho = S / np.multiply.outer(self.s[rows], self.s[cols])
        np.clip(rho, -1.0, 1.0, out=rho)
        on_diagonal = rows == cols
        if on_diagonal:
            np.fill_diagonal(rho, 1.0)
        if self.method == "closed":
            res = closed_pair_expectations(self.act, self.centring, self.s[rows, None],
                                           self.s[None, cols], rho)
            G, D = res["phi"], res["dphi"]
            self.last_order, self.last_quadrature_pairs = 0, 0
        elif self.method == "mehler":
            G, D = self._mehler_tile(rho, rows, cols, on_diagonal)
        else:
            G = np.zeros(rho.shape)
            D = np.zeros(rho.shape)
            li, lj = np.nonzero(np.triu(np.ones(rho.shape, bool), 1) if on_diagonal
                                else np.ones(rho.shape, bool))
            iu, ju = li + rows.start, lj + cols.start
            G[li, lj] = self._quadrature_values("phi", iu, ju, rho[li, lj])
            D[li, lj] = self._quadrature_values("dphi", iu, ju, rho[li, lj])
            self.last_order, self.last_quadrature_pairs = 0, int(li.size)
        if on_diagonal:
            np.fill_diagonal(G, self.diag_phi[rows])
            np.fill_diagonal(D, self.diag_dphi[rows])
        return G, D
