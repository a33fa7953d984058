"""A user design family: L layers sigma(t; theta_l) with any parametrised sigma.

Moments by the package's quadrature (:func:`rmt_deq.moments.gaussian.gaussian_moments`),
Jacobian by central differences (docs/theory.md §6.7).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from rmt_deq._validation import check_positive_int
from rmt_deq.activations import Activation
from rmt_deq.design._dual import value
from rmt_deq.design.families import DesignFamily, odd_family_failure
from rmt_deq.design.layers import numeric_moments
from rmt_deq.design.targets import DesignTarget
from rmt_deq.errors import InvalidParameterError

__all__ = ["ParametricFamily"]


class ParametricFamily(DesignFamily):
    """A user family: L layers sigma_l(t) = sigma(t; theta_l) (theta_l in R^k each).

    Moments are computed by the package's quadrature (:func:`rmt_deq.moments.gaussian.
    gaussian_moments`) and the Jacobian by central differences, so a solve is slower than
    with the built-in closed-form families (seconds rather than milliseconds).

    Parameters
    ----------
    sigma : callable or sequence of callables
        ``sigma(t, theta) -> array`` (numpy in, numpy out, elementwise in t); a sequence
        gives one function per layer.
    n_layers : int
    theta0 : array_like, shape (k,) or (n_layers, k)
        A starting point (per layer or shared).
    name : str
    param_names : sequence of str, optional
        Names of the k parameters of a layer (default theta0, theta1, ...); reported as
        ``<name><layer>`` (e.g. ``a1``, ``a2``).
    derivative : callable or sequence, optional
        ``sigma'(t, theta)``; default: the package's numerical derivative.
    kinks : callable or sequence of float, optional
        Kinks of sigma (``kinks(theta) -> tuple`` when they move with theta); quadrature is
        split there.
    odd : bool
        Declare every sigma odd (then alpha2 = alpha3 = 0 is structural).
    """

    analytic = False

    def __init__(self, sigma: Any, n_layers: int, theta0: Any, *, name: str = "custom",
                 param_names: Sequence[str] | None = None, derivative: Any = None,
                 kinks: Any = (), odd: bool = False) -> None:
        self.n_layers = check_positive_int(n_layers, "n_layers")
        sig = list(sigma) if isinstance(sigma, (list, tuple)) else [sigma] * self.n_layers
        if len(sig) != self.n_layers or not all(callable(s) for s in sig):
            raise InvalidParameterError(
                f"sigma must be a callable or {self.n_layers} callables, got {sigma!r}")
        self._sigma = sig
        if derivative is None:
            self._deriv = [None] * self.n_layers
        else:
            d = list(derivative) if isinstance(derivative, (list, tuple)) else \
                [derivative] * self.n_layers
            if len(d) != self.n_layers:
                raise InvalidParameterError("derivative must match sigma (one per layer)")
            self._deriv = d
        th = np.asarray(theta0, dtype=float)
        if th.ndim == 1:
            th = np.tile(th, (self.n_layers, 1))
        if th.ndim != 2 or th.shape[0] != self.n_layers or th.shape[1] == 0 \
                or not np.all(np.isfinite(th)):
            raise InvalidParameterError(
                f"theta0 must be finite of shape (k,) or ({self.n_layers}, k), got {th.shape}")
        self._theta0 = th
        self.k = th.shape[1]
        names = tuple(param_names) if param_names is not None else \
            tuple(f"theta{j}" for j in range(self.k))
        if len(names) != self.k:
            raise InvalidParameterError(f"param_names needs {self.k} names, got {names}")
        self._layer_names = names
        self.name = str(name)
        self.param_names = tuple(f"{nm}{l}" for l in range(1, self.n_layers + 1)
                                 for nm in names)
        self.free_names = self.param_names
        self._kinks = kinks
        self.odd = bool(odd)

    def layer_param_names(self, index: int) -> tuple:
        return tuple(f"{nm}{index + 1}" for nm in self._layer_names)

    def activation(self, index: int, theta: np.ndarray) -> Activation:
        """sigma(.; theta) of layer ``index`` as an Activation."""
        f = self._sigma[index]
        th = np.array(theta, dtype=float)
        kinks = self._kinks(th) if callable(self._kinks) else self._kinks
        d = self._deriv[index]
        return Activation.from_callable(
            lambda t: f(t, th), name=f"{self.name}[{index + 1}]", kinks=tuple(kinks),
            derivative=None if d is None else (lambda t: d(t, th)), odd=self.odd)

    def layer_moment_fns(self, x: Sequence[Any]) -> list:
        th = np.asarray([value(v) for v in x], dtype=float).reshape(self.n_layers, self.k)
        acts = [self.activation(l, th[l]) for l in range(self.n_layers)]
        return [lambda q, a=a: numeric_moments(a, value(q)) for a in acts]

    def refined_moment_fns(self, x: Sequence[Any]) -> list:
        if not self.odd:
            return DesignFamily.refined_moment_fns(self, x)
        th = np.asarray([value(v) for v in x], dtype=float).reshape(self.n_layers, self.k)
        acts = [self.activation(l, th[l]) for l in range(self.n_layers)]
        return [lambda q, a=a: numeric_moments(a, value(q), True) for a in acts]

    def params_from_free(self, x: Sequence[float]) -> dict:
        return {n: float(v) for n, v in zip(self.param_names, x)}

    def layer_specs(self, params: Mapping[str, float]) -> list:
        return [("custom", {n: params[n] for n in self.layer_param_names(l)})
                for l in range(self.n_layers)]

    def starts(self, target: DesignTarget) -> list:
        return [self._theta0.reshape(-1).copy()]

    def random_start(self, gen: np.random.Generator, target: DesignTarget) -> np.ndarray:
        x = self._theta0.reshape(-1)
        return x * gen.uniform(0.5, 1.5, size=x.size) + 0.1 * gen.normal(size=x.size)

    def structural_failure(self, target: DesignTarget) -> tuple | None:
        if self.odd:
            return odd_family_failure(target, "one odd layer has", "use a two-layer family")
        return None
