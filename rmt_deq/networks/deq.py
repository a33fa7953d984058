"""Finite-width DEQs: weights, the forward fixed point and implicit differentiation.

The network (docs/theory.md §2), for all n samples at once (U, Z are m x n)::

    U = sqrt(sa/m) A phi_c(U) + sqrt(sb) B X,     Z = phi_c(U) / sqrt(m),   f = v^T Z,

with phi_c = phi - E[phi(tau xi)] centred at the fixed-point scale tau of the four-equation
system at the data scale tau0 -- the same centring as the exact kernels of
:mod:`rmt_deq.kernels.exact`, so that sampled and exact kernels are comparable.

The columns are independent fixed-point problems sharing A; they are solved together so
that every iteration is one GEMM (m x m times m x n_chunk), by the batched solver of
:mod:`rmt_deq.networks.solver` (plain iteration or Anderson acceleration; the forward
Jacobian is J = sqrt(sa/m) A D, D = diag phi'(U)).

Gradients (implicit differentiation, batched over samples): g = df/du solves
g = J^T g + D v / sqrt(m), i.e. g = (I - J^T)^{-1} D v / sqrt(m), by the same solver.
Every solve reports its convergence in a :class:`~rmt_deq._results.SolverReport`
(``.report`` of :class:`DEQForward` and :class:`DEQGradients`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rmt_deq._results import SolverReport
from rmt_deq._validation import (as_data_matrix, as_rng, check_positive_int, check_variances,
                                 split_options)
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.networks._batched import DEQSystem, Elementwise, column_chunks
from rmt_deq.fixed_point.centring import centring_solution
from rmt_deq.networks.solver import SolveRecord, SolverOptions
from rmt_deq.networks.weights import check_dtype, check_family, weight_matrix

__all__ = ["DEQWeights", "sample_deq_weights", "DEQForward", "DEQGradients", "deq_forward",
           "deq_gradients"]


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
        How the forward solve went (its ``report`` is also :attr:`report`).
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

    @property
    def report(self) -> SolverReport:
        """The convergence report of the forward solve (``record.report``)."""
        return self.record.report


@dataclass(frozen=True, eq=False)
class DEQGradients:
    """df/du at the fixed point for every sample (implicit differentiation).

    Attributes
    ----------
    g : ndarray, shape (m, n)
        g_i = (I - J_i^T)^{-1} D_i v / sqrt(m), J_i = sqrt(sa/m) A D_i, D_i = diag phi'(u_i).
    record : SolveRecord
        How the adjoint solve went (its ``report`` is also :attr:`report`).
    """

    g: np.ndarray = field(repr=False)
    record: SolveRecord

    @property
    def report(self) -> SolverReport:
        """The convergence report of the adjoint solve (``record.report``)."""
        return self.record.report


def deq_forward(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    weights: DEQWeights,
    tau0: float | None = None,
    solution: FixedPointSolution | None = None,
    **solver: Any,
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
    **solver
        Options of the batched solver (:class:`~rmt_deq.networks.solver.SolverOptions`):
        ``method`` ({"auto", "anderson", "plain"}, :func:`~rmt_deq.networks.solver.solve_batched`),
        ``tol`` (relative residual at which to stop; default
        :data:`~rmt_deq.networks.solver.DEFAULT_TOL` of the weights' dtype), ``max_iter``,
        ``memory`` (Anderson history) and ``chunk_size`` (columns solved together, default
        all; bounds the solver's workspace to about (4 + 2 memory) m chunk_size numbers).

    Returns
    -------
    DEQForward
        U and Z (m x n) and the convergence record.

    Raises
    ------
    ShapeMismatchError
        X has p rows different from the weights' B.
    UnknownOptionError
        An unknown solver option or method.
    ConvergenceError
        The forward iteration did not converge (no attracting fixed point); it carries the
        residual history.
    """
    (solver_kw,) = split_options("deq_forward", solver, SolverOptions)
    Xa = as_data_matrix(X)
    act = get_activation(activation)
    sa_f, sb_f = check_variances(sa, sb)
    sol, _ = centring_solution(act, sa_f, sb_f, Xa, tau0, solution)
    if not isinstance(weights, DEQWeights):
        raise InvalidParameterError(
            f"weights must be DEQWeights (sample_deq_weights), got {type(weights).__name__}")
    if weights.p != Xa.shape[0]:
        raise ShapeMismatchError(
            f"X has p = {Xa.shape[0]} rows but the input weights B are {weights.m} x "
            f"{weights.p}")
    dt = weights.dtype
    opts = SolverOptions(**solver_kw)
    n = Xa.shape[1]
    size = n if opts.chunk_size is None else opts.chunk_size
    m = weights.m
    As = weights.A * dt.type(math.sqrt(sa_f / m))
    Xs = (math.sqrt(sb_f) * Xa).astype(dt)
    system = DEQSystem(As, weights.B, weights.v, Xs, Elementwise(act, dt),
                       sol.centring, opts.solve_keywords(dt))
    U = np.empty((m, n), dtype=dt)
    Z = np.empty((m, n), dtype=dt)
    recs = []
    inv = dt.type(1.0 / math.sqrt(m))
    for cols in column_chunks(n, size):
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
    **solver: Any,
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
    **solver
        Options of the batched solver, as in :func:`deq_forward`.

    Returns
    -------
    DEQGradients
    """
    (solver_kw,) = split_options("deq_gradients", solver, SolverOptions)
    if not isinstance(forward, DEQForward):
        raise InvalidParameterError(f"forward must be a DEQForward, got {type(forward).__name__}")
    if not isinstance(weights, DEQWeights) or weights.m != forward.U.shape[0]:
        raise ShapeMismatchError("weights must be the DEQWeights the forward pass used")
    dt = weights.dtype
    opts = SolverOptions(**solver_kw)
    act = get_activation(forward.activation)
    m, n = forward.U.shape
    As = weights.A * dt.type(math.sqrt(forward.sa / m))
    system = DEQSystem(As, weights.B, weights.v, np.zeros((weights.p, 0), dt),
                       Elementwise(act, dt), forward.centring, opts.solve_keywords(dt))
    size = n if opts.chunk_size is None else opts.chunk_size
    g = np.empty((m, n), dtype=dt)
    recs = []
    for cols in column_chunks(n, size):
        gc, rec = system.adjoint(np.ascontiguousarray(forward.U[:, cols]))
        g[:, cols] = gc
        recs.append(rec)
    return DEQGradients(g=g, record=SolveRecord.merge(recs))
