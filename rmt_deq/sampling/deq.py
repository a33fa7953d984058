"""Sampled (finite-width, Monte-Carlo) CK and NTK of the DEQ, with an honest error bar
(docs/theory.md §8).

For R independent weight draws (A from a family of :mod:`rmt_deq.networks.weights`, B and v
Gaussian) at width m, each realization solves the DEQ for all samples at once
(:mod:`rmt_deq.networks.deq`) and contributes

* the CK Gram matrix Z^T Z (z_i = phi_c(u_i)/sqrt(m)),
* for the NTK, with g_i = (I - J_i^T)^{-1} D_i v/sqrt(m) from implicit differentiation,
  the groups  v: Z^T Z,  A: sa (g_i.g_j)(z_i.z_j),  B: sb (g_i.g_j)(x_i.x_j)
  (docs/theory.md §2),

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
The sign-sum norms are certified Lanczos upper bounds, within 2% of the exact norms
(:mod:`rmt_deq.sampling._bootstrap`), so the bar is the one with exact norms or up to 2%
more.
The finite-width bias E M - (infinite-width kernel) = O(1/m) is *not* part of this error.

Control variate (on by default, ``control_variate=False`` to turn it off): each
realization contributes Z^T Z - L + E[L], with L the Gram matrix of the input injection's
features phi_c(sqrt(sb) B X)/sqrt(m) of the same draw and E[L] its exact expectation (a
bivariate Gaussian expectation at covariance sb X^T X, exact at every width since B is
Gaussian for every family).  For the NTK the injection's gradients G0 = phi'(sqrt(sb) B X)
v/sqrt(m) (E[G0^T G0] = E[phi'(y_i) phi'(y_j)] at the same covariance, exact) correct the
other groups: A: sa [(G^T G) o (Z^T Z) - (G0^T G0) o E[L] - E[G0^T G0] o L
+ 2 E[G0^T G0] o E[L]], B: sb (X^T X) o (G^T G - G0^T G0 + E[G0^T G0]).  Every correction
has expectation zero, so the estimator is unbiased for the same expectation, with a
smaller error bar (docs/theory.md §8.3).

Precision (default ``dtype="float32"``): the weights, the solves and the Gram products
run in float32, the average and the error bar in float64; the solver stops at the relative
residual :data:`~rmt_deq.networks.solver.DEFAULT_TOL` of the dtype (1e-4 in float32).
The solver's error on one realization is not part of the error bar; it stays far below
the bar at practical R (measured in docs/sampling.md, where ``tol=1e-5`` is advised for
NTK bars below ~3e-3); ``dtype="float64"`` for double-precision solves.

Reproducibility: realization r uses the r-th child of the seed's ``SeedSequence`` (the
same weights whatever R, the chunking or early stopping; the children are built when
needed, so a large R costs nothing until it is used); the same seed and options give the
same matrix bit for bit, also when the realizations run on an executor (threads,
processes, a dask cluster: ``executor=``), whatever its number of workers, as long as the
processes that compute realizations run the same BLAS thread count.

Options: :func:`sampled_ck`, :func:`sampled_ntk` and :func:`sampled_kernel` take the
data-scale keywords (``tau0``, ``labels``, ``solution``) and the ``width`` explicitly, and
every other option by keyword into three shared, validated records:
:class:`~rmt_deq.sampling._montecarlo.MonteCarloOptions` (realizations, batches,
confidence, draws, target_error, check_every, progress, executor, task_size, max_pending),
:class:`~rmt_deq.sampling._montecarlo.SamplerOptions` (family, rng, dtype, max_memory) and
:class:`~rmt_deq.networks.solver.SolverOptions` (method, tol, max_iter, memory,
chunk_size).  The results are :class:`~rmt_deq.kernels.result.Kernel` with
``route="sampled"``: the error bars in ``error`` / ``error_relative``, the record of the
run in ``info`` (:class:`SamplingInfo`).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._validation import (as_data_matrix, check_bool, check_choice, check_data_range,
                                 check_groups, check_memory, check_options, check_positive_int,
                                 check_variances, split_options)
from rmt_deq._xp import NUMPY, Backend, host_data, resolve_backend
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.errors import ConvergenceError, InvalidParameterError, RmtDeqError
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels.exact import NTK_GROUPS
from rmt_deq.kernels.result import Kernel
from rmt_deq.moments.pairs import PairExpectations
from rmt_deq.networks._batched import DEQSystem, column_chunks, elementwise
from rmt_deq.fixed_point.centring import centring_solution
from rmt_deq.networks.deq import sample_deq_weights
from rmt_deq.networks.solver import SolveRecord, SolverOptions
from rmt_deq.sampling._montecarlo import (MonteCarloOptions, SamplerOptions, _Draw,
                                          _kernel_result, _memory_words, _monte_carlo,
                                          _ntk_result, _seeds)
from rmt_deq.sampling._parallel import check_sendable

__all__ = ["SamplingInfo", "sampled_ck", "sampled_ntk", "sampled_kernel", "NTK_GROUPS",
           "KINDS"]

#: the kernels :func:`sampled_kernel` samples
KINDS = ("ck", "ntk")
#: the option records every keyword option of the DEQ samplers belongs to
_RECORDS = (MonteCarloOptions, SamplerOptions, SolverOptions)
#: the keywords of :func:`sampled_ck` besides the records' fields
_KEYWORDS = ("width", "tau0", "labels", "solution", "control_variate")
#: the working precision of the DEQ samplers when ``dtype`` is not given: the solves and
#: the Gram products in float32, the averages accumulated in float64 (docs/sampling.md)
DEFAULT_DTYPE = "float32"
#: m-vectors per column in the solver's working set (iterate, image, residual, the
#: features and their buffers) besides the 2 per Anderson history entry
_SOLVER_VECTORS = 6


@dataclass(frozen=True)
class SamplingInfo:
    """The record of a DEQ sampling run (the ``info`` of a sampled :class:`Kernel`).

    The DEQ itself (activation, sa, sb, tau, the centring) is the Kernel's ``solution``;
    its data scale the Kernel's ``tau0`` and ``tau0_source``; the error bars its
    ``error`` and ``error_relative``.

    Attributes
    ----------
    width : int
        m.
    realizations : int
        Realizations averaged (fewer than requested if stopped early).
    requested : int
        Realizations requested.
    family, dtype : str
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
        Forward-solve record of each realization (``.report`` its convergence).
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
        Whether the kernels were averaged with the input-injection control variate (see
        :func:`sampled_ck`, :func:`sampled_ntk`).
    backend : str
        The array backend the realizations ran on (:mod:`rmt_deq._xp`).
    """

    width: int
    realizations: int
    requested: int
    family: str
    dtype: str
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
    backend: str = "numpy"

    @property
    def iterations(self) -> int:
        """Largest forward iteration count over the realizations."""
        return max(r.report.iterations for r in self.forward)

    def to_dict(self) -> dict:
        """JSON-ready summary (the solver records as their iteration counts)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name not in ("forward", "adjoint")}
        d["forward_iterations"] = [r.report.iterations for r in self.forward]
        d["adjoint_iterations"] = [r.report.iterations for r in self.adjoint]
        return json_ready(d)


