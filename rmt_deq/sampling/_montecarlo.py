"""The Monte-Carlo engine shared by the DEQ and explicit-network samplers (docs/theory.md §8).

Realizations r = 0, 1, ... each draw their weights from the r-th child of one
``numpy.random.SeedSequence`` (spawned lazily, so a huge realization budget costs nothing up
front) and return their kernel matrices; the engine keeps per-batch sums, stops early once
the Monte-Carlo error bar meets a target, and turns the batch means into an operator-norm
error bar (:func:`mc_error_bound`, the multiplier bootstrap of
:mod:`rmt_deq.sampling._bootstrap`).  The ``progress`` callback hears of every realization
and then of the final error bars (phase "error bar"), so that a progress display covers
the whole computation.  The realizations may run on a ``concurrent.futures`` executor
(:mod:`rmt_deq.sampling._parallel`): they are still added to the batch sums here, in order,
so the result does not depend on it (see :class:`MonteCarloOptions`).  The samplers'
options are dataclasses shared by all of them: :class:`MonteCarloOptions` (how to average,
where to run) and :class:`SamplerOptions` (what to draw, in which precision, within which
memory); results are
:class:`~rmt_deq.kernels.result.Kernel` with ``route="sampled"`` (:func:`_kernel_result`,
:func:`_ntk_result`).
"""
from __future__ import annotations

import math
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from rmt_deq._validation import as_rng, check_positive_int, memory_budget
from rmt_deq._xp import check_backend
from rmt_deq.errors import InvalidParameterError
from rmt_deq.kernels.result import Kernel
from rmt_deq.metrics import symmetric_operator_norm
from rmt_deq.networks.weights import check_dtype, check_family
from rmt_deq.sampling._bootstrap import bootstrap_bound
from rmt_deq.sampling._parallel import ordered_realizations

__all__ = ["SamplingProgress", "MonteCarloOptions", "SamplerOptions", "mc_error_bound",
           "DEFAULT_MAX_PENDING", "DEFAULT_DRAWS"]

#: executor tasks submitted ahead of the one being accumulated, by default
DEFAULT_MAX_PENDING = 16
#: bootstrap sign draws per error bar, by default: the quantile from 100 draws differs
#: from the one from 200 far less than the bar's own spread from b = 16 batches
#: (measured in docs/sampling.md), at half the cost
DEFAULT_DRAWS = 100


@dataclass(frozen=True)
class SamplingProgress:
    """Passed to the ``progress`` callback after each realization, then while the final
    error bars are computed.

    Attributes
    ----------
    realization : int
        Realizations completed.
    realizations : int
        Realizations requested (the most that will run).
    elapsed : float
        Seconds since the start.
    forward_iterations : int or None
        Forward-solver iterations of this realization (None in the error-bar phase).
    adjoint_iterations : int or None
        Adjoint-solver iterations (NTK only; None in the error-bar phase).
    relative_error : float or None
        The Monte-Carlo error estimate relative to ||mean||, when it was computed after
        this realization (early-stopping checks), else None.
    phase : {"realizations", "error bar"}
        "realizations" after each realization; "error bar" once they are done, while the
        error bars of the result are computed: one event before the first sign draw,
        one after each chunk of draws, the last with ``draws_done == draws_total`` (a
        single event with both 0 when there is no error bar to compute, R < 2).
    draws_done, draws_total : int
        Error-bar phase: bootstrap sign draws done, and to do over all the error bars of
        the result (``draws`` per error bar); 0 in the realizations phase.
    """

    realization: int
    realizations: int
    elapsed: float
    forward_iterations: int | None
    adjoint_iterations: int | None
    relative_error: float | None
    phase: str = "realizations"
    draws_done: int = 0
    draws_total: int = 0


