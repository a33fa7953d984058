"""What the finite-width forward passes and the samplers share (docs/theory.md §2, §8).

* :class:`Elementwise`: an activation and its derivative evaluated in the working dtype,
  in place through the numpy/scipy ufunc when there is one (DEQs and explicit networks);
  :class:`ArrayApiElementwise` the same in an array API namespace (:mod:`rmt_deq._xp`),
  from the standard's functions only (:func:`elementwise` picks one);
* :class:`DEQSystem`: one DEQ weight draw, ready to solve the forward fixed point and the
  adjoint (gradient) system for chunks of columns (:func:`column_chunks`), shared by
  :func:`rmt_deq.networks.deq.deq_forward` and the sampler of :mod:`rmt_deq.sampling.deq`,
  on numpy arrays or on the arrays of any array API namespace (the same operations).

Inputs are trusted: the public functions validated them.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from scipy import special

from rmt_deq._xp import NUMPY, Backend
from rmt_deq.activations import Activation
from rmt_deq.errors import InvalidParameterError, UnknownOptionError
from rmt_deq.networks.solver import SolveRecord, solve_batched

__all__ = ["Elementwise", "ArrayApiElementwise", "elementwise", "DEQSystem", "column_chunks",
           "PROBE", "ARRAY_API_ACTIVATIONS"]

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

    #: the namespace of the arrays
    xp = np

    def d1(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(self.act.d1(u)).astype(self.dtype, copy=False)

    def scalar(self, x: float) -> Any:
        """``x`` as a scalar of the working dtype."""
        return self.dtype.type(x)

    def matmul_into(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        np.matmul(a, b, out=out)


def _sigmoid(xp: Any, u: Any) -> Any:
    return 1.0 / (1.0 + xp.exp(-u))


#: the activations with a form in the array API standard besides the piecewise
#: polynomials (relu, leaky_relu, hard_tanh, polynomial, quadratic): phi and phi' of
#: (namespace, array)
ARRAY_API_ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "tanh": (lambda xp, u: xp.tanh(u), lambda xp, u: 1.0 - xp.tanh(u) ** 2),
    "sigmoid": (_sigmoid, lambda xp, u: _sigmoid(xp, u) * _sigmoid(xp, -u)),
    "swish": (lambda xp, u: u * _sigmoid(xp, u),
              lambda xp, u: _sigmoid(xp, u) + u * _sigmoid(xp, u) * _sigmoid(xp, -u)),
}


def _piecewise(pieces: tuple, derivative: bool) -> Callable:
    """phi (or phi') of a piecewise polynomial in a namespace (where over the pieces, each
    by Horner's rule), with the pieces' half-open intervals (lo, hi]."""
    polys = []
    for pc in pieces:
        c = np.array(pc.coeffs, float)
        if derivative:
            c = np.polynomial.polynomial.polyder(c) if c.size > 1 else np.zeros(1)
        polys.append((pc.lo, pc.hi, [float(ci) for ci in c]))

    def fn(xp: Any, u: Any) -> Any:
        out = xp.zeros_like(u)
        for lo, hi, c in polys:
            y = xp.full_like(u, c[-1])
            for ci in reversed(c[:-1]):
                y = y * u + ci
            mask = (u > lo) & (u <= hi) if math.isfinite(lo) else u <= hi
            out = xp.where(mask, y, out)
        return out

    return fn


class ArrayApiElementwise(Elementwise):
    """phi and phi' in the namespace of a :class:`~rmt_deq._xp.Backend`, from the array
    API standard's functions only: the piecewise polynomials (ReLU family, hard tanh,
    polynomials) and :data:`ARRAY_API_ACTIVATIONS`, each checked against the activation
    at :data:`PROBE` before use (evaluated with numpy, which implements the standard).

    Raises
    ------
    UnknownOptionError
        An activation with no array API form here (erf, gelu...: the standard has no erf),
        naming the backend and the fix.
    """

    def __init__(self, act: Activation, dtype: np.dtype, backend: Backend) -> None:
        self.act, self.dtype, self.backend, self.xp = act, np.dtype(dtype), backend, backend.xp
        if act.pieces is not None:
            forms = (_piecewise(act.pieces, False), _piecewise(act.pieces, True))
        else:
            forms = ARRAY_API_ACTIVATIONS.get(act.name)
        if forms is not None:
            ok = all(np.allclose(form(np, PROBE.copy()), np.asarray(ref(PROBE.copy()), float),
                                 rtol=FAST_MATCH_TOL, atol=FAST_MATCH_TOL)
                     for form, ref in zip(forms, (act.fn, act.d1)))
            forms = forms if ok else None
        if forms is None:
            known = ", ".join(("relu", "leaky_relu", "hard_tanh", "polynomial", "quadratic")
                              + tuple(ARRAY_API_ACTIVATIONS))
            raise UnknownOptionError(
                f"activation {act.name!r} has no array API form for the {backend.name!r} "
                f"backend (the standard has no erf or normal CDF; available: {known}); use "
                f"backend='numpy'")
        self._fn, self._d1 = forms

    def fn_into(self, u: Any, out: Any) -> Any:
        out[...] = self._fn(self.xp, u)
        return out

    def d1(self, u: Any) -> Any:
        return self._d1(self.xp, u)

    def scalar(self, x: float) -> float:
        return float(x)

    def matmul_into(self, a: Any, b: Any, out: Any) -> None:
        out[...] = a @ b


def elementwise(act: Activation, dtype: np.dtype, backend: Backend = NUMPY) -> Elementwise:
    """The evaluator of ``act`` for ``backend`` (numpy: :class:`Elementwise`)."""
    if backend.is_numpy:
        return Elementwise(act, dtype)
    return ArrayApiElementwise(act, dtype, backend)


class DEQSystem:
    """One weight draw, ready to solve column chunks.

    ``As`` is sqrt(sa/m) A (owned, possibly scaled in place by the caller), ``Xs`` is
    sqrt(sb) X in the working dtype; the centring enters through the constant
    a0 = c sqrt(sa/m) A 1, so each forward step is one GEMM plus one elementwise pass.
    ``solver`` holds the keyword options of :func:`~rmt_deq.networks.solver.solve_batched`
    (:meth:`~rmt_deq.networks.solver.SolverOptions.solve_keywords`).  The arrays are
    numpy's, or all of the namespace of ``elem`` (an :class:`ArrayApiElementwise`).
    """

    def __init__(self, As: np.ndarray, B: np.ndarray, v: np.ndarray | None,
                 Xs: np.ndarray, elem: Elementwise, centring: float,
                 solver: dict) -> None:
        self.As, self.B, self.v, self.Xs, self.elem = As, B, v, Xs, elem
        self.m = As.shape[0]
        xp = self.xp = elem.xp
        self.c = elem.scalar(centring)
        self.a0 = xp.astype(xp.sum(As, axis=1, dtype=xp.float64) * centring, As.dtype)
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
        phi = self.xp.empty_like(bx)
        As, elem = self.As, self.elem

        def step(u: np.ndarray, out: np.ndarray) -> None:
            elem.fn_into(u, phi)
            elem.matmul_into(As, phi, out)
            out += bx

        U, rec = solve_batched(step, bx, what="DEQ forward", **self.solver)
        elem.fn_into(U, phi)
        return U, phi, rec

    def adjoint(self, U: np.ndarray) -> tuple[np.ndarray, SolveRecord]:
        """g = (I - J^T)^{-1} D v / sqrt(m) for the columns of U."""
        if self.v is None:
            raise InvalidParameterError("the gradients need the read-out weights v")
        D = self.elem.d1(U)
        dv = D * (self.v / self.elem.scalar(math.sqrt(self.m)))[:, None]
        AsT = self.As.T
        elem = self.elem

        def step(gm: np.ndarray, out: np.ndarray) -> None:
            elem.matmul_into(AsT, gm, out)
            out *= D
            out += dv

        return solve_batched(step, dv, what="DEQ gradient (adjoint)", **self.solver)


def column_chunks(n: int, size: int) -> list[slice]:
    """Consecutive column slices of at most ``size`` columns covering 0..n-1."""
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]