class _DEQRealization:
    """Realization r of the DEQ sampler (``realize(r)``): weights from child r of the seed,
    the forward (and adjoint) solves of all samples, its Gram matrices as a
    :class:`~rmt_deq.sampling._montecarlo._Draw`.

    Read-only once built, with per-call working buffers, so threads may share it; it
    pickles (for process pools and clusters) with a built-in activation sent as its name
    (rebuilt by :func:`~rmt_deq.activations.get_activation`; other activations are sent as
    they are, which the standard pickle refuses for code such as lambdas).
    """

    def __init__(self, *, act: Activation, dtype: np.dtype, m: int, family: str,
                 sa: float, sb: float, Xs: np.ndarray, centring: float, solve_kw: dict,
                 chunks: list, ntk: bool, names: tuple[str, ...], EL: np.ndarray | None,
                 EG: np.ndarray | None, XtX: np.ndarray | None, children: Any,
                 requested: int, backend: Backend = NUMPY) -> None:
        self.act, self.dtype, self.m, self.family = act, dtype, m, family
        self.sa, self.sb, self.Xs, self.centring = sa, sb, Xs, centring
        self.solve_kw, self.chunks, self.ntk, self.names = solve_kw, chunks, ntk, names
        self.EL, self.EG, self.XtX = EL, EG, XtX
        self.children, self.requested = children, requested
        self.backend = backend
        self.elem = elementwise(act, dtype, backend)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["elem"]                            # holds lambdas: rebuilt on arrival
        try:
            if get_activation(self.act.name) is self.act:   # a registry spec: its name
                state["act"] = self.act.name
        except RmtDeqError:                          # a callable's name: not a spec
            pass
        return state

    def __setstate__(self, state: dict) -> None:
        state["act"] = get_activation(state["act"])
        self.__dict__.update(state)
        self.elem = elementwise(self.act, self.dtype, self.backend)

    def _located(self, exc: ConvergenceError, r: int, cols: slice) -> ConvergenceError:
        """The solver's error, located (realization, columns), same residual history."""
        err = ConvergenceError(
            f"realization {r} of {self.requested} (family {self.family}, m = {self.m}, "
            f"{self.act.name}, sa = {self.sa:g}, samples {cols.start}..{cols.stop - 1}): "
            f"{exc}")
        err.residuals = exc.residuals      # the message already ends with their summary
        return err

    def __call__(self, r: int) -> _Draw:
        m, dt, ntk, bk = self.m, self.dtype, self.ntk, self.backend
        p, n = self.Xs.shape
        inv = self.elem.scalar(1.0 / math.sqrt(m))
        # drawn on the host from child r of the seed (the same weights on every backend)
        W = sample_deq_weights(m, p, family=self.family, rng=self.children[r], dtype=dt)
        As = W.A
        As *= dt.type(math.sqrt(self.sa / m))        # owned: scale in place
        As, B, v, Xs = (bk.asarray(a, dt) for a in (As, W.B, W.v, self.Xs))
        system = DEQSystem(As, B, v, Xs, self.elem, self.centring, self.solve_kw)
        Z = bk.empty((m, n), dt)
        Gm = bk.empty((m, n), dt) if ntk else None
        cv = self.EL is not None
        P0 = bk.empty((m, n), dt) if cv else None
        D0 = bk.empty((m, n), dt) if cv and ntk else None
        recs_f, recs_a = [], []
        flops = 0.0
        for cols in self.chunks:
            # numpy writes the injection's features into P0's columns (a view); another
            # namespace into a buffer copied there (views are not in the standard)
            inj, inj_d1 = (None if buf is None else (
                buf[:, cols.start:cols.stop] if bk.is_numpy
                else bk.empty((m, cols.stop - cols.start), dt)) for buf in (P0, D0))
            try:
                U, phi, rec = system.forward(cols, inj, inj_d1)
            except ConvergenceError as exc:
                raise self._located(exc, r, cols) from None
            if not bk.is_numpy:
                if inj is not None:
                    P0[:, cols] = inj
                if inj_d1 is not None:
                    D0[:, cols] = inj_d1
            phi -= system.c
            phi *= inv
            Z[:, cols] = phi
            recs_f.append(rec)
            k = cols.stop - cols.start
            flops += 2.0 * m * m * k * rec.report.iterations + 2.0 * m * p * k
            if ntk:
                try:
                    gc, reca = system.adjoint(U)
                except ConvergenceError as exc:
                    raise self._located(exc, r, cols) from None
                Gm[:, cols] = gc
                recs_a.append(reca)
                flops += 2.0 * m * m * k * reca.report.iterations
        K = bk.to_numpy(Z.T @ Z)
        flops += 2.0 * m * n * n
        parts = {"ck": K}
        if cv:
            P0 -= system.c
            P0 *= inv
            L = bk.to_numpy(P0.T @ P0)
            parts["ck"] = K - L + self.EL
            flops += 2.0 * m * n * n
        rec_a = None
        if ntk:
            rec_a = SolveRecord.merge(recs_a)
            GG = bk.to_numpy(Gm.T @ Gm)
            flops += 2.0 * m * n * n
            if cv:
                # the injection's gradients G0 = D0 v/sqrt(m), D0 = phi'(sqrt(sb) B X):
                # E[G0^T G0] = E[phi'(y_i) phi'(y_j)] exactly (docs/theory.md §8.3)
                D0 *= (v * inv)[:, None]
                GG0 = bk.to_numpy(D0.T @ D0)
                flops += 2.0 * m * n * n
                EG, EL = self.EG, self.EL
            if "A" in self.names:
                A = GG * K
                if cv:        # minus the linear part of GG0 o L about its mean
                    A -= GG0 * EL + EG * L - 2.0 * EG * EL
                parts["A"] = self.sa * A
            if "B" in self.names:
                parts["B"] = self.sb * self.XtX * (GG - GG0 + EG if cv else GG)
        return _Draw(parts, SolveRecord.merge(recs_f), rec_a, flops)