def mc_error_bound(batch_sums: np.ndarray, counts: Any, *, confidence: float = 0.95,
                   draws: int = DEFAULT_DRAWS, rng: Any = 0) -> tuple[float, float]:
    """Operator-norm Monte-Carlo error bar of a mean from batch sums.

    What it estimates: with M the mean of R = sum_j n_j realizations and
    Delta_j = S_j - n_j M, the ``confidence``-quantile over ``draws`` random sign vectors
    eps of ||sum_j eps_j Delta_j||_2 sqrt(b/(b-1)) / R (a multiplier bootstrap of the law
    of ||M - E M||_2), times t_{b-1}/z at the two-sided level (1 + confidence)/2 (the
    Student correction for a scale estimated from b batches; docs/theory.md §8).

    Guarantee: each sign-sum norm comes from Lanczos iteration with a certified stop
    (:mod:`rmt_deq.sampling._bootstrap`): it lies in [||E||, (1 + NORM_RTOL) ||E||], the
    lower end for all draws at once except with probability FAILURE_PROBABILITY (over
    the random start vectors); a sign sum that is not certified within
    MAX_LANCZOS_STEPS steps is decomposed densely.  So the returned bound lies between
    the bootstrap bound with exact norms and (1 + NORM_RTOL) times it (up to rounding),
    with NORM_RTOL = 0.02 and FAILURE_PROBABILITY = 1e-3.  The bound is deterministic
    given ``rng``; it is a statistical bar, not a worst-case one: its coverage is the
    claimed ``confidence`` approximately, for batches that are independent and large
    enough for their sums to be near-Gaussian.

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
        Seed of the signs and of the Lanczos start vectors.

    Returns
    -------
    bound : float
        The error bar (absolute, operator norm).
    norm : float
        ||mean||_2.

    Raises
    ------
    InvalidParameterError
        Fewer than two batches, or an empty one.
    """
    S = np.asarray(batch_sums, float)
    cnt = np.asarray(counts, float)
    b = S.shape[0]
    if b < 2 or np.any(cnt < 1):
        raise InvalidParameterError("the error bar needs at least two non-empty batches")
    R = float(cnt.sum())
    M = S.sum(axis=0) / R
    norm = symmetric_operator_norm(M)
    Delta = S - cnt[:, None, None] * M[None]
    return bootstrap_bound(Delta, cnt, confidence=confidence, draws=draws, rng=rng), norm


class _Accumulator:
    """Batch sums of named n x n matrices, realization r in batch r mod b."""

    def __init__(self, names: Iterable[str], n: int, batches: int,
                 t_start: float = 0.0) -> None:
        self.names = tuple(names)
        self.b = batches
        self.S = {k: np.zeros((batches, n, n)) for k in self.names}
        self.counts = np.zeros(batches, dtype=np.int64)
        self.R = 0
        self.t_start = t_start

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

    def error(self, names: Iterable[str], confidence: float, draws: int, seed: int,
              on_chunk: Callable[[int], Any] | None = None, *,
              consume: bool = False) -> tuple[float, float]:
        """(error bar, ||mean||) as :func:`mc_error_bound` of the used batches;
        ``on_chunk(k)`` hears of every chunk of k sign draws done.  ``consume`` (one
        name): the batch sums of that name are overwritten by their deviations instead of
        copied (no later use of them: the name is then unusable), which saves a
        (b, n, n) array."""
        names = tuple(names)
        used = int(min(self.R, self.b))
        if used < 2:
            M = self.mean(names)
            return math.inf, symmetric_operator_norm(M)
        if consume:
            if len(names) != 1:
                raise ValueError("only the sums of a single name can be consumed")
            S = self.S.pop(names[0])[:used]          # KeyError on any later use
        else:
            S = self.sums(names)[:used]              # owned: Delta is formed in place
        cnt = self.counts[:used].astype(float)
        M = S.sum(axis=0) / float(cnt.sum())
        norm = symmetric_operator_norm(M)
        for j in range(used):                        # in place: no (b, n, n) temporary
            S[j] -= cnt[j] * M
        return bootstrap_bound(S, cnt, confidence=confidence, draws=draws,
                               rng=np.random.default_rng([seed, self.R]),
                               on_chunk=on_chunk), norm


