"""The Mehler (Hermite) expansion of the bivariate Gaussian expectations.

E[f(s_u x1) f(s_v x2)] = sum_k c_k(s_u) c_k(s_v) rho^k for (x1, x2) standard Gaussian with
correlation rho, c_k(s) = E[f(s xi) He_k(xi)] / sqrt(k!).  The coefficients are computed on
the shared kink-split rule (:mod:`rmt_deq.moments._scale_rule`) by the stable three-term
recurrence of the normalised Hermite polynomials; the order K is certified by the Parseval
bound |remainder| <= |rho|^(K+1) sqrt(tail_u(K) tail_v(K)),
tail(K) = E[f^2] - sum_{k<=K} c_k^2 (docs/theory.md §2.2).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from rmt_deq._validation import as_positive_array
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.errors import InvalidParameterError
from rmt_deq.moments._scale_rule import FN_TEXT, SampleRule, check_kind, kind_function

__all__ = ["hermite_rows", "HermiteTable", "rho_limits", "hermite_coefficients", "horner"]

_EPS = float(np.finfo(float).eps)
#: rounding floor of a relative Parseval tail, per term summed
_TAIL_ROUNDING = 8.0 * _EPS
_TINY = 1e-300


def hermite_rows(x: np.ndarray, kmax: int) -> np.ndarray:
    """He_k(x)/sqrt(k!) for k = 0..kmax (normalised probabilists' Hermite), shape (kmax+1, ...).

    Three-term recurrence h_{k+1} = (x h_k - sqrt(k) h_{k-1}) / sqrt(k+1), stable for the
    |x| <= 16, k <= 256 used here (no overflow: max_k h_k(16) ~ e^64).
    """
    out = np.empty((kmax + 1,) + x.shape)
    out[0] = 1.0
    if kmax >= 1:
        out[1] = x
    for k in range(1, kmax):
        out[k + 1] = (x * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1)
    return out


class HermiteTable:
    """Normalised Hermite coefficients c_k(s_i) of f(s_i xi) for many scales s_i.

    Built on a :class:`~rmt_deq.moments._scale_rule.SampleRule` (shared nodes: one matrix
    product per table) and the values of f on its nodes.
    """

    def __init__(self, rule: SampleRule, F: np.ndarray, Fe: np.ndarray | None) -> None:
        self.rule = rule
        self.xi = rule.xi
        self.WF = rule.W * F
        self.xe = rule.xe
        self.WFe = None if Fe is None else rule.we * Fe
        self.norm2 = rule.integrate(F * F, None if Fe is None else Fe * Fe)
        self._C = np.zeros((F.shape[0], 0))

    @classmethod
    def build(cls, act: Activation, s: np.ndarray, kind: str, centring: float
              ) -> "HermiteTable":
        """The table of f = phi - centring (kind "phi") or phi' ("dphi") at the scales s."""
        rule = SampleRule(act, s)
        F, Fe = rule.evaluate(kind_function(act, kind, centring), FN_TEXT[kind], act.name)
        return cls(rule, F, Fe)

    def coefficients(self, kmax: int) -> np.ndarray:
        """c_k(s_i) for k = 0..kmax, shape (n, kmax + 1) (cached, extended on demand)."""
        if self._C.shape[1] < kmax + 1:
            H = hermite_rows(self.xi, kmax)                       # (K+1, N)
            C = self.WF @ H.T
            if self.xe is not None:
                h_prev = np.ones_like(self.xe)
                h = self.xe.copy()
                assert self.WFe is not None
                C[:, 0] += np.sum(self.WFe, axis=1)
                if kmax >= 1:
                    C[:, 1] += np.sum(self.WFe * h, axis=1)
                for k in range(1, kmax):
                    h_prev, h = h, (self.xe * h - math.sqrt(k) * h_prev) / math.sqrt(k + 1)
                    C[:, k + 1] += np.sum(self.WFe * h, axis=1)
            self._C = C
        return self._C[:, : kmax + 1]

    def relative_tails(self, kmax: int) -> np.ndarray:
        """tail_i(K)/E[f_i^2] for K = 0..kmax (with a rounding floor), shape (n, kmax+1)."""
        C = self.coefficients(kmax)
        n2 = np.maximum(self.norm2, _TINY)
        t = (self.norm2[:, None] - np.cumsum(C * C, axis=1)) / n2[:, None]
        floor = _TAIL_ROUNDING * (np.arange(kmax + 1) + 1.0)
        return np.maximum(t, 0.0) + floor[None, :]


def rho_limits(tails_max: np.ndarray, tol: float) -> np.ndarray:
    """rho_max(K): the series truncated at K is certified for |rho| <= rho_max(K)."""
    K = np.arange(tails_max.size)
    with np.errstate(divide="ignore"):
        lim = np.exp((math.log(tol) - np.log(tails_max)) / (K + 1.0))
    lim = np.where(tails_max <= tol, 1.0, np.minimum(lim, 1.0))
    return np.maximum.accumulate(lim)


def hermite_coefficients(activation: ActivationLike, s: Any, order: int, *,
                         kind: str = "phi", centring: float = 0.0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Hermite coefficients c_k(s) = E[f(s xi) He_k(xi)] / sqrt(k!).

    Parameters
    ----------
    activation : name, Activation or callable
    s : float or array_like of float, > 0
        Standard deviations.
    order : int
        Highest k (0 <= k <= order).  The shared rule (panels of width 1/2 on
        [-16, 16], 16 nodes each) resolves the Hermite oscillations to rounding for
        k <= 256 (the engines' ``kmax``); beyond that the coefficients are not certified.
    kind : {"phi", "dphi"}
        f = phi - centring, or f = phi'.
    centring : float
        The constant subtracted from phi (only for ``kind="phi"``).

    Returns
    -------
    coeffs : ndarray, shape ``np.shape(s) + (order + 1,)``
    second_moment : ndarray, shape ``np.shape(s)``
        E[f(s xi)^2] on the same rule (Parseval: sum_k c_k^2 -> second_moment).
    """
    act = get_activation(activation)
    check_kind(kind)
    arr = as_positive_array(s, "s", " (standard deviations)")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise InvalidParameterError(f"order must be a non-negative integer, got {order!r}")
    tab = HermiteTable.build(act, arr.reshape(-1), kind, centring)
    C = tab.coefficients(int(order))
    return C.reshape(arr.shape + (int(order) + 1,)), tab.norm2.reshape(arr.shape)


def horner(Cu: np.ndarray, Cv: np.ndarray, rho: np.ndarray, K: int) -> np.ndarray:
    """sum_{k<=K} Cu[:, k] Cv[:, k] rho^k by Horner's rule (the Mehler series on flat pairs)."""
    acc = Cu[:, K] * Cv[:, K]
    for k in range(K - 1, -1, -1):
        acc = acc * rho + Cu[:, k] * Cv[:, k]
    return acc
