"""The Monte-Carlo engine shared by the DEQ and explicit-network samplers.

Realizations r = 0, 1, ... each draw their weights from the r-th child of one
``numpy.random.SeedSequence`` (spawned lazily, so a huge realization budget costs nothing up
front) and return their kernel matrices; the engine keeps per-batch sums, stops early once
the Monte-Carlo error bar meets a target, and turns the batch means into an operator-norm
error bar (docs/theory.md §8).  Result containers: :class:`SampledKernel`,
:class:`SampledNTK`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from scipy import stats

from rmt_deq._validation import as_rng, check_positive_int
from rmt_deq.errors import InvalidParameterError

__all__ = ["SamplingProgress", "SampledKernel", "SampledNTK", "mc_error_bound"]


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
        R = check_positive_int(realizations, "realizations")
        b = check_positive_int(batches, "batches")
        if b < 2:
            raise InvalidParameterError("batches must be >= 2 (the error bar needs two)")
        b = min(b, R) if R >= 2 else 2
        conf = _check_unit_interval("confidence", confidence)
        draws = check_positive_int(draws, "draws")
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
        every = b if check_every is None else check_positive_int(check_every, "check_every")
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