class _ErrorBarProgress:
    """Reports the final error bars of a result to ``mc.progress`` (phase "error bar")."""

    def __init__(self, mc: MonteCarloOptions, acc: Any, bars: int) -> None:
        self.mc, self.acc = mc, acc
        self.total = bars * mc.draws if min(acc.R, mc.batches) >= 2 else 0
        self.done = 0
        if self.total:
            self._emit()

    def _emit(self) -> None:
        if self.mc.progress is not None:
            self.mc.progress(SamplingProgress(
                realization=self.acc.R, realizations=self.mc.realizations,
                elapsed=time.perf_counter() - self.acc.t_start, forward_iterations=None,
                adjoint_iterations=None, relative_error=None, phase="error bar",
                draws_done=self.done, draws_total=self.total))

    def __call__(self, k: int) -> None:
        self.done += k
        if self.done < self.total:
            self._emit()

    def finish(self) -> None:
        """The last event (done == total)."""
        self.done = self.total
        self._emit()


def _check_unit_interval(name: str, x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number in (0, 1), got {x!r}") from None
    if not 0.0 < v < 1.0:
        raise InvalidParameterError(f"{name} must be in (0, 1), got {x!r}")
    return v


@dataclass(frozen=True)
class MonteCarloOptions:
    """How a sampler averages, validated on construction (shared by every sampler).

    Attributes
    ----------
    realizations : int
        R, independent weight draws averaged (the most, with ``target_error``).
    batches : int
        b, batches of the Monte-Carlo error estimate; stored as used: at most R, and 2
        for a single realization (whose error bar is then infinite).
    confidence : float
        Confidence of the error bars, in (0, 1).
    draws : int
        Bootstrap sign draws per error estimate (default :data:`DEFAULT_DRAWS`, 100).
    target_error : float or None
        Stop early once the relative error bar ||error|| / ||mean|| is below this.
    check_every : int
        Realizations between early-stopping checks (default, and stored when not given:
        ``batches``); only with ``target_error``.
    progress : callable or None
        Called with a :class:`SamplingProgress` after each realization, in the calling
        process and in realization order (also with an executor).
    executor : concurrent.futures.Executor or None
        Where the realizations run: None (default) in this process, one after the other;
        else any ``concurrent.futures.Executor`` -- a ``ThreadPoolExecutor``, a
        ``ProcessPoolExecutor`` (:func:`rmt_deq.sampling.executors.make_executor` makes
        one with a single BLAS thread per worker) or a dask ``distributed`` client's
        ``get_executor()``.  It is used, not shut down.  A process pool needs a built-in
        activation name (or, for explicit networks, layers with a JSON form): anything
        else is refused before the first realization.
    task_size : int or None
        Realizations per executor task (default, and stored with an executor: 1; stored
        None without one).  Larger tasks cost less scheduling, and waste more work after
        an early stop.  Only with ``executor``.
    max_pending : int or None
        Tasks submitted ahead of the one being accumulated (default, and stored with an
        executor: 16; None without one): keep it at least the number of workers.  Their
        results wait in this process, up to ``max_pending * task_size`` realizations'
        matrices, which the samplers count in their memory budget.  Only with
        ``executor``.

    Guarantee (executors): the result -- the averaged matrices, the error bars, when an
    early stop happens and the realizations it keeps -- does not depend on the executor,
    the number of its workers, ``task_size``, ``max_pending`` or the order in which tasks
    complete, bit for bit, provided every process that computes realizations computes
    them alike: the same library versions and the same BLAS thread count (a
    multi-threaded OpenBLAS rounds its matrix products differently from a one-thread
    one, in the last bits).  Realization r draws from its own child of the seed, each
    task returns its realizations' matrices (not partial sums), and the calling process
    adds them to the batch sums in realization order, with the same floating-point
    operations as in-process; early stopping is decided there too, at the same
    realization counts.  So threads (and dask threads in this process) give the
    in-process bits; the worker processes of ``make_executor`` run one BLAS thread each,
    so every worker count gives the same bits, which are the in-process ones when this
    process runs one BLAS thread too (e.g. OPENBLAS_NUM_THREADS=1 set before it
    started); a cluster of different machines or libraries may differ in the last
    bits.  Tasks
    submitted past an early stop are cancelled if they have not started, otherwise
    their results are discarded; KeyboardInterrupt (or any error) cancels the pending
    tasks before it propagates.  Errors in a task (e.g. a ConvergenceError) are raised
    when the task's turn comes, so the one reported is the first failing realization in
    order, as without an executor.

    Raises
    ------
    InvalidParameterError
        A value out of range, ``batches`` < 2, ``check_every`` without ``target_error``,
        a ``progress`` that is not callable, an ``executor`` that is not a
        ``concurrent.futures.Executor``, ``task_size`` or ``max_pending`` without one.
    """

    realizations: int = 1
    batches: int = 16
    confidence: float = 0.95
    draws: int = DEFAULT_DRAWS
    target_error: float | None = None
    check_every: int | None = None
    progress: Callable[[SamplingProgress], Any] | None = None
    executor: Executor | None = None
    task_size: int | None = None
    max_pending: int | None = None

    def __post_init__(self) -> None:
        R = check_positive_int(self.realizations, "realizations")
        b = check_positive_int(self.batches, "batches")
        if b < 2:
            raise InvalidParameterError("batches must be >= 2 (the error bar needs two)")
        b = min(b, R) if R >= 2 else 2
        conf = _check_unit_interval("confidence", self.confidence)
        draws = check_positive_int(self.draws, "draws")
        target = None
        if self.target_error is not None:
            try:
                target = float(self.target_error)
            except (TypeError, ValueError):
                raise InvalidParameterError(
                    f"target_error must be a number, got {self.target_error!r}") from None
            if not (math.isfinite(target) and target > 0):
                raise InvalidParameterError(
                    f"target_error must be > 0, got {self.target_error!r}")
        if self.check_every is not None and target is None:
            raise InvalidParameterError(
                "check_every sets how often the early stop is checked: it needs "
                "target_error (or leave it out)")
        every = b if self.check_every is None else check_positive_int(self.check_every, "check_every")
        if self.progress is not None and not callable(self.progress):
            raise InvalidParameterError("progress must be a callable (or None)")
        task_size, pending = self._check_execution()
        for name, value in (("realizations", R), ("batches", b), ("confidence", conf),
                            ("draws", draws), ("target_error", target),
                            ("check_every", every), ("task_size", task_size),
                            ("max_pending", pending)):
            object.__setattr__(self, name, value)

    def _check_execution(self) -> tuple[int | None, int | None]:
        """(task_size, max_pending) as stored: the defaults with an executor, else None."""
        if self.executor is None:
            given = [k for k in ("task_size", "max_pending") if getattr(self, k) is not None]
            if given:
                one = len(given) == 1
                raise InvalidParameterError(
                    f"{' and '.join(given)} set{'s' if one else ''} how the realizations "
                    f"are shared among an executor's workers: {'it needs' if one else 'they need'}"
                    f" executor=... (or leave {'it' if one else 'them'} out)")
            return None, None
        if not isinstance(self.executor, Executor):
            raise InvalidParameterError(
                f"executor must be a concurrent.futures.Executor (a ThreadPoolExecutor, a "
                f"ProcessPoolExecutor, a dask Client's get_executor()) or None, got "
                f"{type(self.executor).__name__}")
        task_size = 1 if self.task_size is None else check_positive_int(self.task_size,
                                                                       "task_size")
        pending = (DEFAULT_MAX_PENDING if self.max_pending is None
                   else check_positive_int(self.max_pending, "max_pending"))
        return task_size, pending

    def pending_bytes(self, n: int, matrices: int) -> int:
        """Bytes of the task results that may wait in the calling process: ``matrices``
        n x n float64 matrices per realization (0 without an executor)."""
        if self.executor is None:
            return 0
        return 8 * n * n * matrices * self.task_size * self.max_pending


@dataclass(frozen=True)
class SamplerOptions:
    """What a finite-width sampler draws, validated on construction (shared by every
    sampler).

    Attributes
    ----------
    family : {"gaussian", "orthogonal", "symmetric"}
        Family of the square weight matrices (:mod:`rmt_deq.networks.weights`).
    rng : int, numpy.random.Generator or None
        Seed; realization r uses the r-th child of its SeedSequence (checked when the
        seeds are made).
    dtype : numpy.dtype
        Working precision (float64 or float32; the averages are accumulated in float64).
    max_memory : float or None
        Bytes the working set may use (None: the package default, 2 GiB).
    backend : str, module or None
        Array backend of the realizations (:mod:`rmt_deq._xp`): "numpy", "array_api_strict",
        "torch", "cupy" or an array API namespace; None (default): the data's own (numpy
        for numpy data).

    Raises
    ------
    UnknownOptionError
        Unknown family, dtype or backend.
    MissingDependencyError
        The backend's library is not installed.
    InvalidParameterError
        ``max_memory`` not a positive number.
    """

    family: str = "gaussian"
    rng: Any = None
    dtype: Any = "float64"
    max_memory: float | None = None
    backend: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "family", check_family(self.family))
        check_backend(self.backend)
        object.__setattr__(self, "dtype", check_dtype(self.dtype))
        memory_budget(self.max_memory)

    @property
    def budget(self) -> float:
        """The memory budget in bytes."""
        return memory_budget(self.max_memory)


