"""Sampled (finite-width, Monte-Carlo) CK and NTK of the DEQ, with an honest error bar.

For R independent weight draws (A from a family of :mod:`rmt_deq.networks.weights`, B and v
Gaussian) at width m, each realization solves the DEQ for all samples at once
(:mod:`rmt_deq.networks.deq`) and contributes

* the CK Gram matrix Z^T Z (z_i = phi_c(u_i)/sqrt(m)),
* for the NTK, with g_i = (I - J_i^T)^{-1} D_i v/sqrt(m) from implicit differentiation,
  the groups  v: Z^T Z,  A: sa (g_i.g_j)(z_i.z_j),  B: sb (g_i.g_j)(x_i.x_j)
  (theory.md section 2),

and the result is their average.  Its expectation is the width-m kernel; as m grows it
tends to the exact infinite-width kernel of :mod:`rmt_deq.kernels.exact` (error ~ m^{-1/2} at
fixed R).

Monte-Carlo error
-----------------
Realization r goes to batch r mod b.  With the batch sums S_j (n_j realizations each) and
the mean M, the matrices Delta_j = S_j - n_j M carry the fluctuation.  The error
||M - E M|| (operator norm, E over the weights at this width) is bounded at the requested
confidence by a multiplier bootstrap: the ``confidence``-quantile over random signs eps of
||sum_j eps_j Delta_j|| sqrt(b/(b-1)) / R, times t_{b-1}/z (the Student correction for a
scale estimated from b batches).  When the fluctuation is a bulk (a large random matrix
whose norm concentrates) the sign sums have the right norm and the t factor makes the bar
slightly conservative; when it is dominated by a few random directions the sign sums
reproduce its Gaussian tail and the t factor accounts for the b - 1 degrees of freedom.
The finite-width bias E M - (infinite-width kernel) = O(1/m) is *not* part of this error.

Control variate (CK only, ``control_variate=True``): each realization contributes
Z^T Z - L + E[L], with L the Gram matrix of the input injection's features
phi_c(sqrt(sb) B X)/sqrt(m) of the same draw and E[L] its exact expectation (a bivariate
Gaussian expectation at covariance sb X^T X, exact at every width since B is Gaussian for
every family).  Unbiased for the same expectation, with a smaller error bar.

Reproducibility: realization r uses the r-th child of the seed's ``SeedSequence`` (the
same weights whatever R, the chunking or early stopping; the children are built when
needed, so a large R costs nothing until it is used); the same seed and options give the
same matrix bit for bit.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from scipy import stats

from rmt_deq._validation import (as_rng, check_choice, check_data_range, check_groups, check_memory,
                          check_options, check_positive_int, memory_budget)
from rmt_deq.activations import ActivationLike
from rmt_deq.networks.deq import (SolveRecord, _chunks, _DEQSystem, _Elementwise, _prepare,
                  _solver_options, sample_deq_weights)
from rmt_deq.errors import ConvergenceError, InvalidParameterError
from rmt_deq.fixed_point.four_equations import FixedPointSolution
from rmt_deq.networks.weights import check_dtype, check_family

__all__ = ["SamplingProgress", "SamplingInfo", "SampledKernel", "SampledNTK", "sampled_ck",
           "sampled_ntk", "sampled_kernel", "mc_error_bound", "NTK_GROUPS"]

NTK_GROUPS = ("v", "A", "B")


# ----------------------------------------------------------------------------------------
# result types
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplingProgress:
    """Passed to the ``progress`` callback after each realization.

    Attributes
    ----------
    realization : int
        Realizations completed.
    realizations : int
        Realizations requested (the most that will run).
    elapsed : float
        Seconds since the start.
    forward_iterations : int
        Forward-solver iterations of this realization.
    adjoint_iterations : int or None
        Adjoint-solver iterations (NTK only).
    relative_error : float or None
        The Monte-Carlo error estimate relative to ||mean||, when it was computed after
        this realization (early-stopping checks), else None.
    """

    realization: int
    realizations: int
    elapsed: float
    forward_iterations: int
    adjoint_iterations: int | None
    relative_error: float | None


@dataclass(frozen=True)
class SamplingInfo:
    """Diagnostics shared by the sampled CK and NTK.

    Attributes
    ----------
    width : int
        m.
    realizations : int
        Realizations averaged (fewer than requested if stopped early).
    requested : int
        Realizations requested.
    family, dtype, activation : str
    sa, sb, tau0, tau, centring : float
        The DEQ and its centring (four-equation solution at tau0).
    confidence : float
        Confidence of the Monte-Carlo error bars.
    batches : int
        Number of batches b of the error estimate.
    draws : int
        Bootstrap sign draws per estimate.
    stopped_early : bool
        Whether ``target_error`` was reached before ``realizations``.
    target_error : float or None
    error_history : tuple of (int, float)
        (realizations, relative MC error) at each early-stopping check.
    forward : tuple of SolveRecord
        Forward-solve record of each realization.
    adjoint : tuple of SolveRecord
        Adjoint-solve record of each realization (empty for the CK).
    chunk_size : int
        Columns solved together.
    elapsed : float
        Wall time in seconds.
    gemm_flops : float
        Floating-point operations of the matrix products (forward and adjoint iterations,
        B X, the Gram matrices), counted from the iteration numbers.
    control_variate : bool
        Whether the CK was averaged with the input-injection control variate (see
        :func:`sampled_ck`).
    tau0_source : str
        Where tau0 came from (:func:`rmt_deq.data.conventions.data_scale`).
    """

    width: int
    realizations: int
    requested: int
    family: str
    dtype: str
    activation: str
    sa: float
    sb: float
    tau0: float
    tau: float
    centring: float
    confidence: float
    batches: int
    draws: int
    stopped_early: bool
    target_error: float | None
    error_history: tuple
    forward: tuple = field(repr=False)
    adjoint: tuple = field(repr=False)
    chunk_size: int = 0
    elapsed: float = 0.0
    gemm_flops: float = 0.0
    control_variate: bool = False
    tau0_source: str = ""

    @property
    def iterations(self) -> int:
        """Largest forward iteration count over the realizations."""
        return max(r.iterations for r in self.forward)


@dataclass(frozen=True, eq=False)
class SampledKernel:
    """Monte-Carlo average of the CK Gram matrix Z^T Z over weight draws.

    Attributes
    ----------
    matrix : ndarray, shape (n, n), float64
        The average (``G`` is an alias, as in :class:`rmt_deq.kernels.exact.ExactKernel`).
    mc_error : float
        Bound on ||matrix - E matrix||_2 holding with probability about
        ``info.confidence`` (inf with a single realization).
    mc_error_relative : float
        ``mc_error / ||matrix||_2``.
    info : SamplingInfo
    """

    matrix: np.ndarray = field(repr=False)
    mc_error: float
    mc_error_relative: float
    info: SamplingInfo

    @property
    def G(self) -> np.ndarray:
        return self.matrix

    @property
    def n(self) -> int:
        return int(self.matrix.shape[0])


@dataclass(frozen=True, eq=False)
class SampledNTK:
    """Monte-Carlo average of the empirical NTK over weight draws, split by group.

    Attributes
    ----------
    total : ndarray, shape (n, n), float64
        Sum of the selected groups (``matrix`` is an alias).
    groups : dict of str -> ndarray, shape (n, n)
        The selected groups: "v" (Z^T Z), "A" (sa (g.g)(z.z)), "B" (sb (g.g)(x.x)).
    selected : tuple of str
    ck : ndarray, shape (n, n)
        The sampled CK Z^T Z (always computed).
    mc_error, mc_error_relative : float
        Error bar of ``total`` (see :class:`SampledKernel`).
    group_errors : dict of str -> float
        Absolute error bar of each selected group and of the CK (key "ck").
    info : SamplingInfo
    """

    total: np.ndarray = field(repr=False)
    groups: Mapping[str, np.ndarray] = field(repr=False)
    selected: tuple
    ck: np.ndarray = field(repr=False)
    mc_error: float
    mc_error_relative: float
    group_errors: Mapping[str, float]
    info: SamplingInfo

    @property
    def matrix(self) -> np.ndarray:
        return self.total

    @property
    def n(self) -> int:
        return int(self.total.shape[0])


# ----------------------------------------------------------------------------------------
# Monte-Carlo error bar
# ----------------------------------------------------------------------------------------
def _opnorm_sym(M: np.ndarray) -> float:
    """Operator norm of a symmetric matrix.

    LAPACK (all eigenvalues) for n <= 256; above, Lanczos for the eigenvalue of largest
    modulus (about 2x faster at n = 400, 3x at n = 800, to ~1e-12 relative), falling
    back to LAPACK if it does not converge.
    """
    n = M.shape[0]
    if n > 256:
        from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh

        v0 = np.ones(n) / math.sqrt(n)
        try:
            w = eigsh(M, k=1, which="LM", v0=v0, tol=1e-10, return_eigenvectors=False)
            return float(abs(w[0]))
        except (ArpackNoConvergence, ArpackError):
            pass
    w = np.linalg.eigvalsh(M)
    return float(max(abs(w[0]), abs(w[-1])))


def mc_error_bound(batch_sums: np.ndarray, counts: Any, *, confidence: float = 0.95,
                   draws: int = 200, rng: Any = 0) -> tuple[float, float]:
    """Operator-norm Monte-Carlo error bar of a mean from batch sums.

    Parameters
    ----------
    batch_sums : ndarray, shape (b, n, n)
        S_j = sum of the realizations in batch j (symmetric matrices).
    counts : array_like of int, shape (b,)
        n_j, realizations per batch (>= 1 each, b >= 2).
    confidence : float
        Probability that ||mean - E mean||_2 lies below the returned bound.
    draws : int
        Random sign vectors of the multiplier bootstrap.
    rng : int or Generator
        Seed of the signs (the bound is deterministic given it).

    Returns
    -------
    bound : float
        The error bar (absolute, operator norm).
    norm : float
        ||mean||_2.
    """
    S = np.asarray(batch_sums, float)
    cnt = np.asarray(counts, float)
    b = S.shape[0]
    if b < 2 or np.any(cnt < 1):
        raise InvalidParameterError("the error bar needs at least two non-empty batches")
    R = float(cnt.sum())
    M = S.sum(axis=0) / R
    norm = _opnorm_sym(M)
    Delta = S - cnt[:, None, None] * M[None]
    gen = as_rng(rng)
    scale = math.sqrt(b / (b - 1.0)) / R
    flat = Delta.reshape(b, -1)
    norms = np.empty(draws)
    for d in range(draws):
        eps = gen.choice(np.array([-1.0, 1.0]), size=b)
        E = (eps @ flat).reshape(M.shape)
        norms[d] = _opnorm_sym(E) * scale
    q = float(np.quantile(norms, confidence))
    two_sided = 0.5 * (1.0 + confidence)
    q *= float(stats.t.ppf(two_sided, b - 1) / stats.norm.ppf(two_sided))
    return q, norm


class _Accumulator:
    """Batch sums of named n x n matrices, realization r in batch r mod b."""

    def __init__(self, names: Iterable[str], n: int, batches: int) -> None:
        self.names = tuple(names)
        self.b = batches
        self.S = {k: np.zeros((batches, n, n)) for k in self.names}
        self.counts = np.zeros(batches, dtype=np.int64)
        self.R = 0

    def add(self, parts: Mapping[str, np.ndarray]) -> None:
        j = self.R % self.b
        for k in self.names:
            self.S[k][j] += parts[k]
        self.counts[j] += 1
        self.R += 1

    def sums(self, names: Iterable[str]) -> np.ndarray:
        names = tuple(names)
        out = self.S[names[0]].copy()
        for k in names[1:]:
            out += self.S[k]
        return out

    def mean(self, names: Iterable[str]) -> np.ndarray:
        return self.sums(names).sum(axis=0) / self.R

    def error(self, names: Iterable[str], confidence: float, draws: int,
              seed: int) -> tuple[float, float]:
        used = int(min(self.R, self.b))
        if used < 2:
            M = self.mean(names)
            return math.inf, _opnorm_sym(M)
        return mc_error_bound(self.sums(names)[:used], self.counts[:used],
                              confidence=confidence, draws=draws,
                              rng=np.random.default_rng([seed, self.R]))


# ----------------------------------------------------------------------------------------
# the engine
# ----------------------------------------------------------------------------------------
def _check_unit_interval(name: str, x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number in (0, 1), got {x!r}") from None
    if not 0.0 < v < 1.0:
        raise InvalidParameterError(f"{name} must be in (0, 1), got {x!r}")
    return v


@dataclass(frozen=True)
class _MCSettings:
    """Validated Monte-Carlo options shared by the DEQ and explicit-network samplers."""

    R: int
    batches: int
    confidence: float
    draws: int
    target: float | None
    every: int
    progress: Callable[[SamplingProgress], Any] | None

    @classmethod
    def make(cls, realizations: Any, batches: Any, confidence: Any, draws: Any,
             target_error: Any, check_every: Any, progress: Any) -> "_MCSettings":
        R = check_positive_int("realizations", realizations)
        b = check_positive_int("batches", batches)
        if b < 2:
            raise InvalidParameterError("batches must be >= 2 (the error bar needs two)")
        b = min(b, R) if R >= 2 else 2
        conf = _check_unit_interval("confidence", confidence)
        draws = check_positive_int("draws", draws)
        target = None
        if target_error is not None:
            try:
                target = float(target_error)
            except (TypeError, ValueError):
                raise InvalidParameterError(
                    f"target_error must be a number, got {target_error!r}") from None
            if not (math.isfinite(target) and target > 0):
                raise InvalidParameterError(f"target_error must be > 0, got {target_error!r}")
        if check_every is not None and target is None:
            raise InvalidParameterError(
                "check_every sets how often the early stop is checked: it needs "
                "target_error (or leave it out)")
        every = b if check_every is None else check_positive_int("check_every", check_every)
        if progress is not None and not callable(progress):
            raise InvalidParameterError("progress must be a callable (or None)")
        return cls(R, b, conf, draws, target, every, progress)


def _monte_carlo(realize: Callable[[int], tuple[dict, int, int | None]],
                 names: tuple[str, ...], early: tuple[str, ...], n: int, mc: _MCSettings,
                 seed: int, t_start: float) -> tuple[_Accumulator, list, bool]:
    """Average ``realize(r)`` over r = 0..R-1 with batch sums, progress and early stop.

    ``realize(r)`` returns (parts: name -> n x n matrix, forward iterations, adjoint
    iterations or None).
    """
    acc = _Accumulator(names, n, mc.batches)
    history: list[tuple[int, float]] = []
    for r in range(mc.R):
        parts, it_f, it_a = realize(r)
        acc.add(parts)
        done = r + 1
        rel = None
        if (mc.target is not None and done >= mc.batches and done < mc.R
                and done % mc.every == 0):
            err, nrm = acc.error(early, mc.confidence, mc.draws, seed)
            rel = err / nrm if nrm > 0 else math.inf
            history.append((done, rel))
        if mc.progress is not None:
            mc.progress(SamplingProgress(
                realization=done, realizations=mc.R, elapsed=time.perf_counter() - t_start,
                forward_iterations=it_f, adjoint_iterations=it_a, relative_error=rel))
        if rel is not None and rel <= mc.target:
            return acc, history, True
    return acc, history, False


class _Children:
    """Generator of realization r, built on demand: the (r + 1)-th child of a SeedSequence.

    ``SeedSequence.spawn(R + 1)[r + 1]`` is the sequence with the same entropy and spawn
    key ``parent.spawn_key + (r + 1,)``; building it directly gives the same generator
    bit for bit, at O(1) cost and memory whatever the number R of realizations (nothing
    is done before the first realization).
    """

    def __init__(self, ss: np.random.SeedSequence) -> None:
        self._ss = ss

    def __getitem__(self, r: int) -> np.random.Generator:
        ss = self._ss
        child = np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (int(r) + 1,),
                                       pool_size=ss.pool_size)
        return np.random.default_rng(child)


def _seeds(rng: Any, R: int) -> tuple[_Children, int]:
    """Generators of realizations 0..R-1 (built lazily) and the seed of the bootstrap signs.

    An int seed s gives the children of ``SeedSequence(s)`` (child r + 1 for realization
    r, child 0 for the signs), exactly those of ``SeedSequence(s).spawn(R + 1)``; a
    Generator is asked for fresh entropy (so repeated calls with one Generator give new
    draws); None uses fresh OS entropy.
    """
    if isinstance(rng, np.random.Generator):
        ss = np.random.SeedSequence(rng.integers(0, 2 ** 63, size=4).tolist())
    else:
        as_rng(rng)                                  # validates ints / None
        ss = np.random.SeedSequence(None if rng is None else int(rng))
    first = np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (0,),
                                   pool_size=ss.pool_size)
    seed = int(np.random.default_rng(first).integers(2 ** 62))
    return _Children(ss), seed


def _run(X: Any, activation: ActivationLike, sa: float, sb: float | None, *, ntk: bool,
         groups: tuple[str, ...], width: Any, family: str, rng: Any, dtype: Any,
         tau0: Any, solution: FixedPointSolution | None, method: str, tol: Any,
         max_iter: Any, memory: Any, chunk_size: Any, max_memory: Any,
         mc: _MCSettings, control_variate: bool = False, labels: Any = None) -> tuple:
    t_start = time.perf_counter()
    if not isinstance(control_variate, (bool, np.bool_)):
        raise InvalidParameterError(
            f"control_variate must be True or False, got {control_variate!r}")
    if control_variate and ntk:
        raise InvalidParameterError("the control variate is implemented for the CK only")
    Xa, act, sa_f, sb_f, sol, tau0_source = _prepare(X, activation, sa, sb, tau0, solution,
                                                     labels)
    m = check_positive_int("width", width)
    family = check_family(family)
    dt = check_dtype(dtype)
    check_data_range(Xa, dt)
    if family == "symmetric" and method == "auto":
        method = "anderson"          # real Jacobian spectrum: Anderson always pays
    opts = _solver_options(method, tol, max_iter, memory, dt)
    budget = memory_budget(max_memory)

    p, n = Xa.shape
    names = ("ck",) + tuple(g for g in ("A", "B") if ntk and g in groups)
    early = tuple("ck" if g == "v" else g for g in groups) if ntk else ("ck",)
    # working set: weights, features (and gradients), accumulators; the rest per column
    isz = dt.itemsize
    fixed = isz * (m * m + m * p + p * n + m * n * (2 if ntk or control_variate else 1))
    fixed += 8 * n * n * (len(names) * (mc.batches + 1) + 2)
    check_memory(fixed, budget, f"the weights, features and {mc.batches} batch accumulators",
                 "lower batches, use float32, or raise max_memory")
    per_col = isz * m * (6 + 2 * opts["memory"]) + (isz * m if ntk else 0)
    if chunk_size is None:
        size = int(max(1, min(n, (budget - fixed) // per_col)))
    else:
        size = check_positive_int("chunk_size", chunk_size)
    chunks = _chunks(n, size)
    Xs = (math.sqrt(sb_f) * Xa).astype(dt)
    XtX = Xa.T @ Xa if "B" in names else None
    P0 = EL = None
    if control_variate:
        from rmt_deq.moments.bivariate import PairExpectations

        # E[L] for L = Phi0^T Phi0, Phi0 = phi_c(sqrt(sb) B X)/sqrt(m): the rows of
        # sqrt(sb) B X are iid N(0, sb X^T X) whatever the family of A, so E[L] is the
        # bivariate Gaussian expectation at that covariance -- exact at every width m
        S0 = sb_f * (Xa.T @ Xa)
        EL = PairExpectations(act, np.diagonal(S0).copy(), float(sol.centring)
                              ).evaluate(S0)[0]
        P0 = np.empty((m, n), dtype=dt)
    elem = _Elementwise(act, dt)
    c = float(sol.centring)
    inv = dt.type(1.0 / math.sqrt(m))
    s_a = dt.type(math.sqrt(sa_f / m))
    children, seed = _seeds(rng, mc.R)
    Z = np.empty((m, n), dtype=dt)
    Gm = np.empty((m, n), dtype=dt) if ntk else None
    fwd_recs: list[SolveRecord] = []
    adj_recs: list[SolveRecord] = []
    flops = [0.0]

    def _in_realization(exc: ConvergenceError, r: int, cols: slice) -> ConvergenceError:
        """The solver's error, located (realization, columns), same residual history."""
        err = ConvergenceError(
            f"realization {r} of {mc.R} (family {family}, m = {m}, {act.name}, "
            f"sa = {sa_f:g}, samples {cols.start}..{cols.stop - 1}): {exc}")
        err.residuals = exc.residuals
        return err

    def realize(r: int) -> tuple[dict, int, int | None]:
        W = sample_deq_weights(m, p, family=family, rng=children[r], dtype=dt)
        As = W.A
        As *= s_a                                   # owned: scale in place
        system = _DEQSystem(As, W.B, W.v, Xs, elem, c, opts)
        recs_f, recs_a = [], []
        for cols in chunks:
            try:
                U, phi, rec = system.forward(
                    cols, None if P0 is None else P0[:, cols.start:cols.stop])
            except ConvergenceError as exc:
                raise _in_realization(exc, r, cols) from None
            phi -= system.c
            phi *= inv
            Z[:, cols] = phi
            recs_f.append(rec)
            k = cols.stop - cols.start
            flops[0] += 2.0 * m * m * k * rec.iterations + 2.0 * m * p * k
            if ntk:
                try:
                    gc, reca = system.adjoint(U)
                except ConvergenceError as exc:
                    raise _in_realization(exc, r, cols) from None
                Gm[:, cols] = gc
                recs_a.append(reca)
                flops[0] += 2.0 * m * m * k * reca.iterations
        fwd_recs.append(SolveRecord.merge(recs_f))
        K = (Z.T @ Z).astype(np.float64)
        flops[0] += 2.0 * m * n * n
        parts = {"ck": K}
        if P0 is not None:
            np.subtract(P0, system.c, out=P0)           # in place (P0 is not rebound)
            np.multiply(P0, inv, out=P0)
            K -= (P0.T @ P0).astype(np.float64)
            K += EL
            flops[0] += 2.0 * m * n * n
        if ntk:
            adj_recs.append(SolveRecord.merge(recs_a))
            GG = (Gm.T @ Gm).astype(np.float64)
            flops[0] += 2.0 * m * n * n
            if "A" in names:
                parts["A"] = sa_f * GG * K
            if "B" in names:
                parts["B"] = sb_f * GG * XtX
        return (parts, fwd_recs[-1].iterations,
                adj_recs[-1].iterations if ntk else None)

    acc, history, stopped = _monte_carlo(realize, names, early, n, mc, seed, t_start)

    def info() -> SamplingInfo:
        return SamplingInfo(
            width=m, realizations=acc.R, requested=mc.R, family=family, dtype=dt.name,
            activation=act.name, sa=sa_f, sb=sb_f, tau0=float(sol.tau0), tau=float(sol.tau),
            centring=c, confidence=mc.confidence, batches=mc.batches, draws=mc.draws,
            stopped_early=stopped, target_error=mc.target, error_history=tuple(history),
            forward=tuple(fwd_recs), adjoint=tuple(adj_recs), chunk_size=size,
            elapsed=time.perf_counter() - t_start, gemm_flops=flops[0],
            control_variate=bool(control_variate), tau0_source=tau0_source)

    return acc, info, seed


