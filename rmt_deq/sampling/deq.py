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
from typing import Any, Callable, Iterable

import numpy as np

from rmt_deq._validation import (check_choice, check_data_range, check_groups, check_memory,
                          check_options, check_positive_int, memory_budget)
from rmt_deq.activations import ActivationLike
from rmt_deq.networks.deq import (SolveRecord, _chunks, _DEQSystem, _Elementwise, _prepare,
                  _solver_options, sample_deq_weights)
from rmt_deq.errors import ConvergenceError, InvalidParameterError
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.networks.weights import check_dtype, check_family
from rmt_deq.sampling._montecarlo import (SampledKernel, SampledNTK, SamplingProgress, _kernel_result,
                                         _MCSettings, _monte_carlo, _ntk_result, _seeds,
                                         mc_error_bound)

__all__ = ["SamplingProgress", "SamplingInfo", "SampledKernel", "SampledNTK", "sampled_ck",
           "sampled_ntk", "sampled_kernel", "mc_error_bound", "NTK_GROUPS"]

NTK_GROUPS = ("v", "A", "B")


# ----------------------------------------------------------------------------------------
# result types
# ----------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------
# Monte-Carlo error bar
# ----------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------
# the engine
# ----------------------------------------------------------------------------------------


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
    m = check_positive_int(width, "width")
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
        size = check_positive_int(chunk_size, "chunk_size")
    chunks = _chunks(n, size)
    Xs = (math.sqrt(sb_f) * Xa).astype(dt)
    XtX = Xa.T @ Xa if "B" in names else None
    P0 = EL = None
    if control_variate:
        from rmt_deq.moments.pairs import PairExpectations

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
    check_choice(kind, "kind", ("ck", "ntk"))
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

