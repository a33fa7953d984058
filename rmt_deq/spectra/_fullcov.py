"""The traces of the spectral equations for full, non-commuting class covariances
(the "dense" backend of :mod:`rmt_deq.spectra.model`, docs/theory.md §7.2-7.3).

At each evaluation point (a shift s and K complex coefficients c) the equations need, for
Y = (s I_p + sum_b c_b C_b)^{-1} (complex symmetric),

    tr(C_a Y)/p,   tr(C_a Y C_b Y)/p,   tr(Y)/p,   M^T Y M.

Without a common eigenbasis of the C_a there is no factorisation shared between points
(the matrix is a combination of the K + 1 matrices I, C_1, ..., C_K with coefficients that
all vary from point to point), so each point costs one p x p complex inverse.  This module
makes that inverse the whole cost: points are processed in batches (one stacked inverse),
every product with a real C_a is a real matrix product of the stacked real and imaginary
parts (half the arithmetic of a complex product), and the traces are entrywise sums.
A self-contained numerical kernel on arrays: it knows nothing of the model.
"""
from __future__ import annotations

import numpy as np

__all__ = ["dense_moments"]


def dense_moments(covs: np.ndarray, means: np.ndarray | None, coeff: np.ndarray,
                  shift: np.ndarray, second: bool, mean: bool, chunk_entries: int
                  ) -> tuple:
    """The traces of Y = (shift I + sum_b coeff_b C_b)^{-1} at N points.

    Parameters
    ----------
    covs : ndarray, shape (K, p, p)
        Symmetric class covariances (trusted).
    means : ndarray, shape (K, p) or None
        Class means (rows), for ``mean``.
    coeff : ndarray of complex, shape (N, K)
    shift : ndarray of complex, shape (N,)
    second, mean : bool
        Also compute tr(C_a Y C_b Y)/p, and M^T Y M (zero without means).
    chunk_entries : int
        Largest number of p x p matrix entries (points times p^2) inverted at once.

    Returns
    -------
    first : ndarray, shape (N, K)
        tr(C_a Y)/p.
    second : ndarray, shape (N, K, K) or None
        tr(C_a Y C_b Y)/p (symmetric in a, b).
    trace : ndarray, shape (N,)
        tr(Y)/p (all p directions).
    meanq : ndarray, shape (N, K, K) or None
        M^T Y M (no bias correction: the caller applies it).

    Notes
    -----
    Y is symmetrised, (Y + Y^T)/2, so that every trace is that of an exactly symmetric
    matrix; each trace is then an entrywise sum (tr(C_a Y) = sum_ij (C_a)_ij Y_ij, and
    tr(C_a Y C_b Y) = sum_ij (Y C_a)_ij (Y C_b)_ji), equal to the matrix-product
    definition up to round-off.
    """
    N, K = coeff.shape
    p = covs.shape[1]
    first = np.empty((N, K), dtype=complex)
    trace = np.empty(N, dtype=complex)
    sec = np.empty((N, K, K), dtype=complex) if second else None
    mq = np.zeros((N, K, K), dtype=complex) if mean else None
    flat = covs.reshape(K, p * p)
    diag = np.arange(p)
    step = max(1, int(chunk_entries) // (p * p))
    for i0 in range(0, N, step):
        sl = slice(i0, min(N, i0 + step))
        c = coeff[sl]
        n = c.shape[0]
        # real products: sum_b c_b C_b without promoting the real C_b to complex
        A = (c.real @ flat + 1j * (c.imag @ flat)).reshape(n, p, p)
        A[:, diag, diag] += shift[sl, None]
        Y = np.linalg.inv(A)
        Y = 0.5 * (Y + Y.transpose(0, 2, 1))
        trace[sl] = np.trace(Y, axis1=1, axis2=2) / p
        # real and imaginary parts stacked: (2 n p, p), rows of Re Y then of Im Y
        W = np.concatenate([Y.real, Y.imag]).reshape(2 * n * p, p)
        Wf = W.reshape(2 * n, p * p)
        F = Wf @ flat.T                                                    # (2n, K)
        first[sl] = (F[:n] + 1j * F[n:]) / p
        if second:
            P = []      # Y C_a, and its transpose, as (n, p, p) complex
            for a in range(K):
                R = (W @ covs[a]).reshape(2, n, p, p)
                P.append(R[0] + 1j * R[1])
            for a in range(K):
                for b in range(a, K):
                    v = np.einsum("nij,nji->n", P[a], P[b]) / p
                    sec[sl, a, b] = v
                    sec[sl, b, a] = v
        if mean and means is not None:
            mq[sl] = np.einsum("kp,npq,lq->nkl", means, Y, means, optimize=True)
    return first, sec, trace, mq