@dataclass(frozen=True)
class _Draw:
    """What one realization contributes: its n x n matrices by accumulator name, and its
    record (solver records, GEMM flops) for the sampler's info."""

    parts: Mapping[str, np.ndarray]
    forward: Any = None                   # SolveRecord of the forward solve, if any
    adjoint: Any = None                   # SolveRecord of the adjoint solve, if any
    flops: float = 0.0

    @property
    def record(self) -> "_Draw":
        """The same without the matrices (what the sampler keeps per realization)."""
        return _Draw({}, self.forward, self.adjoint, self.flops)


def _memory_words(mc: MonteCarloOptions) -> tuple[str, str]:
    """What a sampler's fixed working set holds and how to shrink it (``check_memory``)."""
    if mc.executor is None:
        return (f"the weights, features and {mc.batches} batch accumulators",
                "lower batches, use float32, or raise max_memory")
    return (f"the weights, features, {mc.batches} batch accumulators and the results of "
            f"{mc.max_pending} pending tasks of {mc.task_size} realizations",
            "lower batches, max_pending or task_size, use float32, or raise max_memory")


def _iterations(rec: Any) -> int | None:
    return None if rec is None else rec.report.iterations


def _monte_carlo(realize: Callable[[int], _Draw], names: tuple[str, ...],
                 early: tuple[str, ...], n: int, mc: MonteCarloOptions, seed: int,
                 t_start: float) -> tuple[_Accumulator, list, bool, list[_Draw]]:
    """Average ``realize(r)`` over r = 0..R-1 with batch sums, progress and early stop.

    ``realize`` (picklable when ``mc.executor`` is a process pool) returns a
    :class:`_Draw`; the realizations run on ``mc.executor`` or here, and are added in
    realization order either way (:func:`rmt_deq.sampling._parallel.ordered_realizations`).
    Returns the accumulator, the early-stopping history, whether it stopped early, and the
    record of each realization used.
    """
    acc = _Accumulator(names, n, mc.batches, t_start)
    history: list[tuple[int, float]] = []
    records: list[_Draw] = []
    draws = ordered_realizations(realize, mc.realizations, mc.executor, mc.task_size,
                                 mc.max_pending)
    try:
        for draw in draws:
            acc.add(draw.parts)
            records.append(draw.record)
            done = acc.R
            rel = None
            if (mc.target_error is not None and done >= mc.batches
                    and done < mc.realizations and done % mc.check_every == 0):
                err, nrm = acc.error(early, mc.confidence, mc.draws, seed)
                rel = err / nrm if nrm > 0 else math.inf
                history.append((done, rel))
            if mc.progress is not None:
                mc.progress(SamplingProgress(
                    realization=done, realizations=mc.realizations,
                    elapsed=time.perf_counter() - t_start,
                    forward_iterations=_iterations(draw.forward) or 0,
                    adjoint_iterations=_iterations(draw.adjoint), relative_error=rel))
            if rel is not None and rel <= mc.target_error:
                return acc, history, True, records
    finally:
        draws.close()                      # cancels the tasks still pending, if any
    return acc, history, False, records


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


