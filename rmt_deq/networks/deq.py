"""Finite-width DEQs: the batched forward solver and implicit differentiation.

The network (theory.md section 2), for all n samples at once (U, Z are m x n)::

    U = sqrt(sa/m) A phi_c(U) + sqrt(sb) B X,     Z = phi_c(U) / sqrt(m),   f = v^T Z,

with phi_c = phi - E[phi(tau xi)] centred at the fixed-point scale tau of the four-equation
system at the data scale tau0 -- the same centring as the exact kernels of
:mod:`rmt_deq.kernels.exact`, so that sampled and exact kernels are comparable.

The columns are independent fixed-point problems sharing A; they are solved together so
that every iteration is one GEMM (m x m times m x n_chunk).  The solver
(:func:`solve_batched`) iterates plainly or with Anderson acceleration (type II, one set
of mixing coefficients per column, a per-column safeguard that drops a column's history
when its residual jumps, and a fall-back to plain iteration from the best iterate when an
Anderson step produces non-finite values).  It stops on the cheap relative residual
max_j ||F(u_j) - u_j|| / ||F(u_j)||.

Which method is fastest depends on the spectrum of the forward Jacobian
J = sqrt(sa/m) A D, D = diag phi'(U).  For Gaussian and orthogonal A it fills a disk
centred at 0 (radius about sqrt(sa E[phi'^2])); on a disk no polynomial (Krylov/Anderson)
acceleration beats the plain iteration, and Anderson only adds work per step (measured:
identical iteration counts for relu and tanh, sa = 0.2 and 0.5).  For symmetric (GOE) A the
spectrum is real and twice as wide, and Anderson cuts the iterations by 2-6x.  Hence
``method="auto"``: plain iteration, switched to Anderson once the observed contraction rate
exceeds ``switch_rate``.

Gradients (implicit differentiation, batched over samples): with
J = sqrt(sa/m) A D, g = df/du solves g = J^T g + D v / sqrt(m), i.e.
g = (I - J^T)^{-1} D v / sqrt(m), by the same solver.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy import special

from rmt_deq._validation import (as_data_matrix, as_rng, check_choice, check_positive_int,
                                 check_tolerance, check_variances)
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.errors import ConvergenceError, InvalidParameterError, ShapeMismatchError
from rmt_deq.fixed_point.centring import centring_solution
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.networks.weights import check_dtype, check_family, weight_matrix

__all__ = ["SOLVER_METHODS", "DEFAULT_TOL", "SolveRecord", "solve_batched", "DEQWeights",
           "sample_deq_weights", "DEQForward", "DEQGradients", "deq_forward",
           "deq_gradients"]

SOLVER_METHODS = ("auto", "anderson", "plain")
#: default relative residual per dtype (far below any Monte-Carlo error of a kernel)
DEFAULT_TOL = {"float64": 1e-7, "float32": 2e-5}


# ----------------------------------------------------------------------------------------
# convergence record
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SolveRecord:
    """How a batched fixed-point solve went.

    Attributes
    ----------
    iterations : int
        Evaluations of the map (the largest over column chunks).
    residual : float
        Final max_j ||F(u_j) - u_j|| / ||F(u_j)|| (the largest over chunks).
    residual_history : tuple of float
        That residual after each iteration (entrywise largest over chunks).
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
    tol : float
        The tolerance.
    chunks : int
        Number of column chunks solved.
    """

    iterations: int
    residual: float
    residual_history: tuple
    method: str
    switched_at: int | None
    restarts: int
    rate: float
    tol: float
    chunks: int = 1

    @staticmethod
    def merge(records: Sequence["SolveRecord"]) -> "SolveRecord":
        """Combine the records of column chunks into one (worst case per field)."""
        recs = list(records)
        if len(recs) == 1:
            return recs[0]
        L = max(len(r.residual_history) for r in recs)
        hist = np.zeros(L)
        for r in recs:
            h = np.asarray(r.residual_history, float)
            hist = np.maximum(hist, np.concatenate([h, np.full(L - h.size, h[-1])]))
        methods = sorted({r.method for r in recs})
        sw = [r.switched_at for r in recs if r.switched_at is not None]
        rates = [r.rate for r in recs if math.isfinite(r.rate)]
        return SolveRecord(
            iterations=max(r.iterations for r in recs),
            residual=max(r.residual for r in recs),
            residual_history=tuple(float(x) for x in hist),
            method="|".join(methods), switched_at=min(sw) if sw else None,
            restarts=sum(r.restarts for r in recs),
            rate=max(rates) if rates else float("nan"), tol=recs[0].tol,
            chunks=sum(r.chunks for r in recs))


# ----------------------------------------------------------------------------------------
# the generic batched solver
# ----------------------------------------------------------------------------------------
def _colnorm2(a: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->j", a, a)


def _check_tol(tol: Any, dtype: np.dtype) -> float:
    return DEFAULT_TOL[dtype.name] if tol is None else check_tolerance(tol)


def solve_batched(
    step: Callable[[np.ndarray, np.ndarray], Any],
    x0: np.ndarray,
    *,
    tol: float | None = None,
    max_iter: int = 500,
    method: str = "auto",
    memory: int = 5,
    switch_rate: float = 0.6,
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
    dt = x0.dtype
    tol = _check_tol(tol, np.dtype(dt))
    m, k = x0.shape
    tiny = np.finfo(dt).tiny
    x = np.array(x0, dtype=dt, copy=True)
    f = np.empty_like(x)
    g = np.empty_like(x)
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
    lam_rel = 1e-10 if dt == np.float64 else 1e-5
    idx = np.arange(memory)
    allow_switch = method == "auto"

    def plain_rate() -> float:
        r = plain_res[-4:]
        if len(r) < 2 or r[0] <= 0:
            return float("nan")
        return float((r[-1] / r[0]) ** (1.0 / (len(r) - 1)))

    for it in range(1, max_iter + 1):
        step(x, f)
        np.subtract(f, x, out=g)
        num = _colnorm2(g)
        den = _colnorm2(f)
        col = np.sqrt(num / np.maximum(den, tiny))
        res = float(col.max())
        hist.append(res)
        finite = math.isfinite(res)
        if finite and res <= tol:
            rec = SolveRecord(it, res, tuple(hist), label, switched_at, restarts,
                              plain_rate(), tol)
            return f, rec
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
            if allow_switch and len(plain_res) >= 4:
                if plain_rate() > switch_rate:
                    anderson, label, switched_at = True, "plain+anderson", it
            if not anderson:
                x, f = f, x
                continue
        # ---------------- Anderson step ----------------
        if dG is None:
            dG = np.empty((memory, m, k), dtype=dt)
            dF = np.empty((memory, m, k), dtype=dt)
            gram = np.zeros((k, memory, memory))
            valid = np.zeros((k, memory), dtype=bool)
            f_best = np.empty_like(f)
        if res < best:
            best = res
            f_best[...] = f
        if have_prev:
            s = slot
            np.subtract(g, dG[s], out=dG[s])            # dG[s] held g_prev
            np.subtract(f, dF[s], out=dF[s])            # dF[s] held f_prev
            for a in range(memory):
                if a == s or valid[:, a].any():
                    gram[:, s, a] = gram[:, a, s] = np.einsum("ij,ij->j", dG[a], dG[s])
            valid[:, s] = True
            # safeguard: a column whose residual jumped restarts its history
            jumped = col > 2.0 * prev_col
            if jumped.any():
                valid[jumped, :] = False
                restarts += int(jumped.sum())
            slot = (slot + 1) % memory
        prev_col = col
        rhs = np.zeros((k, memory))
        for a in range(memory):
            if valid[:, a].any():
                rhs[:, a] = np.einsum("ij,ij->j", dG[a], g)
        M = gram * (valid[:, :, None] & valid[:, None, :])
        diag = M[:, idx, idx]
        scale = np.maximum(diag.max(axis=1, keepdims=True), tiny)
        M[:, idx, idx] = diag + np.where(valid, lam_rel * scale, 1.0)
        rhs *= valid
        gamma = np.linalg.solve(M, rhs[:, :, None])[:, :, 0].astype(dt, copy=False)
        # x_next = f - sum_a gamma_a dF[a]; the history slot for this step stores (g, f)
        x[...] = f
        for a in range(memory):
            if valid[:, a].any():
                x -= dF[a] * gamma[None, :, a]
        dG[slot] = g
        dF[slot] = f
        have_prev = True
    raise ConvergenceError(
        f"the {what} iteration ({label}) did not reach tol = {tol:g} in {max_iter} "
        f"iterations (observed plain contraction factor {plain_rate():.3g}; >= 1 means no "
        f"attracting fixed point: reduce sa or the weight scale, or raise max_iter)", hist)


# ----------------------------------------------------------------------------------------
# elementwise maps in the working precision
# ----------------------------------------------------------------------------------------
_PROBE = np.array([-2.5, -1.0, -0.3, 0.0, 0.2, 0.7, 1.9, 3.1])


class _Elementwise:
    """phi and phi' evaluated in the working dtype, in place when the ufunc is known."""

    def __init__(self, act: Activation, dtype: np.dtype) -> None:
        self.act = act
        self.dtype = dtype
        self._fast: Callable[[np.ndarray, np.ndarray], Any] | None = None
        candidates = {
            "relu": lambda u, out: np.maximum(u, 0, out=out),
            "tanh": lambda u, out: np.tanh(u, out=out),
            "erf": lambda u, out: special.erf(u, out=out),
            "sigmoid": lambda u, out: special.expit(u, out=out),
        }
        fast = candidates.get(act.name)
        if fast is not None:
            ref = np.asarray(act.fn(_PROBE.copy()), float)
            got = np.empty_like(_PROBE)
            fast(_PROBE, got)
            if np.allclose(got, ref, rtol=1e-14, atol=1e-14):
                self._fast = fast

    def fn_into(self, u: np.ndarray, out: np.ndarray) -> np.ndarray:
        if self._fast is not None:
            self._fast(u, out)
        else:
            out[...] = self.act.fn(u)
        return out

    def d1(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(self.act.d1(u)).astype(self.dtype, copy=False)


# ----------------------------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DEQWeights:
    """One draw of the DEQ's weights, unit entry variance (the scalings are applied later).

    Attributes
    ----------
    A : ndarray, shape (m, m)
        Recurrent weights, from ``family``.
    B : ndarray, shape (m, p)
        Input weights, iid N(0, 1) (every family).
    v : ndarray, shape (m,)
        Read-out weights, iid N(0, 1).
    family : str
        Family of A (see :mod:`rmt_deq.networks.weights`).
    """

    A: np.ndarray = field(repr=False)
    B: np.ndarray = field(repr=False)
    v: np.ndarray = field(repr=False)
    family: str = "gaussian"

    @property
    def m(self) -> int:
        """Width."""
        return int(self.A.shape[0])

    @property
    def p(self) -> int:
        """Input dimension."""
        return int(self.B.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.A.dtype


def sample_deq_weights(m: int, p: int, *, family: str = "gaussian", rng: Any = None,
                       dtype: Any = "float64") -> DEQWeights:
    """Draw (A, B, v) for a width-m DEQ on p-dimensional inputs.

    The draws are made in the order A, B, v from one generator, so a seed fixes all three.

    Parameters
    ----------
    m, p : int
        Width and input dimension.
    family : {"gaussian", "orthogonal", "symmetric"}
        Family of the recurrent weights A (B and v are always Gaussian).
    rng : int or numpy.random.Generator, optional
    dtype : {"float64", "float32"}

    Returns
    -------
    DEQWeights
    """
    m = check_positive_int(m, "m")
    p = check_positive_int(p, "p")
    family = check_family(family)
    dt = check_dtype(dtype)
    gen = as_rng(rng)
    A = weight_matrix(family, m, m, gen, dt)
    B = gen.standard_normal((m, p), dtype=dt)
    v = gen.standard_normal(m, dtype=dt)
    return DEQWeights(A=A, B=B, v=v, family=family)


# ----------------------------------------------------------------------------------------
# the DEQ system (shared by deq_forward and the samplers)
# ----------------------------------------------------------------------------------------
class _DEQSystem:
    """One weight draw, ready to solve column chunks.

    ``As`` is sqrt(sa/m) A (owned, possibly scaled in place by the caller), ``Xs`` is
    sqrt(sb) X in the working dtype; the centring enters through the constant
    a0 = c sqrt(sa/m) A 1, so each forward step is one GEMM plus one elementwise pass.
    """

    def __init__(self, As: np.ndarray, B: np.ndarray, v: np.ndarray | None,
                 Xs: np.ndarray, elem: _Elementwise, centring: float,
                 solver: dict) -> None:
        self.As, self.B, self.v, self.Xs, self.elem = As, B, v, Xs, elem
        self.m = As.shape[0]
        self.c = elem.dtype.type(centring)
        self.a0 = (As.sum(axis=1, dtype=np.float64) * centring).astype(elem.dtype)
        self.solver = solver

    def forward(self, cols: slice, injection_phi: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, SolveRecord]:
        """U and Phi = phi(U) (uncentred) for the columns ``cols``.

        If ``injection_phi`` (m x len(cols)) is given, phi(sqrt(sb) B x) -- the features
        of the input injection alone, uncentred -- is written into it (one elementwise
        pass; the sampled CK's control variate).
        """
        bx = self.B @ self.Xs[:, cols]
        if injection_phi is not None:
            self.elem.fn_into(bx, injection_phi)
        bx -= self.a0[:, None]
        phi = np.empty_like(bx)
        As, elem = self.As, self.elem

        def step(u: np.ndarray, out: np.ndarray) -> None:
            elem.fn_into(u, phi)
            np.matmul(As, phi, out=out)
            out += bx

        U, rec = solve_batched(step, bx, what="DEQ forward", **self.solver)
        elem.fn_into(U, phi)
        return U, phi, rec

    def adjoint(self, U: np.ndarray) -> tuple[np.ndarray, SolveRecord]:
        """g = (I - J^T)^{-1} D v / sqrt(m) for the columns of U."""
        if self.v is None:
            raise InvalidParameterError("the gradients need the read-out weights v")
        D = self.elem.d1(U)
        dv = D * (self.v / self.elem.dtype.type(math.sqrt(self.m)))[:, None]
        AsT = self.As.T

        def step(gm: np.ndarray, out: np.ndarray) -> None:
            np.matmul(AsT, gm, out=out)
            out *= D
            out += dv

        return solve_batched(step, dv, what="DEQ gradient (adjoint)", **self.solver)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def _solver_options(method: str, tol: Any, max_iter: Any, memory: Any,
                    dtype: np.dtype) -> dict:
    check_choice(method, "solver method", SOLVER_METHODS)
    return {"method": method, "tol": _check_tol(tol, dtype),
            "max_iter": check_positive_int(max_iter, "max_iter"),
            "memory": check_positive_int(memory, "memory")}


# ----------------------------------------------------------------------------------------
# public forward / gradient
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DEQForward:
    """The fixed point of a finite-width DEQ for every sample.

    Attributes
    ----------
    U : ndarray, shape (m, n)
        Preactivations at the fixed point (column i for sample i).
    Z : ndarray, shape (m, n)
        Features z_i = phi_c(u_i)/sqrt(m); the CK Gram matrix is Z^T Z.
    record : SolveRecord
        Convergence of the forward solve.
    activation : str
    sa, sb : float
    centring : float
        E[phi(tau xi)], subtracted from phi.
    tau : float
        Fixed-point scale of the four equations that gave the centring.
    """

    U: np.ndarray = field(repr=False)
    Z: np.ndarray = field(repr=False)
    record: SolveRecord
    activation: str
    sa: float
    sb: float
    centring: float
    tau: float


@dataclass(frozen=True, eq=False)
class DEQGradients:
    """df/du at the fixed point for every sample (implicit differentiation).

    Attributes
    ----------
    g : ndarray, shape (m, n)
        g_i = (I - J_i^T)^{-1} D_i v / sqrt(m), J_i = sqrt(sa/m) A D_i, D_i = diag phi'(u_i).
    record : SolveRecord
        Convergence of the adjoint solve.
    """

    g: np.ndarray = field(repr=False)
    record: SolveRecord


def _prepare(X: Any, activation: ActivationLike, sa: float, sb: float | None,
             tau0: Any, solution: FixedPointSolution | None, labels: Any = None
             ) -> tuple[np.ndarray, Activation, float, float, FixedPointSolution, str]:
    """Validated data, activation, variances, the centring solution and tau0's source."""
    Xa = as_data_matrix(X)
    act = get_activation(activation)
    sa_f, sb_f = check_variances(sa, sb)
    sol, source = centring_solution(act, sa_f, sb_f, Xa, tau0, solution, labels)
    return Xa, act, sa_f, sb_f, sol, source


def deq_forward(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    weights: DEQWeights,
    tau0: float | None = None,
    solution: FixedPointSolution | None = None,
    method: str = "auto",
    tol: float | None = None,
    max_iter: int = 500,
    memory: int = 5,
    chunk_size: int | None = None,
) -> DEQForward:
    """Solve u_i = sqrt(sa/m) A phi_c(u_i) + sqrt(sb) B x_i for all samples at once.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).
    activation : name, Activation or callable
    sa, sb : float
        Weight variances (sb defaults to 1 - sa).
    weights : DEQWeights
        Unit-variance weights (:func:`sample_deq_weights`); their dtype is the working
        precision.
    tau0 : float, optional
        Data scale of the four equations fixing the centring (default as in
        :func:`rmt_deq.kernels.exact.exact_ck` without labels:
        :func:`rmt_deq.data.conventions.data_scale`).
    solution : FixedPointSolution, optional
        Take the centring from this solution instead (exclusive with ``tau0``).
    method : {"auto", "anderson", "plain"}
        Solver (see :func:`solve_batched`).
    tol : float, optional
        Relative residual at which to stop (default 1e-7 in float64, 2e-5 in float32).
    max_iter, memory : int
        Iteration cap and Anderson history length.
    chunk_size : int, optional
        Columns solved together (default: all); bounds the solver's workspace to about
        (4 + 2 memory) m chunk_size numbers.

    Returns
    -------
    DEQForward
        U and Z (m x n) and the convergence record.

    Raises
    ------
    ShapeMismatchError
        X has p rows different from the weights' B.
    ConvergenceError
        The forward iteration did not converge (no attracting fixed point); it carries the
        residual history.
    """
    Xa, act, sa_f, sb_f, sol, _ = _prepare(X, activation, sa, sb, tau0, solution)
    if not isinstance(weights, DEQWeights):
        raise InvalidParameterError(
            f"weights must be DEQWeights (sample_deq_weights), got {type(weights).__name__}")
    if weights.p != Xa.shape[0]:
        raise ShapeMismatchError(
            f"X has p = {Xa.shape[0]} rows but the input weights B are {weights.m} x "
            f"{weights.p}")
    dt = weights.dtype
    opts = _solver_options(method, tol, max_iter, memory, dt)
    n = Xa.shape[1]
    size = n if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    m = weights.m
    As = weights.A * dt.type(math.sqrt(sa_f / m))
    Xs = (math.sqrt(sb_f) * Xa).astype(dt)
    system = _DEQSystem(As, weights.B, weights.v, Xs, _Elementwise(act, dt),
                        sol.centring, opts)
    U = np.empty((m, n), dtype=dt)
    Z = np.empty((m, n), dtype=dt)
    recs = []
    inv = dt.type(1.0 / math.sqrt(m))
    for cols in _chunks(n, size):
        Uc, phi, rec = system.forward(cols)
        U[:, cols] = Uc
        phi -= system.c
        phi *= inv
        Z[:, cols] = phi
        recs.append(rec)
    return DEQForward(U=U, Z=Z, record=SolveRecord.merge(recs), activation=act.name,
                      sa=sa_f, sb=sb_f, centring=float(sol.centring), tau=float(sol.tau))


def deq_gradients(
    forward: DEQForward,
    weights: DEQWeights,
    *,
    method: str = "auto",
    tol: float | None = None,
    max_iter: int = 500,
    memory: int = 5,
    chunk_size: int | None = None,
) -> DEQGradients:
    """g_i = df(x_i)/du_i at the fixed point, f = v^T z (implicit differentiation).

    Solves g = J^T g + D v/sqrt(m) (J = sqrt(sa/m) A D, D = diag phi'(u_i)) for all samples
    at once, with the solver of :func:`deq_forward`.  Then, for the parameter groups,
    d f_i / d v = z_i, d f_i / d A = sqrt(sa/m) g_i phi_c(u_i)^T and
    d f_i / d B = sqrt(sb) g_i x_i^T.

    Parameters
    ----------
    forward : DEQForward
        The fixed point (from :func:`deq_forward` with the same weights).
    weights : DEQWeights
    method, tol, max_iter, memory, chunk_size
        As in :func:`deq_forward`.

    Returns
    -------
    DEQGradients
    """
    if not isinstance(forward, DEQForward):
        raise InvalidParameterError(f"forward must be a DEQForward, got {type(forward).__name__}")
    if not isinstance(weights, DEQWeights) or weights.m != forward.U.shape[0]:
        raise ShapeMismatchError("weights must be the DEQWeights the forward pass used")
    dt = weights.dtype
    opts = _solver_options(method, tol, max_iter, memory, dt)
    act = get_activation(forward.activation)
    m, n = forward.U.shape
    As = weights.A * dt.type(math.sqrt(forward.sa / m))
    system = _DEQSystem(As, weights.B, weights.v, np.zeros((weights.p, 0), dt),
                        _Elementwise(act, dt), forward.centring, opts)
    size = n if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    g = np.empty((m, n), dtype=dt)
    recs = []
    for cols in _chunks(n, size):
        gc, rec = system.adjoint(np.ascontiguousarray(forward.U[:, cols]))
        g[:, cols] = gc
        recs.append(rec)
    return DEQGradients(g=g, record=SolveRecord.merge(recs))