def _kernel_result(acc: _Accumulator, mc: _MCSettings, seed: int,
                   info: Callable[[], Any]) -> SampledKernel:
    err, nrm = acc.error(("ck",), mc.confidence, mc.draws, seed)
    return SampledKernel(matrix=acc.mean(("ck",)), mc_error=err,
                         mc_error_relative=err / nrm if nrm > 0 else math.inf, info=info())


def _ntk_result(acc: _Accumulator, mc: _MCSettings, seed: int, key: Mapping[str, str],
                sel: tuple[str, ...], info: Callable[[], Any]) -> SampledNTK:
    """Assemble a SampledNTK; ``key`` maps group names to accumulator names."""
    def error(names: tuple[str, ...]) -> tuple[float, float]:
        return acc.error(names, mc.confidence, mc.draws, seed)

    parts = {g: acc.mean((key[g],)) for g in sel}
    total = acc.mean(tuple(key[g] for g in sel))
    err, nrm = error(tuple(key[g] for g in sel))
    gerr = {g: error((key[g],))[0] for g in sel} if len(sel) > 1 else {sel[0]: err}
    ck = parts["v"] if "v" in parts else acc.mean(("ck",))
    gerr["ck"] = gerr["v"] if "v" in gerr else error(("ck",))[0]
    return SampledNTK(total=total, groups=parts, selected=sel, ck=ck, mc_error=err,
                      mc_error_relative=err / nrm if nrm > 0 else math.inf,
                      group_errors=gerr, info=info())


