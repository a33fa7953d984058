"""What the finite-width forward passes and the samplers share (docs/theory.md §2, §8).

* :class:`Elementwise`: an activation and its derivative evaluated in the working dtype,
  in place through the numpy/scipy ufunc when there is one (DEQs and explicit networks);
* :class:`DEQSystem`: one DEQ weight draw, ready to solve the forward fixed point and the
  adjoint (gradient) system for chunks of columns (:func:`column_chunks`), shared by
  :func:`rmt_deq.networks.deq.deq_forward` and the sampler of :mod:`rmt_deq.sampling.deq`.

Inputs are trusted: the public functions validated them.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from scipy import special

from rmt_deq.activations import Activation
from rmt_deq.errors import InvalidParameterError
from rmt_deq.networks.solver import SolveRecord, solve_batched

__all__ = ["Elementwise", "DEQSystem", "column_chunks", "PROBE"]

#: points at which a fast ufunc is compared with the activation before it is used
PROBE = np.array([-2.5, -1.0, -0.3, 0.0, 0.2, 0.7, 1.9, 3.1])
#: how closely (relative and absolute) the ufunc must reproduce the activation there
FAST_MATCH_TOL = 1e-14


class Elementwise:
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
        # the ufunc is used only where it reproduces the activation (a registered
        # activation may reuse a name with other parameters)
        if fast is not None:
            ref = np.asarray(act.fn(PROBE.copy()), float)
            got = np.empty_like(PROBE)
            fast(PROBE, got)
            if np.allclose(got, ref, rtol=FAST_MATCH_TOL, atol=FAST_MATCH_TOL):
                self._fast = fast

    def fn_into(self, u: np.ndarray, out: np.ndarray) -> np.ndarray:
        if self._fast is not None:
            self._fast(u, out)
        else:
            out[...] = self.act.fn(u)
        return out

    def d1(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(self.act.d1(u)).astype(self.dtype, copy=False)


class DEQSystem:
    """One weight draw, ready to solve column chunks.

    ``As`` is sqrt(sa/m) A (owned, possibly scaled in place by the caller), ``Xs`` is
    sqrt(sb) X in the working dtype; the centring enters through the constant
    a0 = c sqrt(sa/m) A 1, so each forward step is one GEMM plus one elementwise pass.
    ``solver`` holds the keyword options of :func:`~rmt_deq.networks.solver.solve_batched`
    (:meth:`~rmt_deq.networks.solver.SolverOptions.solve_keywords`).
    """

    def __init__(self, As: np.ndarray, B: np.ndarray, v: np.ndarray | None,
                 Xs: np.ndarray, elem: Elementwise, centring: float,
                 solver: dict) -> None:
        self.As, self.B, self.v, self.Xs, self.elem = As, B, v, Xs, elem
        self.m = As.shape[0]
        self.c = elem.dtype.type(centring)
        self.a0 = (As.sum(axis=1, dtype=np.float64) * centring).astype(elem.dtype)
        self.solver = solver

    def forward(self, cols: slice, injection_phi: np.ndarray | None = None,
                injection_d1: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, SolveRecord]:
        """U and Phi = phi(U) (uncentred) for the columns ``cols``.

        If ``injection_phi`` (m x len(cols)) is given, phi(sqrt(sb) B x) -- the features
        of the input injection alone, uncentred -- is written into it, and phi'(sqrt(sb)
        B x) into ``injection_d1`` if given (one elementwise pass each; the samplers'
        control variates).
        """
        bx = self.B @ self.Xs[:, cols]
        if injection_phi is not None:
            self.elem.fn_into(bx, injection_phi)
        if injection_d1 is not None:
            injection_d1[...] = self.elem.d1(bx)
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


def column_chunks(n: int, size: int) -> list[slice]:
    """Consecutive column slices of at most ``size`` columns covering 0..n-1."""
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]