def _relative(err: float, nrm: float) -> float:
    return err / nrm if nrm > 0 else math.inf


def _kernel_result(acc: _Accumulator, mc: MonteCarloOptions, seed: int,
                   info: Callable[[], Any], *, network: str, tau0: float, tau0_source: str,
                   solution: Any = None) -> Kernel:
    """The sampled CK (accumulated under "ck") as a Kernel, with its error bar."""
    report = _ErrorBarProgress(mc, acc, 1)
    ck = acc.mean(("ck",))
    err, nrm = acc.error(("ck",), mc.confidence, mc.draws, seed, report, consume=True)
    report.finish()
    return Kernel(route="sampled", network=network, ck=ck, tau0=tau0,
                  tau0_source=tau0_source, error={"ck": err},
                  error_relative={"ck": _relative(err, nrm)}, solution=solution, info=info())


def _ntk_result(acc: _Accumulator, mc: MonteCarloOptions, seed: int, key: Mapping[str, str],
                sel: tuple[str, ...], info: Callable[[], Any], *, network: str, tau0: float,
                tau0_source: str, solution: Any = None) -> Kernel:
    """The sampled NTK as a Kernel; ``key`` maps group names (and "ck") to accumulator
    names.  Error bars: "ntk" (the sum of ``sel``), each selected group, and "ck"."""
    report = _ErrorBarProgress(mc, acc, 1 + (len(sel) if len(sel) > 1 else 0)
                               + (0 if "v" in sel else 1))

    def error(names: tuple[str, ...], consume: bool = False) -> tuple[float, float]:
        return acc.error(names, mc.confidence, mc.draws, seed, report, consume=consume)

    # every mean first: then the single-name bars may consume their batch sums
    parts = {g: acc.mean((key[g],)) for g in sel}
    total = acc.mean(tuple(key[g] for g in sel))
    ck = parts["v"] if "v" in parts else acc.mean((key.get("ck", "ck"),))
    err, nrm = error(tuple(key[g] for g in sel))
    bars = {"ntk": (err, nrm)}
    if len(sel) > 1:
        bars.update({g: error((key[g],), consume=True) for g in sel})
    else:
        bars[sel[0]] = (err, nrm)
    bars["ck"] = (bars["v"] if "v" in bars
                  else error((key.get("ck", "ck"),), consume=key.get("ck", "ck") not in
                             {key[g] for g in sel}))
    report.finish()
    return Kernel(route="sampled", network=network, ck=ck, ntk=total, groups=parts,
                  selected=sel, tau0=tau0, tau0_source=tau0_source,
                  error={k: e for k, (e, _) in bars.items()},
                  error_relative={k: _relative(e, m) for k, (e, m) in bars.items()},
                  solution=solution, info=info())
