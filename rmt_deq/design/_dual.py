"""Forward-mode automatic differentiation: a number with its gradient (:class:`Dual`).

Enough of it for the closed-form layer moments of :mod:`rmt_deq.design._moments` and the
layer map of :mod:`rmt_deq.kernels.explicit_surrogate` (which only adds and multiplies), so
that a design's Jacobian is exact (docs/theory.md §6.4).  Shared by the design modules.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["Dual", "value", "dual_sqrt", "dual_exp", "dual_erf", "seed"]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class Dual:
    """A number with its gradient with respect to the free parameters."""

    __slots__ = ("v", "g")

    def __init__(self, v: float, g: np.ndarray) -> None:
        self.v = v
        self.g = g

    def __add__(self, o: Any) -> "Dual":
        if isinstance(o, Dual):
            return Dual(self.v + o.v, self.g + o.g)
        return Dual(self.v + o, self.g)

    __radd__ = __add__

    def __sub__(self, o: Any) -> "Dual":
        if isinstance(o, Dual):
            return Dual(self.v - o.v, self.g - o.g)
        return Dual(self.v - o, self.g)

    def __rsub__(self, o: Any) -> "Dual":
        return Dual(o - self.v, -self.g)

    def __neg__(self) -> "Dual":
        return Dual(-self.v, -self.g)

    def __mul__(self, o: Any) -> "Dual":
        if isinstance(o, Dual):
            return Dual(self.v * o.v, self.g * o.v + o.g * self.v)
        return Dual(self.v * o, self.g * o)

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> "Dual":
        if isinstance(o, Dual):
            inv = 1.0 / o.v
            return Dual(self.v * inv, (self.g - o.g * (self.v * inv)) * inv)
        return Dual(self.v / o, self.g / o)

    def __rtruediv__(self, o: Any) -> "Dual":
        inv = 1.0 / self.v
        return Dual(o * inv, self.g * (-o * inv * inv))


def value(x: Any) -> float:
    """The value of a dual number, or ``float(x)``."""
    return x.v if isinstance(x, Dual) else float(x)


def dual_sqrt(x: Any) -> Any:
    """sqrt for floats and dual numbers."""
    if isinstance(x, Dual):
        r = math.sqrt(x.v)
        return Dual(r, x.g * (0.5 / r))
    return math.sqrt(x)


def dual_exp(x: Any) -> Any:
    """exp for floats and dual numbers."""
    if isinstance(x, Dual):
        e = math.exp(x.v)
        return Dual(e, x.g * e)
    return math.exp(x)


def dual_erf(x: Any) -> Any:
    """erf for floats and dual numbers."""
    if isinstance(x, Dual):
        return Dual(math.erf(x.v), x.g * (_TWO_OVER_SQRT_PI * math.exp(-x.v * x.v)))
    return math.erf(x)


def seed(x: Sequence[float]) -> list[Dual]:
    """Independent variables: x_k with gradient e_k."""
    eye = np.eye(len(x))
    return [Dual(float(v), eye[k]) for k, v in enumerate(x)]