def _sample(X: Any, activation: ActivationLike, sa: float, sb: float | None, *, ntk: bool,
            groups: tuple[str, ...], width: Any, tau0: Any, labels: Any,
            solution: FixedPointSolution | None, control_variate: Any, options: dict,
            where: str) -> Kernel:
    """Validate once, run the Monte-Carlo loop, return the Kernel."""
    t_start = time.perf_counter()
    mc_kw, draw_kw, solver_kw = split_options(where, options, *_RECORDS)
    mc = MonteCarloOptions(**mc_kw)
    cv = check_bool(control_variate, "control_variate")
    if draw_kw.get("dtype") is None:                 # not given: the DEQ samplers' default
        draw_kw["dtype"] = DEFAULT_DTYPE
    draw = SamplerOptions(**draw_kw)
    bk = resolve_backend(draw.backend, X)
    Xa = as_data_matrix(host_data(X))
    act = get_activation(activation)
    sa_f, sb_f = check_variances(sa, sb)
    sol, tau0_source = centring_solution(act, sa_f, sb_f, Xa, tau0, solution, labels)
    m = check_positive_int(width, "width")
    dt = draw.dtype
    check_data_range(Xa, dt)
    solver = SolverOptions(**solver_kw)
    if draw.family == "symmetric" and solver.method == "auto":
        solver = dataclasses.replace(solver, method="anderson")   # real Jacobian spectrum
    solve_kw = solver.solve_keywords(dt)
    budget = draw.budget

    p, n = Xa.shape
    names = ("ck",) + tuple(g for g in ("A", "B") if ntk and g in groups)
    early = tuple("ck" if g == "v" else g for g in groups) if ntk else ("ck",)
    # working set: weights, features (and gradients), accumulators; the rest per column
    isz = dt.itemsize
    fixed = isz * (m * m + m * p + p * n + m * n * (1 + ntk + cv + (cv and ntk)))
    fixed += 8 * n * n * (len(names) * (mc.batches + 1) + 2)
    fixed += mc.pending_bytes(n, len(names))
    check_memory(fixed, budget, *_memory_words(mc))
    per_col = isz * m * (_SOLVER_VECTORS + 2 * solver.memory) + (isz * m if ntk else 0)
    if solver.chunk_size is None:
        size = int(max(1, min(n, (budget - fixed) // per_col)))
    else:
        size = solver.chunk_size
    chunks = column_chunks(n, size)
    Xs = (math.sqrt(sb_f) * Xa).astype(dt)
    gram = Xa.T @ Xa if cv or "B" in names else None       # X^T X, formed once
    XtX = gram if "B" in names else None
    EL = EG = None
    if cv:
        # E[L] for L = Phi0^T Phi0, Phi0 = phi_c(sqrt(sb) B X)/sqrt(m), and E[G0^T G0] for
        # G0 = phi'(sqrt(sb) B X) v/sqrt(m): the rows of sqrt(sb) B X are iid
        # N(0, sb X^T X) whatever the family of A (v independent, unit variance), so both
        # are bivariate Gaussian expectations at that covariance -- exact at every width m
        S0 = sb_f * gram
        EL, EG = PairExpectations(act, np.diagonal(S0).copy(), float(sol.centring)
                                  ).evaluate(S0)
        if not ntk:
            EG = None
    children, seed = _seeds(draw.rng, mc.realizations)
    realize = _DEQRealization(
        act=act, dtype=dt, m=m, family=draw.family, sa=sa_f, sb=sb_f, Xs=Xs,
        centring=float(sol.centring), solve_kw=solve_kw, chunks=chunks, ntk=ntk, names=names,
        EL=EL, EG=EG, XtX=XtX, children=children, requested=mc.realizations, backend=bk)
    check_sendable(realize, mc.executor)
    acc, history, stopped, records = _monte_carlo(realize, names, early, n, mc, seed,
                                                  t_start)
    fwd_recs = [r.forward for r in records]
    adj_recs = [r.adjoint for r in records] if ntk else []
    flops = sum(r.flops for r in records)

    def info() -> SamplingInfo:
        return SamplingInfo(
            width=m, realizations=acc.R, requested=mc.realizations, family=draw.family,
            dtype=dt.name, confidence=mc.confidence, batches=mc.batches, draws=mc.draws,
            stopped_early=stopped, target_error=mc.target_error,
            error_history=tuple(history), forward=tuple(fwd_recs), adjoint=tuple(adj_recs),
            chunk_size=size, elapsed=time.perf_counter() - t_start, gemm_flops=flops,
            control_variate=cv, backend=bk.name)

    scale = {"network": "deq", "tau0": float(sol.tau0), "tau0_source": tau0_source,
             "solution": sol}
    if ntk:
        return _ntk_result(acc, mc, seed, {"v": "ck", "A": "A", "B": "B"}, groups, info,
                           **scale)
    return _kernel_result(acc, mc, seed, info, **scale)


def sampled_ck(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    width: int,
    tau0: float | None = None,
    labels: Any = None,
    solution: FixedPointSolution | None = None,
    control_variate: bool = True,
    **options: Any,
) -> Kernel:
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
    tau0 : float, optional
        Data scale sqrt(tr C°/p) fixing the centring; default as
        :func:`rmt_deq.kernels.exact.exact_ck` (:func:`rmt_deq.data.conventions.data_scale`:
        the plug-in estimate from ``labels``, else all samples as one class), recorded with
        its source in ``tau0`` and ``tau0_source``.
    labels : array_like, shape (n,), optional
        Class labels, used only for the default tau0.
    solution : FixedPointSolution, optional
        Take the centring from this four-equation solution (exclusive with tau0, labels).
    control_variate : bool
        Average Z^T Z - L + E[L] instead of Z^T Z, with L = Phi0^T Phi0 the Gram matrix of
        the input injection's features Phi0 = phi_c(sqrt(sb) B X)/sqrt(m) of the same
        draw.  The rows of sqrt(sb) B X are iid N(0, sb X^T X), so E[L] is an exact
        bivariate Gaussian expectation at every width and the estimator stays unbiased
        for E[Z^T Z] (same expectation, same error-bar machinery); L is strongly
        correlated with Z^T Z (the fixed point is the injection plus the recurrent
        part), which shrinks the Monte-Carlo error (docs/sampling.md).  Costs one extra
        n x n Gram product per realization.  Default True; False averages Z^T Z itself
        (the published estimator).
    **options
        Monte-Carlo options (:class:`~rmt_deq.sampling._montecarlo.MonteCarloOptions`):
        ``realizations`` (R, independent weight draws averaged; the most, with
        ``target_error``; default 1), ``batches`` (b, batches of the error estimate, at
        most R; default 16), ``confidence`` (of the error bar, default 0.95), ``draws``
        (bootstrap sign draws per error estimate, default 100), ``target_error`` (stop
        early once the relative error bar is below this, checked every ``check_every``
        realizations, default b, from b realizations on), ``progress`` (called with a
        :class:`~rmt_deq.sampling._montecarlo.SamplingProgress` after each realization),
        ``executor`` (a ``concurrent.futures.Executor`` the realizations run on -- threads,
        processes, e.g. :func:`rmt_deq.sampling.executors.make_executor`, or a dask
        client's ``get_executor()``; default None, in this process), ``task_size``
        (realizations per task, default 1) and ``max_pending`` (tasks submitted ahead,
        default 16).  The result is the same bit for bit whatever the number of workers
        or the order in which tasks complete, early stopping included, when the
        processes computing realizations run the same BLAS thread count (the guarantee
        and its proviso are in :class:`~rmt_deq.sampling._montecarlo.MonteCarloOptions`);
        a process pool needs a built-in activation name (a callable is refused before
        anything runs).
        Draw options (:class:`~rmt_deq.sampling._montecarlo.SamplerOptions`): ``family``
        ({"gaussian", "orthogonal", "symmetric"}, of the recurrent weights A,
        :mod:`rmt_deq.networks.weights`), ``rng`` (int or Generator; realization r uses the
        r-th child of its SeedSequence), ``dtype`` ({"float64", "float32"}: working
        precision of the weights, the solves and the Gram products; the average is
        accumulated in float64; default float32, :data:`DEFAULT_DTYPE`), ``max_memory``
        (bytes the working set may use, default 2 GiB), ``backend`` (array backend of the
        realizations: "numpy", "array_api_strict", "torch", "cupy" or an array API
        namespace; default None: the data's own, numpy for numpy data; the weights are
        still drawn on the host from the same seeds, the result is numpy float64;
        :mod:`rmt_deq._xp`, docs/sampling.md).  Solver options
        (:class:`~rmt_deq.networks.solver.SolverOptions`):
        ``method`` ({"auto", "anderson", "plain"}; "auto" uses Anderson for the symmetric
        family and otherwise plain iteration with a switch to Anderson when it contracts
        slowly), ``tol`` (relative residual of the solves; default
        :data:`~rmt_deq.networks.solver.DEFAULT_TOL` of the dtype), ``max_iter``,
        ``memory`` (Anderson history), ``chunk_size`` (columns solved together; by default
        the largest that keeps the working set below ``max_memory``).

    Returns
    -------
    Kernel
        ``route="sampled"``: ``ck`` (n x n, float64), ``error["ck"]`` (operator norm, at
        ``confidence``; inf from one realization) and ``error_relative["ck"]``,
        ``solution`` (the centring), ``tau0`` and ``tau0_source``, and ``info`` a
        :class:`SamplingInfo` (solver records per realization, timing, GEMM flops).

    Raises
    ------
    ConvergenceError
        A forward solve did not converge (e.g. weights scaled so that the DEQ has no
        attracting fixed point); it carries the residual history.
    UnknownOptionError
        Unknown option, family, dtype or method.
    InvalidParameterError
        Bad sizes, confidence, memory budget...

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((20, 8)) / np.sqrt(20)
    >>> K = sampled_ck(X, "relu", 0.3, width=200, realizations=4, rng=1)
    >>> K.ck.shape, K.info.realizations
    ((8, 8), 4)
    """
    return _sample(X, activation, sa, sb, ntk=False, groups=(), width=width, tau0=tau0,
                   labels=labels, solution=solution, control_variate=control_variate,
                   options=options, where="sampled_ck")


def sampled_ntk(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    width: int,
    groups: Iterable[str] = NTK_GROUPS,
    tau0: float | None = None,
    labels: Any = None,
    solution: FixedPointSolution | None = None,
    control_variate: bool = True,
    **options: Any,
) -> Kernel:
    """Monte-Carlo average of the DEQ's empirical NTK at width m, split by group.

    Each realization solves the forward fixed point and the adjoint system
    g = (I - J^T)^{-1} D v/sqrt(m) (exact gradients through the fixed point) for all
    samples, then adds Theta_v = Z^T Z, Theta_A = sa (G^T G) o (Z^T Z) and
    Theta_B = sb (G^T G) o (X^T X) (G = [g_1..g_n], o entrywise; docs/theory.md §2, §8).

    Parameters
    ----------
    groups : iterable of {"v", "A", "B"}
        Groups summed into ``ntk`` (the published convention is ("v", "A")).
    control_variate : bool
        Correct every group with the input injection's features and gradients of the same
        draw (module docstring): v as the CK of :func:`sampled_ck`, A by the linear part
        of sa (G0^T G0) o L about its exact mean, B by sb (X^T X) o (G0^T G0 -
        E[G0^T G0]), G0 = phi'(sqrt(sb) B X) v/sqrt(m).  Unbiased for the same
        expectation; costs one more n x n Gram product than the CK's.  Default True;
        False averages the groups themselves (the published estimator).
    (others)
        As in :func:`sampled_ck`; early stopping watches the error bar of ``ntk``.

    Returns
    -------
    Kernel
        ``ntk`` and ``groups`` (the selected ones), ``ck`` (the sampled CK, with the
        control variate when it is on; always computed); error bars ``error["ntk"]``, ``error[g]`` per selected group and
        ``error["ck"]`` (and ``error_relative``); ``info`` a :class:`SamplingInfo`.
    """
    sel = check_groups(groups, NTK_GROUPS)
    return _sample(X, activation, sa, sb, ntk=True, groups=sel, width=width, tau0=tau0,
                   labels=labels, solution=solution, control_variate=control_variate,
                   options=options, where="sampled_ntk")


def sampled_kernel(X: Any, activation: ActivationLike, sa: float, sb: float | None = None,
                   *, kind: str = "ck", groups: Iterable[str] | None = None,
                   **options: Any) -> Kernel:
    """The sampled CK or NTK by name (what ``rmt-deq kernel --method sampled`` runs).

    Parameters
    ----------
    kind : {"ck", "ntk"}
    groups : iterable of {"v", "A", "B"}, optional
        NTK groups (kind="ntk" only; default all three); refused with kind="ck".
    **options
        Keyword options of :func:`sampled_ck` (``width``, required; tau0, labels,
        solution, control_variate, and the options of the Monte-Carlo, draw and
        solver records); unknown ones are rejected.

    Returns
    -------
    Kernel
        ``matrix`` is the CK or the NTK (n x n).
    """
    check_choice(kind, "kind", KINDS)
    if kind == "ck" and groups is not None:
        raise InvalidParameterError(
            "groups selects NTK parameter groups: it applies to kind='ntk' only")
    allowed = _KEYWORDS + tuple(f.name for r in _RECORDS for f in dataclasses.fields(r))
    check_options(options, allowed, "sampled_kernel")
    if "width" not in options:
        raise InvalidParameterError("sampled_kernel needs width=m")
    if kind == "ck":
        return sampled_ck(X, activation, sa, sb, **options)
    return sampled_ntk(X, activation, sa, sb, groups=NTK_GROUPS if groups is None else groups,
                       **options)