def sampled_ck(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    width: int,
    realizations: int = 1,
    family: str = "gaussian",
    rng: Any = None,
    dtype: Any = "float64",
    tau0: float | None = None,
    labels: Any = None,
    solution: FixedPointSolution | None = None,
    method: str = "auto",
    tol: float | None = None,
    max_iter: int = 500,
    memory: int = 5,
    chunk_size: int | None = None,
    max_memory: float | None = None,
    batches: int = 16,
    confidence: float = 0.95,
    draws: int = 200,
    target_error: float | None = None,
    check_every: int | None = None,
    progress: Callable[[SamplingProgress], Any] | None = None,
    control_variate: bool = False,
) -> SampledKernel:
    """Monte-Carlo average of the DEQ's CK Gram matrix Z^T Z at width m.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).
    activation : name, Activation or callable
        phi (centred at the four-equation scale, as the exact kernels).
    sa, sb : float
        Weight variances (sb defaults to 1 - sa).
    width : int
        m, the number of neurons.
    realizations : int
        R, independent weight draws averaged (the most, with ``target_error``).
    family : {"gaussian", "orthogonal", "symmetric"}
        Family of the recurrent weights A (:mod:`rmt_deq.networks.weights`).
    rng : int or numpy.random.Generator, optional
        Seed; realization r uses the r-th child of its SeedSequence.
    dtype : {"float64", "float32"}
        Working precision of the weights, the solves and the Gram products (the average
        is accumulated in float64).
    tau0 : float, optional
        Data scale sqrt(tr C°/p) fixing the centring; default as
        :func:`rmt_deq.kernels.exact.exact_ck` (:func:`rmt_deq.data.conventions.data_scale`: the
        plug-in estimate from ``labels``, else all samples as one class), recorded with
        its source in ``info.tau0_source``.
    labels : array_like, shape (n,), optional
        Class labels, used only for the default tau0.
    solution : FixedPointSolution, optional
        Take the centring from this four-equation solution (exclusive with tau0, labels).
    method : {"auto", "anderson", "plain"}
        Fixed-point solver (:func:`rmt_deq.networks.deq.solve_batched`); "auto" uses Anderson for
        the symmetric family and otherwise plain iteration with a switch to Anderson
        when it contracts slowly.
    tol : float, optional
        Relative residual of the solves (default 1e-7 float64, 2e-5 float32).
    max_iter, memory : int
        Solver iteration cap and Anderson history.
    chunk_size : int, optional
        Columns solved together; by default the largest that keeps the working set
        below ``max_memory``.
    max_memory : float, optional
        Bytes the working set may use (default 2 GiB).
    batches : int
        b, batches of the Monte-Carlo error estimate (at most R).
    confidence : float
        Confidence of the error bar (default 0.95).
    draws : int
        Bootstrap sign draws per error estimate.
    target_error : float, optional
        Stop early once the relative error bar mc_error/||mean|| is below this (checked
        every ``check_every`` realizations, from b realizations on).
    check_every : int, optional
        Realizations between early-stopping checks (default b).
    progress : callable, optional
        Called with a :class:`SamplingProgress` after each realization.
    control_variate : bool
        Average Z^T Z - L + E[L] instead of Z^T Z, with L = Phi0^T Phi0 the Gram matrix of
        the input injection's features Phi0 = phi_c(sqrt(sb) B X)/sqrt(m) of the same
        draw.  The rows of sqrt(sb) B X are iid N(0, sb X^T X), so E[L] is an exact
        bivariate Gaussian expectation at every width and the estimator stays unbiased
        for E[Z^T Z] (same expectation, same error-bar machinery); L is strongly
        correlated with Z^T Z (the fixed point is the injection plus the recurrent
        part), which shrinks the Monte-Carlo error (measured 2.4x in operator norm, i.e.
        ~6x fewer realizations, for relu at sa = 0.2, m = 1000, n = 400).  Costs one
        extra n x n Gram product per realization.

    Returns
    -------
    SampledKernel
        ``matrix`` (n x n, float64), ``mc_error`` (operator norm, at ``confidence``) and
        diagnostics in ``info`` (solver records per realization, timing, GEMM flops).

    Raises
    ------
    ConvergenceError
        A forward solve did not converge (e.g. weights scaled so that the DEQ has no
        attracting fixed point); it carries the residual history.
    UnknownOptionError
        Unknown family, dtype or method.
    InvalidParameterError
        Bad sizes, confidence, memory budget...

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((20, 8)) / np.sqrt(20)
    >>> K = sampled_ck(X, "relu", 0.3, width=200, realizations=4, rng=1)
    >>> K.matrix.shape, K.info.realizations
    ((8, 8), 4)
    """
    mc = _MCSettings.make(realizations, batches, confidence, draws, target_error,
                          check_every, progress)
    acc, info, seed = _run(
        X, activation, sa, sb, ntk=False, groups=(), width=width, family=family, rng=rng,
        dtype=dtype, tau0=tau0, solution=solution, method=method, tol=tol,
        max_iter=max_iter, memory=memory, chunk_size=chunk_size, max_memory=max_memory,
        mc=mc, control_variate=control_variate, labels=labels)
    return _kernel_result(acc, mc, seed, info)


