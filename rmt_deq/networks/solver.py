"""The batched fixed-point solver of the finite-width networks: x = F(x), column by column.

The columns of x (m x k) are independent fixed-point problems sharing one map (for a DEQ,
one weight draw and k samples, docs/theory.md §2); they are solved together so that every
iteration is one GEMM.  :func:`solve_batched` iterates plainly or with Anderson
acceleration (type II, one set of mixing coefficients per column, a per-column safeguard
that drops a column's history when its residual jumps, and a fall-back to plain iteration
from the best iterate when an Anderson step produces non-finite values).  It stops on the
cheap relative residual max_j ||F(x_j) - x_j|| / ||F(x_j)||.

Which method is fastest depends on the spectrum of the Jacobian of F.  For a DEQ with
Gaussian or orthogonal A it fills a disk centred at 0 (radius about sqrt(sa E[phi'^2])); on a
disk no polynomial (Krylov/Anderson) acceleration beats the plain iteration, and Anderson
only adds work per step.  For symmetric (GOE) A the spectrum is real and twice as wide, and
Anderson cuts the iterations severalfold (docs/sampling.md).  Hence ``method="auto"``: plain
iteration, switched to Anderson once the observed contraction rate exceeds ``switch_rate``.

The iterate may be a numpy array (in-place numpy operations) or an array of any array API
namespace (:mod:`rmt_deq._xp`; the same iteration through the standard's operations, with
the per-column scalars and the Anderson least-squares problems on the host).

Every solve returns a :class:`SolveRecord`: its ``report``
(:class:`~rmt_deq._results.SolverReport`, the package's one convergence record) and the
method that ran.  :class:`SolverOptions` holds the solver's options, validated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from rmt_deq._results import SolverReport
from rmt_deq._validation import check_choice, check_positive_int, check_tolerance
from rmt_deq._xp import host_array, namespace_of
from rmt_deq.errors import ConvergenceError, ShapeMismatchError

__all__ = ["SOLVER_METHODS", "DEFAULT_TOL", "SolverOptions", "SolveRecord", "solve_batched"]

SOLVER_METHODS = ("auto", "anderson", "plain")
#: default relative residual per dtype (the solver's error on a sampled realization stays
#: far below the Monte-Carlo error bar at practical R: measured in docs/sampling.md)
DEFAULT_TOL = {"float64": 1e-7, "float32": 1e-4}
#: ``method="auto"`` switches to Anderson when the plain contraction factor exceeds this
DEFAULT_SWITCH_RATE = 0.6
#: residuals over which the plain contraction factor is measured (RATE_WINDOW - 1 ratios)
RATE_WINDOW = 4
#: a column whose residual grows by more than this factor in one Anderson step restarts
#: its history (the safeguard)
RESTART_JUMP = 2.0
#: Tikhonov regularisation of the Anderson least-squares problem, relative to the largest
#: diagonal entry of its Gram matrix, per dtype (about sqrt of the unit round-off)
ANDERSON_REGULARISATION = {"float64": 1e-10, "float32": 1e-5}


@dataclass(frozen=True)
class SolverOptions:
    """Options of the batched solver of a finite-width DEQ, validated on construction.

    Attributes
    ----------
    method : {"auto", "anderson", "plain"}
        See :func:`solve_batched`.
    tol : float or None
        Relative residual at which to stop; None: :data:`DEFAULT_TOL` of the working dtype
        (:meth:`tol_for`).
    max_iter : int
        Most evaluations of the map per solve.
    memory : int
        Anderson history length.
    chunk_size : int or None
        Columns solved together (None: the caller's default).

    Raises
    ------
    UnknownOptionError
        Unknown method.
    InvalidParameterError
        tol not finite and > 0; max_iter, memory or chunk_size not a positive integer.
    """

    method: str = "auto"
    tol: float | None = None
    max_iter: int = 500
    memory: int = 5
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        check_choice(self.method, "solver method", SOLVER_METHODS)
        if self.tol is not None:
            object.__setattr__(self, "tol", check_tolerance(self.tol))
        object.__setattr__(self, "max_iter", check_positive_int(self.max_iter, "max_iter"))
        object.__setattr__(self, "memory", check_positive_int(self.memory, "memory"))
        if self.chunk_size is not None:
            object.__setattr__(self, "chunk_size",
                               check_positive_int(self.chunk_size, "chunk_size"))

    def tol_for(self, dtype: np.dtype) -> float:
        """The tolerance in working precision ``dtype`` (the default of the dtype if unset)."""
        return DEFAULT_TOL[np.dtype(dtype).name] if self.tol is None else self.tol

    def solve_keywords(self, dtype: np.dtype) -> dict:
        """The keyword options of :func:`solve_batched` for working precision ``dtype``."""
        return {"method": self.method, "tol": self.tol_for(dtype),
                "max_iter": self.max_iter, "memory": self.memory}


@dataclass(frozen=True)
class SolveRecord:
    """How a batched fixed-point solve went.

    Attributes
    ----------
    report : SolverReport
        Iterations (evaluations of the map), the final residual
        max_j ||F(u_j) - u_j|| / ||F(u_j)||, its history and the tolerance (for merged
        column chunks: the largest iterations and residual, the entrywise largest history).
    method : str
        "plain", "anderson", "plain+anderson" (auto switched to Anderson) or
        "anderson+plain" (Anderson fell back to plain iteration); chunks that differ are
        joined with "|".
    switched_at : int or None
        Iteration of the switch or fall-back (the first over chunks), None if none.
    restarts : int
        Columns whose Anderson history was dropped by the safeguard (summed over steps).
    rate : float
        Observed contraction factor of the plain phase (geometric mean of the residual
        ratios of its last iterations; nan when there were fewer than two plain steps).
        About the spectral radius of the Jacobian; >= 1 means the fixed point, even if
        found by Anderson, is not attracting.
    chunks : int
        Number of column chunks solved.
    """

    report: SolverReport
    method: str
    switched_at: int | None
    restarts: int
    rate: float
    chunks: int = 1

    @staticmethod
    def merge(records: Sequence["SolveRecord"]) -> "SolveRecord":
        """Combine the records of column chunks into one (worst case per field)."""
        recs = list(records)
        if len(recs) == 1:
            return recs[0]
        L = max(len(r.report.history) for r in recs)
        hist = np.zeros(L)
        for r in recs:
            h = np.asarray(r.report.history, float)
            hist = np.maximum(hist, np.concatenate([h, np.full(L - h.size, h[-1])]))
        methods = sorted({r.method for r in recs})
        sw = [r.switched_at for r in recs if r.switched_at is not None]
        rates = [r.rate for r in recs if math.isfinite(r.rate)]
        worst = max(recs, key=lambda r: r.report.iterations)
        report = SolverReport(
            converged=True, residual=max(r.report.residual for r in recs),
            tolerance=recs[0].report.tolerance,
            iterations=max(r.report.iterations for r in recs), history=hist,
            message=f"{len(recs)} column chunks, the slowest: {worst.report.message}")
        return SolveRecord(
            report=report, method="|".join(methods), switched_at=min(sw) if sw else None,
            restarts=sum(r.restarts for r in recs),
            rate=max(rates) if rates else float("nan"),
            chunks=sum(r.chunks for r in recs))


class _NumpyOps:
    """The solver's operations on its m x k arrays, in place (the numpy path)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)

    def copy(self, x0: np.ndarray) -> np.ndarray:
        return np.array(x0, dtype=self.dtype, copy=True)

    def empty_like(self, x: np.ndarray) -> np.ndarray:
        return np.empty_like(x)

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, dtype=self.dtype)

    def subtract(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        np.subtract(a, b, out=out)

    def subtract_from(self, a: np.ndarray, stack: np.ndarray, s: int) -> None:
        """stack[s] = a - stack[s]."""
        np.subtract(a, stack[s], out=stack[s])

    def coldot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The column inner products a_j . b_j (a numpy k-vector)."""
        return np.einsum("ij,ij->j", a, b)

    def to_device(self, gamma: np.ndarray) -> np.ndarray:
        return gamma.astype(self.dtype, copy=False)


class _ArrayApiOps(_NumpyOps):
    """The same operations in an array API namespace (array_api_strict, torch, CuPy...):
    new arrays or ``__setitem__`` instead of ``out=``; the column inner products come back
    to the host, where the per-column scalars of the solver (residuals, the Anderson
    least-squares problems of size ``memory``) live."""

    def __init__(self, x0: Any) -> None:
        self.xp = namespace_of(x0)
        self.xdtype, self.device = x0.dtype, x0.device
        super().__init__("float64" if x0.dtype == self.xp.float64 else "float32")

    def copy(self, x0: Any) -> Any:
        return self.xp.asarray(x0, copy=True)

    def empty_like(self, x: Any) -> Any:
        return self.xp.empty_like(x)

    def empty(self, shape: tuple[int, ...]) -> Any:
        return self.xp.empty(shape, dtype=self.xdtype, device=self.device)

    def subtract(self, a: Any, b: Any, out: Any) -> None:
        out[...] = a - b

    def subtract_from(self, a: Any, stack: Any, s: int) -> None:
        stack[s, ...] = a - stack[s, ...]

    def coldot(self, a: Any, b: Any) -> np.ndarray:
        return host_array(self.xp.vecdot(a, b, axis=-2))

    def to_device(self, gamma: np.ndarray) -> Any:
        return self.xp.asarray(gamma.astype(self.dtype), device=self.device)


def _array_ops(x0: Any) -> _NumpyOps:
    """The solver's array operations for the namespace of ``x0``."""
    if isinstance(x0, np.ndarray):
        return _NumpyOps(x0.dtype)
    return _ArrayApiOps(x0)


def solve_batched(
    step: Callable[[np.ndarray, np.ndarray], Any],
    x0: np.ndarray,
    *,
    tol: float | None = None,
    max_iter: int = 500,
    method: str = "auto",
    memory: int = 5,
    switch_rate: float = DEFAULT_SWITCH_RATE,
    what: str = "fixed point",
) -> tuple[np.ndarray, SolveRecord]:
    """Solve x = F(x) column by column for a batch of columns (x is m x k).

    Parameters
    ----------
    step : callable
        ``step(x, out)`` writes F(x) (same shape and dtype as x) into ``out``.  Column j of
        F(x) may depend only on column j of x.
    x0 : ndarray, shape (m, k)
        Starting point (not modified).
    tol : float, optional
        Stop when max_j ||F(x_j) - x_j|| / ||F(x_j)|| <= tol (default
        :data:`DEFAULT_TOL` for the dtype of x0).
    max_iter : int
        Most evaluations of F.
    method : {"auto", "anderson", "plain"}
        "plain": x <- F(x).  "anderson": Anderson acceleration (type II, per-column
        coefficients, ``memory`` past steps), falling back to plain iteration from the best
        iterate if a step is not finite.  "auto": plain, switched to Anderson when the
        contraction factor measured over three iterations exceeds ``switch_rate``.
    memory : int
        Anderson history length.
    switch_rate : float
        See ``method="auto"``.
    what : str
        Name of the problem for error messages.

    Returns
    -------
    fx : ndarray, shape (m, k)
        F(x) at the last iterate (its residual is <= tol).
    record : SolveRecord
        Its ``report`` (a :class:`~rmt_deq._results.SolverReport`) says how the residual
        went; the rest says which method ran.

    Raises
    ------
    ConvergenceError
        No convergence within ``max_iter``, or a non-finite iterate under plain iteration;
        ``residuals`` holds the residual history.
    """
    check_choice(method, "solver method", SOLVER_METHODS)
    max_iter = check_positive_int(max_iter, "max_iter")
    memory = check_positive_int(memory, "memory")
    if x0.ndim != 2:
        raise ShapeMismatchError(f"x0 must be 2-D (m x k), got shape {x0.shape}")
    ops = _array_ops(x0)
    dt = ops.dtype
    tol = DEFAULT_TOL[dt.name] if tol is None else check_tolerance(tol)
    m, k = x0.shape
    tiny = np.finfo(dt).tiny
    x = ops.copy(x0)
    f = ops.empty_like(x)
    g = ops.empty_like(x)
    anderson = method == "anderson"
    label = "anderson" if anderson else "plain"
    switched_at: int | None = None
    hist: list[float] = []
    plain_res: list[float] = []
    restarts = 0
    # Anderson state (allocated on first use)
    dG = dF = None
    gram = None
    valid = None
    slot = 0
    have_prev = False
    best = math.inf
    f_best: np.ndarray | None = None
    prev_col: np.ndarray | None = None
    lam_rel = ANDERSON_REGULARISATION[np.dtype(dt).name]
    allow_switch = method == "auto"

    for it in range(1, max_iter + 1):
        step(x, f)
        ops.subtract(f, x, g)
        num = ops.coldot(g, g)
        den = ops.coldot(f, f)
        col = np.sqrt(num / np.maximum(den, tiny))
        res = float(col.max())
        hist.append(res)
        finite = math.isfinite(res)
        if finite and res <= tol:
            report = SolverReport(
                converged=True, residual=res, tolerance=tol, iterations=it, history=hist,
                message=f"the {what} iteration ({label}) reached tol = {tol:g} in {it} "
                        f"iterations")
            return f, SolveRecord(report, label, switched_at, restarts, _plain_rate(plain_res))
        if not finite:
            if anderson and f_best is not None:
                # fall back: plain iteration from the best image seen so far
                anderson, label, switched_at = False, label + "+plain", switched_at or it
                allow_switch = False
                x[...] = f_best
                have_prev = False
                continue
            raise ConvergenceError(
                f"the {what} iteration produced non-finite values at iteration {it} "
                f"(the map is not contracting: no attracting fixed point at these weights)",
                hist)
        if not anderson:
            plain_res.append(res)
            if allow_switch and len(plain_res) >= RATE_WINDOW:
                if _plain_rate(plain_res) > switch_rate:
                    anderson, label, switched_at = True, "plain+anderson", it
            if not anderson:
                x, f = f, x
                continue
        # ---------------- Anderson step ----------------
        if dG is None:
            dG = ops.empty((memory, m, k))
            dF = ops.empty((memory, m, k))
            gram = np.zeros((k, memory, memory))
            valid = np.zeros((k, memory), dtype=bool)
            f_best = ops.empty_like(f)
        if res < best:
            best = res
            f_best[...] = f
        if have_prev:
            s = slot
            ops.subtract_from(g, dG, s)                # dG[s] held g_prev
            ops.subtract_from(f, dF, s)                # dF[s] held f_prev
            for a in range(memory):
                if a == s or valid[:, a].any():
                    gram[:, s, a] = gram[:, a, s] = ops.coldot(dG[a, ...], dG[s, ...])
            valid[:, s] = True
            # safeguard: a column whose residual jumped restarts its history
            jumped = col > RESTART_JUMP * prev_col
            if jumped.any():
                valid[jumped, :] = False
                restarts += int(jumped.sum())
            slot = (slot + 1) % memory
        prev_col = col
        rhs = np.zeros((k, memory))
        for a in range(memory):
            if valid[:, a].any():
                rhs[:, a] = ops.coldot(dG[a, ...], g)
        gamma = ops.to_device(anderson_coefficients(gram, valid, rhs, lam_rel, tiny))
        # x_next = f - sum_a gamma_a dF[a]; the history slot for this step stores (g, f)
        x[...] = f
        for a in range(memory):
            if valid[:, a].any():
                x -= dF[a, ...] * gamma[None, :, a]
        dG[slot, ...] = g
        dF[slot, ...] = f
        have_prev = True
    raise ConvergenceError(
        f"the {what} iteration ({label}) did not reach tol = {tol:g} in {max_iter} "
        f"iterations (observed plain contraction factor {_plain_rate(plain_res):.3g}; >= 1 "
        f"means no attracting fixed point: reduce sa or the weight scale, or raise "
        f"max_iter)", hist)


def _plain_rate(plain_res: list[float]) -> float:
    """Geometric mean of the last RATE_WINDOW - 1 plain residual ratios (nan if < 2)."""
    r = plain_res[-RATE_WINDOW:]
    if len(r) < 2 or r[0] <= 0:
        return float("nan")
    return float((r[-1] / r[0]) ** (1.0 / (len(r) - 1)))


def anderson_coefficients(gram: np.ndarray, valid: np.ndarray, rhs: np.ndarray,
                          lam_rel: float, tiny: float) -> np.ndarray:
    """The Anderson mixing coefficients gamma (k x memory, float64) of every column.

    ``gram`` (k x memory x memory, float64) holds the inner products of the residual
    differences, ``valid`` (k x memory, bool) which history entries a column uses,
    ``rhs`` (k x memory, float64; zeroed here where not valid) their inner products with
    the current residual.  Solves the Tikhonov-regularised least-squares problem (unused
    entries get a unit diagonal, so gamma = 0 there).
    """
    memory = gram.shape[1]
    idx = np.arange(memory)
    M = gram * (valid[:, :, None] & valid[:, None, :])
    diag = M[:, idx, idx]
    scale = np.maximum(diag.max(axis=1, keepdims=True), tiny)
    M[:, idx, idx] = diag + np.where(valid, lam_rel * scale, 1.0)
    rhs *= valid
    return np.linalg.solve(M, rhs[:, :, None])[:, :, 0]
