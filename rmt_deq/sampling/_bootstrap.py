"""The multiplier bootstrap behind the samplers' operator-norm error bars (docs/theory.md §8).

With batch sums S_j (n_j realizations each, b batches) and the mean M, the matrices
Delta_j = S_j - n_j M carry the Monte-Carlo fluctuation.  The error bar is the
``confidence``-quantile over random signs eps of ||sum_j eps_j Delta_j||_2 sqrt(b/(b-1)) / R,
times t_{b-1}/z (:func:`bootstrap_bound`).  Its cost is the operator norm of every sign sum
E = sum_j eps_j Delta_j (``draws`` of them, n x n, symmetric).  They are computed here by
Lanczos iteration with a certified stopping rule (:func:`certified_sign_norms`) instead of a
dense eigendecomposition each (:func:`exact_sign_norms`, kept as the reference).

The certificate
---------------
Lanczos from a start vector q drawn uniformly on the unit sphere builds, after k steps,
the orthonormal polynomials pi_0 = 1, pi_1, ..., pi_k of the spectral measure of q
(recurrence beta_i pi_{i+1}(x) = (x - alpha_i) pi_i(x) - beta_{i-1} pi_{i-1}(x) with the
Lanczos coefficients), and pi_i(E) q is the i-th Lanczos vector.  Let lambda* be an
eigenvalue of largest modulus (|lambda*| = ||E||) and u* a unit eigenvector of it.  For the
polynomial p = sum_i pi_i(lambda*) pi_i,

    (u*.q)^2 p(lambda*)^2 <= ||p(E) q||^2 = sum_i pi_i(lambda*)^2,

so ``K_k(lambda*) = sum_{i<=k} pi_i(lambda*)^2 <= 1/(u*.q)^2``.  (u*.q)^2 follows the
Beta(1/2, (n-1)/2) law whatever E is, so with probability at least 1 - delta it is >= t, the
delta-quantile of that law, and then K_k(lambda*) <= 1/t.  K_k is non-decreasing in |x|
outside the range of the Ritz values (every pi_i has its zeros inside it), so any level
nu >= the largest |Ritz value| with K_k(nu) > 1/t and K_k(-nu) > 1/t is an upper bound:
||E|| <= nu, except with probability delta.  The largest |Ritz value| theta is a lower
bound, always.  The iteration stops at the first check where nu = (1 + NORM_RTOL) theta
passes, and returns the smallest level of a grid on [theta, (1 + NORM_RTOL) theta] that
passes.  Hence, per sign sum and up to rounding (the Lanczos basis is fully
reorthogonalized),

    ||E|| <= nu <= (1 + NORM_RTOL) ||E||     (the left inequality with probability
                                               >= 1 - delta, the right one always).

With delta = FAILURE_PROBABILITY / draws, all the draws of one error bar are upper bounds
at once except with probability FAILURE_PROBABILITY.  The quantile (linear interpolation
of order statistics) is non-decreasing and positively homogeneous in the values, so the
error bar lies between the one computed with exact norms and (1 + NORM_RTOL) times it.
A sign sum that is not certified within :data:`MAX_LANCZOS_STEPS` steps falls back to a
dense eigendecomposition (exact).

Only the quantile is needed.  np.quantile (linear interpolation) at level q over D values
reads the order statistics x_(k) and x_(k+1), k = floor(q (D - 1)).  If a certified lower
bound L <= x_(k) is known (the (D - k)-th largest of the certified lower bounds theta
seen so far: at least D - k norms lie above it), a sign sum may stop as soon as the
level L itself is certified: then nu_d <= max((1 + NORM_RTOL) ||E_d||, L), and the
order statistics from k on of such values are those of (1 + NORM_RTOL) ||E|| at most,
so the quantile still lies between the exact one and (1 + NORM_RTOL) times it.  The sums
are taken in decreasing Frobenius norm (known for all draws from the Gram matrix of the
Delta_j) so that L is known after the first chunk; most sums then stop at L earlier than
at 2% of their own norm.

Cost: the matrix-vector products, which are memory-bound.  Small matrices are iterated a
chunk of draws at a time (batched products); a matrix larger than the cache budget is kept
in BLAS packed storage (its upper triangle: half the memory traffic of a full product),
the sums of a chunk formed together (one pass over the b deviations) and iterated one
draw at a time, so that each stays in cache; the certificate of a draw is first checked a
few steps before the previous draw's stop (the sums are similar).

Precision: the sign sums are formed and iterated in float32 (half the memory traffic
again); a margin 4 u32 ((sqrt(n) + 1) ||E_d||_F + (b + 1) sum_j ||Delta_j||_F) (u32 the
float32 unit round-off; :func:`certified_sign_norms`) is added to every level
and taken off the top of the grid, so the rounding of the float32 products is covered
and the bounds above hold as stated.  The start vectors are drawn from the bootstrap's own
generator, after the signs: the bound is deterministic given its seed.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable

import numpy as np
from scipy import special
from scipy.linalg.blas import sspmv as _spmv

from rmt_deq._validation import as_rng
from rmt_deq.errors import InvalidParameterError

__all__ = ["NORM_RTOL", "FAILURE_PROBABILITY", "MAX_LANCZOS_STEPS", "bootstrap_bound",
           "certified_sign_norms", "exact_sign_norms", "sign_draws"]

#: relative accuracy of each certified sign-sum norm: ||E|| <= nu <= (1 + NORM_RTOL) ||E||
#: (far below the statistical spread of a bootstrap error bar from a few batches)
NORM_RTOL = 0.02
#: probability that any sign-sum norm of one error bar is under-estimated (delta per draw is
#: this divided by the number of draws)
FAILURE_PROBABILITY = 1e-3
#: Lanczos steps after which a sign sum still uncertified is decomposed densely
MAX_LANCZOS_STEPS = 160
#: Lanczos steps before the first certificate check, and between checks (a check costs
#: O(k) small vector operations; the certificate rarely passes before this)
_FIRST_CHECK = 8
_CHECK_EVERY = 4
#: grid levels between theta and (1 + NORM_RTOL) theta: the returned level exceeds the
#: smallest certifiable one by at most NORM_RTOL / (_GRID - 1) relative
_GRID = 17
#: a sign sum with ||E||_F below this times sum_j ||Delta_j||_F is rounding noise of an exact
#: zero (equal signs: the Delta_j sum to zero) and gets norm 0
_ROUNDING = 1e-13
#: bytes of sign-sum matrices iterated on together (about what stays in cache), and the
#: most draws in one chunk
_CHUNK_BYTES = 2 ** 23
_MAX_CHUNK = 32
_WORK = np.dtype(np.float32)
#: when a single matrix exceeds the cache budget, draws are still formed a few at a time
#: (up to these bytes), so that forming reads the b batch deviations once per few draws
_FORM_BYTES = 2 ** 27


def sign_draws(gen: np.random.Generator, b: int, draws: int) -> np.ndarray:
    """``draws`` Rademacher sign vectors of length b (rows), one ``gen.choice`` each."""
    pm = np.array([-1.0, 1.0])
    return np.array([gen.choice(pm, size=b) for _ in range(draws)]).reshape(draws, b)


def exact_sign_norms(flat: np.ndarray, eps: np.ndarray, n: int) -> np.ndarray:
    """||sum_j eps_dj Delta_j||_2 for each row d of eps by dense eigendecomposition (the
    reference of :func:`certified_sign_norms`); ``flat`` is Delta reshaped to (b, n*n)."""
    out = np.empty(eps.shape[0])
    for d in range(eps.shape[0]):
        w = np.linalg.eigvalsh((eps[d] @ flat).reshape(n, n))
        out[d] = max(abs(w[0]), abs(w[-1]))
    return out


def _christoffel(lam: np.ndarray, alpha: np.ndarray, beta: np.ndarray, k: int) -> np.ndarray:
    """K_k(lam) = sum_{i<=k} pi_i(lam)^2 for lam of shape (c, P); alpha, beta (c, >= k).

    Overflow gives inf (the level passes); a zero beta gives inf or nan (nan fails).
    """
    p_prev = np.zeros_like(lam)
    p = np.ones_like(lam)
    K = np.ones_like(lam)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(k):
            nxt = (lam - alpha[:, i, None]) * p
            if i:
                nxt -= beta[:, i - 1, None] * p_prev
            nxt /= beta[:, i, None]
            p_prev, p = p, nxt
            K += p * p
    return K


def _passes(lam: np.ndarray, alpha: np.ndarray, beta: np.ndarray, k: int,
            limit: float) -> np.ndarray:
    """Whether K_k(lam) > limit and K_k(-lam) > limit, elementwise over lam (c, P)."""
    K = _christoffel(np.concatenate([lam, -lam], axis=1), alpha, beta, k)
    P = lam.shape[1]
    return (K[:, :P] > limit) & (K[:, P:] > limit)


def _tridiagonal_extremes(alpha: np.ndarray, beta: np.ndarray, k: int) -> np.ndarray:
    """Smallest and largest eigenvalue of each k x k Lanczos matrix, shape (c, 2)."""
    c = alpha.shape[0]
    T = np.zeros((c, k, k))
    i = np.arange(k)
    T[:, i, i] = alpha[:, :k]
    T[:, i[:-1], i[1:]] = beta[:, :k - 1]
    T[:, i[1:], i[:-1]] = beta[:, :k - 1]
    w = np.linalg.eigvalsh(T)
    return np.stack([w[:, 0], w[:, -1]], axis=1)


def _lanczos_norms(E: np.ndarray, gen: np.random.Generator, limit: float,
                   margin: np.ndarray, below: float = 0.0,
                   first_check: int = _FIRST_CHECK) -> tuple[np.ndarray, np.ndarray, int]:
    """Certified norms of the symmetric matrices E (c, n, n), NaN where not certified
    within min(n, MAX_LANCZOS_STEPS) steps; ``limit`` = 1/t (module docstring).  A 2-D
    E of shape (1, n (n + 1)/2) is one matrix in packed storage (:func:`_packed`).

    ``margin`` (c,) bounds the rounding of the working precision (added to every level
    returned, taken off the top of the grid); a draw also stops at ``below`` when that
    level is certified (0: never).  The certificate is first checked after
    ``first_check`` steps, then every _CHECK_EVERY.  Returns the upper bounds, the lower
    bounds (largest |Ritz value| minus the margin) at the stop and the steps taken."""
    packed = E.ndim == 2
    c = E.shape[0]
    n = round((math.sqrt(8 * E.shape[1] + 1) - 1) / 2) if packed else E.shape[1]
    kmax = min(n, MAX_LANCZOS_STEPS)
    Q = np.zeros((c, kmax + 1, n), dtype=E.dtype)
    q = gen.standard_normal((c, n))
    Q[:, 0] = q / np.linalg.norm(q, axis=1, keepdims=True)
    alpha = np.zeros((c, kmax))
    beta = np.zeros((c, kmax))
    out = np.full(c, np.nan)
    low = np.zeros(c)
    active = np.ones(c, dtype=bool)
    frac = np.arange(1, _GRID) / (_GRID - 1)
    for k in range(kmax):
        Qk = Q[:, :k + 1]
        if packed:                           # half the memory traffic of a full product
            w = _spmv(n, 1.0, E[0], Q[0, k])[None]
        elif active.all():
            w = np.matmul(E, Q[:, k, :, None])[..., 0]
        else:                                # certified draws stop costing matrix products
            w = np.zeros((c, n), dtype=E.dtype)
            for i in np.flatnonzero(active):
                np.dot(E[i], Q[i, k], out=w[i])
        h = np.matmul(Qk, w[..., None])
        alpha[:, k] = h[:, k, 0]
        # full reorthogonalization, twice (classical Gram-Schmidt, "twice is enough")
        w -= np.matmul(Qk.transpose(0, 2, 1), h)[..., 0]
        w -= np.matmul(Qk.transpose(0, 2, 1), np.matmul(Qk, w[..., None]))[..., 0]
        beta[:, k] = np.linalg.norm(w, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            Q[:, k + 1] = np.where(beta[:, k, None] > 0, w / beta[:, k, None], 0.0)
        steps = k + 1
        if steps != kmax and (steps < first_check or (steps - first_check) % _CHECK_EVERY):
            continue
        idx = np.flatnonzero(active)
        a, bt, mg = alpha[idx], beta[idx], margin[idx]
        ext = _tridiagonal_extremes(a, bt, steps)
        theta = np.maximum(-ext[:, 0], ext[:, 1])
        # levels between theta and the top (1 + NORM_RTOL)(theta - mg) - mg, so that the
        # returned level + mg stays below (1 + NORM_RTOL) ||E||
        top = np.maximum((1.0 + NORM_RTOL) * (theta - mg) - mg, theta)
        grid = theta[:, None] + (top - theta)[:, None] * frac[None, :]
        # the smallest level from which every grid level passes (K_k is monotone there);
        # certified when the top level passes
        good = np.logical_and.accumulate(_passes(grid, a, bt, steps, limit)[:, ::-1],
                                         axis=1)[:, ::-1]
        ok = good[:, -1]
        if ok.any():
            out[idx[ok]] = grid[ok, np.argmax(good[ok], axis=1)] + mg[ok]
        if below > 0:
            # or certified at ``below`` (a level at least theta): enough for the quantile
            lev = below - mg
            cand = ~ok & (lev >= theta)
            if cand.any():
                passed = _passes(lev[cand, None], a[cand], bt[cand], steps, limit)[:, 0]
                hit = np.flatnonzero(cand)[passed]
                out[idx[hit]] = below
                ok[hit] = True
        if ok.any():
            low[idx[ok]] = np.maximum(theta[ok] - mg[ok], 0.0)
            active[idx[ok]] = False
        if not active.any():
            break
    return out, low, steps


def _packed(Delta: np.ndarray) -> np.ndarray:
    """The symmetric matrices Delta (b, n, n) in BLAS packed storage, in the working
    precision, shape (b, n (n + 1)/2): the upper triangle column by column (for a
    symmetric matrix, the lower triangle row by row)."""
    b, n = Delta.shape[0], Delta.shape[1]
    out = np.empty((b, n * (n + 1) // 2), dtype=_WORK)
    start = 0
    for i in range(n):
        out[:, start:start + i + 1] = Delta[:, i, :i + 1]
        start += i + 1
    return out


def certified_sign_norms(flat: np.ndarray, eps: np.ndarray, n: int, gen: np.random.Generator,
                         on_chunk: Callable[[int], Any] | None = None,
                         quantile: float | None = None) -> np.ndarray:
    """Upper bounds nu_d of ||E_d||_2, E_d = sum_j eps_dj Delta_j, for each row d of eps.

    ``flat`` is Delta reshaped to (b, n*n).  Guarantee (module docstring): up to rounding,
    nu_d >= ||E_d|| for every d at once except with probability FAILURE_PROBABILITY over
    the start vectors (drawn from ``gen``), and nu_d <= (1 + NORM_RTOL) ||E_d||.  With
    ``quantile`` = q the second inequality is relaxed to what the q-quantile of the norms
    (``numpy.quantile``, linear interpolation) needs: nu_d <= max((1 + NORM_RTOL)
    ||E_d||, L) with L a certified lower bound of the order statistic below that
    quantile, so that quantile(nu) lies between quantile(||E||) and (1 + NORM_RTOL)
    times it (module docstring).  The sign sums are formed and iterated in float32,
    whose rounding is covered by a margin 4 u32 ((sqrt(n) + 1) ||E_d||_F + (b + 1)
    sum_j ||Delta_j||_F) added to every level (u32 the float32 unit round-off: four
    times the usual rounding of a matrix-vector product and of forming the sum; ~1e-3
    of ||E_d|| or less for n <= 2000, b = 16); a sum for which that margin is not below
    NORM_RTOL/4 of the lower estimate ||E_d||_F / sqrt(n) (a near cancellation) is
    decomposed densely in float64.
    ``on_chunk(k)`` is called after each chunk of k draws.
    """
    D = eps.shape[0]
    out = np.empty(D)
    if n == 1:
        out[:] = np.abs(eps @ flat[:, 0])
        if on_chunk is not None:
            on_chunk(D)
        return out
    delta = FAILURE_PROBABILITY / D
    t = float(special.betaincinv(0.5, 0.5 * (n - 1), delta))
    limit = 1.0 / t
    size = _WORK.itemsize * n * n
    chunk = int(max(1, min(_MAX_CHUNK, D, _CHUNK_BYTES // size)))
    # a matrix too large for the cache budget: a chunk is formed together (one pass over
    # the b deviations) and iterated one draw at a time (its matrix then stays in cache)
    one_by_one = chunk == 1
    if one_by_one:
        chunk = int(max(1, min(_MAX_CHUNK, D, _FORM_BYTES // size)))
    gram = flat @ flat.T                      # <Delta_i, Delta_j>: ||E_d||_F^2 = eps G eps
    fro_all = np.sqrt(np.maximum(np.einsum("di,ij,dj->d", eps, gram, eps), 0.0))
    total = float(np.sum(np.sqrt(np.maximum(np.diag(gram), 0.0))))   # sum_j ||Delta_j||_F
    floor = _ROUNDING * total
    # the rounding of forming E_d in float32 and of a float32 matrix-vector product, x4
    b = flat.shape[0]
    u32 = float(np.finfo(_WORK).eps)
    margin_all = 4.0 * u32 * ((math.sqrt(n) + 1.0) * fro_all + (b + 1.0) * total)
    dense = margin_all > 0.25 * NORM_RTOL * fro_all / math.sqrt(n)
    # with a quantile: the largest sign sums first (by Frobenius norm), so that the lower
    # bound L of the order statistic x_(k), k = floor(q (D - 1)) -- the (D - k)-th largest
    # certified lower bound -- is known early and the smaller sums stop once below it
    if quantile is None:
        order, need = np.arange(D), 0
        bounds = list(range(0, D, chunk)) + [D]
    else:
        order = np.argsort(-fro_all, kind="stable")
        need = D - math.floor(quantile * (D - 1))
        # a first chunk of about 2 need sums gives L; the others stop at it
        first = min(D, chunk, 2 * need)
        bounds = [0] + list(range(first, D, chunk)) + [D]
    flat_w = _packed(flat.reshape(b, n, n)) if one_by_one else flat.astype(_WORK)
    lows: list[float] = []
    first_check = _FIRST_CHECK
    for start, stop in itertools.pairwise(bounds):
        sel = order[start:stop]
        rows = eps[sel]
        E = rows.astype(_WORK) @ flat_w
        if not one_by_one:
            E = E.reshape(-1, n, n)
        fro = fro_all[sel]
        nu = np.zeros(len(rows))
        live = (fro > floor) & ~dense[sel]
        for i in np.flatnonzero((fro > floor) & dense[sel]):   # near cancellation: float64
            w = np.linalg.eigvalsh((rows[i] @ flat).reshape(n, n))
            nu[i] = max(abs(w[0]), abs(w[-1]))
        groups = ([[i] for i in np.flatnonzero(live)] if one_by_one
                  else [np.flatnonzero(live)] if live.any() else [])
        for g in groups:
            below = sorted(lows, reverse=True)[need - 1] if need and len(lows) >= need else 0.0
            Eg = E[g[0]:g[0] + 1] if one_by_one else E[live] if not live.all() else E
            nu[g], low, steps = _lanczos_norms(Eg, gen, limit, margin_all[sel][g], below,
                                               first_check)
            lows.extend(low[np.isfinite(nu[g])])
            if one_by_one:      # the next (similar, smaller) sum is checked from about here
                first_check = max(_FIRST_CHECK, steps - 2 * _CHECK_EVERY)
        for i in np.flatnonzero(live & ~np.isfinite(nu)):      # not certified: dense
            w = np.linalg.eigvalsh((rows[i] @ flat).reshape(n, n))
            nu[i] = max(abs(w[0]), abs(w[-1]))
            lows.append(nu[i])
        out[sel] = nu
        if on_chunk is not None:
            on_chunk(len(rows))
    return out


def bootstrap_bound(Delta: np.ndarray, counts: np.ndarray, *, confidence: float, draws: int,
                    rng: Any, exact: bool = False,
                    on_chunk: Callable[[int], Any] | None = None) -> float:
    """The error bar from the batch deviations Delta_j = S_j - n_j M (b, n, n).

    The ``confidence``-quantile over ``draws`` sign vectors of
    ||sum_j eps_j Delta_j|| sqrt(b/(b-1)) / R, times t_{b-1}/z at the two-sided level
    (1 + confidence)/2.  Norms certified (:func:`certified_sign_norms`) or, with
    ``exact=True`` (the reference), by dense eigendecompositions; the signs are the same.
    ``Delta`` is not modified; ``counts`` are the n_j (float).
    """
    b, n = Delta.shape[0], Delta.shape[1]
    if b < 2:
        raise InvalidParameterError("the error bar needs at least two non-empty batches")
    gen = as_rng(rng)
    eps = sign_draws(gen, b, draws)
    flat = Delta.reshape(b, -1)
    if exact:
        norms = exact_sign_norms(flat, eps, n)
        if on_chunk is not None:
            on_chunk(draws)
    else:
        norms = certified_sign_norms(flat, eps, n, gen, on_chunk, quantile=confidence)
    R = float(np.sum(counts))
    norms *= math.sqrt(b / (b - 1.0)) / R
    q = float(np.quantile(norms, confidence))
    two_sided = 0.5 * (1.0 + confidence)
    return q * float(special.stdtrit(b - 1, two_sided) / special.ndtri(two_sided))