def sampled_ntk(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    width: int,
    realizations: int = 1,
    groups: Iterable[str] = NTK_GROUPS,
    family: str = "gaussian",
    rng: Any = None,
    dtype: Any = "float64",
    tau0: float | None = None,
    labels: Any = None,
    solution: FixedPointSolution | None = None,
    method: str = "auto",
    tol: float | None = None,
    max_iter: int = 500,
    memory: int = 5,
    chunk_size: int | None = None,
    max_memory: float | None = None,
    batches: int = 16,
    confidence: float = 0.95,
    draws: int = 200,
    target_error: float | None = None,
    check_every: int | None = None,
    progress: Callable[[SamplingProgress], Any] | None = None,
) -> SampledNTK:
    """Monte-Carlo average of the DEQ's empirical NTK at width m, split by group.

    Each realization solves the forward fixed point and the adjoint system
    g = (I - J^T)^{-1} D v/sqrt(m) (exact gradients through the fixed point) for all
    samples, then adds Theta_v = Z^T Z, Theta_A = sa (G^T G) o (Z^T Z) and
    Theta_B = sb (G^T G) o (X^T X) (G = [g_1..g_n], o entrywise).

    Parameters
    ----------
    groups : iterable of {"v", "A", "B"}
        Groups summed into ``total`` (the published convention is ("v", "A")).
    (others)
        As in :func:`sampled_ck`; early stopping watches the error bar of ``total``.

    Returns
    -------
    SampledNTK
    """
    sel = check_groups(groups, NTK_GROUPS)
    mc = _MCSettings.make(realizations, batches, confidence, draws, target_error,
                          check_every, progress)
    acc, info, seed = _run(
        X, activation, sa, sb, ntk=True, groups=sel, width=width, family=family, rng=rng,
        dtype=dtype, tau0=tau0, solution=solution, method=method, tol=tol,
        max_iter=max_iter, memory=memory, chunk_size=chunk_size, max_memory=max_memory,
        mc=mc, labels=labels)
    return _ntk_result(acc, mc, seed, {"v": "ck", "A": "A", "B": "B"}, sel, info)


def sampled_kernel(X: Any, activation: ActivationLike, sa: float, sb: float | None = None,
                   *, kind: str = "ck", groups: Iterable[str] | None = None,
                   **options: Any) -> SampledKernel | SampledNTK:
    """The sampled CK or NTK by name (what ``rmt-deq kernel --method sampled`` runs).

    Parameters
    ----------
    kind : {"ck", "ntk"}
    groups : iterable of {"v", "A", "B"}, optional
        NTK groups (kind="ntk" only; default all three); refused with kind="ck".
    **options
        Keyword options of :func:`sampled_ck` (width, realizations, family, rng, dtype,
        tau0, labels, solution, method, tol, max_iter, memory, chunk_size, max_memory, batches,
        confidence, draws, target_error, check_every, progress, control_variate (CK
        only)); unknown ones are rejected.

    Returns
    -------
    SampledKernel or SampledNTK
        Both have ``.matrix`` (n x n).
    """
    check_choice("kind", kind, ("ck", "ntk"))
    if kind == "ck" and groups is not None:
        raise InvalidParameterError(
            "groups selects NTK parameter groups: it applies to kind='ntk' only")
    allowed = ("width", "realizations", "family", "rng", "dtype", "tau0", "labels", "solution",
               "method", "tol", "max_iter", "memory", "chunk_size", "max_memory", "batches",
               "confidence", "draws", "target_error", "check_every", "progress",
               "control_variate")
    check_options(options, allowed, "sampled_kernel")
    if "width" not in options:
        raise InvalidParameterError("sampled_kernel needs width=m")
    if kind == "ntk" and options.get("control_variate"):
        raise InvalidParameterError("control_variate is available for kind='ck' only")
    if kind == "ntk":
        options.pop("control_variate", None)
    if kind == "ck":
        return sampled_ck(X, activation, sa, sb, **options)
    return sampled_ntk(X, activation, sa, sb, groups=NTK_GROUPS if groups is None else groups,
                       **options)

