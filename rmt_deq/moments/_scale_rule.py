"""The Gauss-Legendre rules of the pair expectations, and the one-dimensional moments on a
rule shared by many scales (shared by the bivariate modules; inputs are trusted: a
resolved Activation, scales > 0, known kinds and keys).

All scales share one composite rule in xi on [-16, 16] (uniform panels plus a geometric
refinement where phi bends), the panels that hold a kink of phi(s_i .) being split there
for that scale only (docs/theory.md §3.5): sums over the shared nodes are matrix products.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from rmt_deq.activations import Activation
from rmt_deq.errors import ConvergenceError, DivergentMomentError, UnknownOptionError
from rmt_deq.moments.pair_closed import INV_SQRT_2PI, relu_family

__all__ = ["KINDS", "FN_TEXT", "KIND_TEXT", "MOMENT_KEYS", "check_kind", "pdf", "gl_panels",
           "kind_function", "scale_points", "SampleRule", "rule_moments", "scale_moments"]

#: the expectations: E[phi_c(u) phi_c(v)] ("phi") and E[phi'(u) phi'(v)] ("dphi")
KINDS = ("phi", "dphi")
FN_TEXT = {"phi": "phi", "dphi": "phi'"}
KIND_TEXT = {"phi": "E[phi_c(u) phi_c(v)]", "dphi": "E[phi'(u) phi'(v)]"}
#: the one-dimensional moments of :func:`scale_moments`
MOMENT_KEYS = ("mean", "e1", "m2", "dm2", "d2")

_GL = {n: np.polynomial.legendre.leggauss(n) for n in (12, 16)}
_NODES, _CHECK_NODES = 16, 12   # nodes per panel of the rule, and of the rule checking it
L_HERMITE = 16.0        # xi range of the shared rule (e^{-L^2/4} ~ 1.6e-28)
_STEP_HERMITE = 0.5     # panel width of the shared rule (resolves He_k up to k ~ 256)
#: the 16- and 12-node rules must agree to this (relative) on E[phi_c^2] and E[phi'^2]
RULE_CHECK = 1e-12
_TINY = 1e-300


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`KINDS`, else UnknownOptionError."""
    if kind not in KINDS:
        raise UnknownOptionError(
            f"unknown expectation kind {kind!r}; choose 'phi' (E[phi_c(u) phi_c(v)]) or "
            f"'dphi' (E[phi'(u) phi'(v)])")
    return kind


def pdf(x: np.ndarray) -> np.ndarray:
    """The standard normal density."""
    return INV_SQRT_2PI * np.exp(-0.5 * x * x)


def gl_panels(edges: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre on sorted panel edges (..., E) -> nodes, weights (..., (E-1)n).

    Weights do not include the Gaussian density.  Zero-width panels get zero weight.
    """
    x, w = _GL[n_nodes]
    a, b = edges[..., :-1], edges[..., 1:]
    half, mid = 0.5 * (b - a), 0.5 * (a + b)
    nodes = mid[..., None] + half[..., None] * x
    weights = half[..., None] * w
    shape = edges.shape[:-1] + (-1,)
    return nodes.reshape(shape), weights.reshape(shape)


def kind_function(act: Activation, kind: str, centring: float
                  ) -> Callable[[np.ndarray], np.ndarray]:
    """f = phi - centring (kind "phi") or f = phi' (kind "dphi")."""
    if kind == "phi":
        c = float(centring)
        return lambda x: act.fn(x) - c
    return act.d1


def scale_points(act: Activation, s: float, j_hi: int = 6) -> np.ndarray:
    """xi points +-scale 2^j / s (j = -5..j_hi) where phi bends, for panel refinement."""
    pts = act.scale * 2.0 ** np.arange(-5, j_hi + 1) / s
    return np.concatenate([pts, -pts])


class SampleRule:
    """Composite Gauss-Legendre rules in xi for E[h(s_i xi)], one per scale s_i, sharing nodes.

    All scales share one rule on [-16, 16] (uniform panels of width 1/2 plus a geometric
    refinement where phi bends, at +-scale 2^j / s); the panels that contain a kink of
    phi(s_i .) are replaced, for that scale only, by sub-panels split at the kink.  Sums
    over the shared nodes are then matrix products.  The Gaussian density is in the weights.
    """

    def __init__(self, act: Activation, s: np.ndarray, n_nodes: int = _NODES) -> None:
        self.s = np.asarray(s, float).reshape(-1)
        s_min, s_max = float(self.s.min()), float(self.s.max())
        L = L_HERMITE
        base = np.arange(-L, L + 0.5 * _STEP_HERMITE, _STEP_HERMITE)
        j_hi = 6 + int(math.ceil(math.log2(s_max / s_min)))
        pts = scale_points(act, s_max, j_hi)
        edges = np.unique(np.concatenate([base, pts[np.abs(pts) < L]]))
        xi, w = gl_panels(edges, n_nodes)
        w = w * pdf(xi)
        n, n_pan = self.s.size, edges.size - 1
        self.xi = xi
        self.xe: np.ndarray | None = None
        self.we: np.ndarray | None = None
        kinks = np.asarray(act.kinks, float)
        if kinks.size:
            xk = np.clip(kinks[None, :] / self.s[:, None], -L, L)          # (n, nk)
            pidx = np.clip(np.searchsorted(edges, xk, side="right") - 1, 0, n_pan - 1)
            hit = np.zeros((n, n_pan), bool)
            hit[np.arange(n)[:, None], pidx] = True
            self.W = np.where(np.repeat(hit, n_nodes, axis=1), 0.0, w[None, :])
            ex = np.sort(np.concatenate([edges[pidx], xk, edges[pidx + 1]], axis=1), axis=1)
            mids = 0.5 * (ex[:, :-1] + ex[:, 1:])
            midp = np.clip(np.searchsorted(edges, mids, side="right") - 1, 0, n_pan - 1)
            keep = hit[np.arange(n)[:, None], midp]
            xe, we = gl_panels(ex, n_nodes)
            self.xe, self.we = xe, we * pdf(xe) * np.repeat(keep, n_nodes, axis=1)
        else:
            self.W = w[None, :]

    def evaluate(self, f: Callable[[np.ndarray], np.ndarray], what: str, name: str
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """f(s_i xi) on the shared nodes (n, N) and on the kink sub-panels (n, Ne) or None."""
        with np.errstate(all="ignore"):
            F = np.asarray(f(self.s[:, None] * self.xi[None, :]), float)
            Fe = None if self.xe is None else np.asarray(f(self.s[:, None] * self.xe), float)
        if not (np.all(np.isfinite(F)) and (Fe is None or np.all(np.isfinite(Fe)))):
            raise DivergentMomentError(
                f"{what} of activation {name!r} is not finite on the Gaussian range "
                f"|x| <= {L_HERMITE:g} s of the scales given; its Gaussian moments do not "
                f"exist there")
        return F, Fe

    def integrate(self, F: np.ndarray, Fe: np.ndarray | None,
                  weight: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """sum_m w_im F_im weight(xi_m) for each i: E[weight(xi) h(s_i xi)]."""
        wc = self.W if weight is None else self.W * weight(self.xi)
        if wc.shape[0] == 1:             # shared weights: a matrix-vector product
            out = F @ wc[0]
        else:
            out = np.einsum("ij,ij->i", wc, F)
        if Fe is not None:
            assert self.xe is not None and self.we is not None
            we = self.we if weight is None else self.we * weight(self.xe)
            out = out + np.einsum("ij,ij->i", we, Fe)
        return out

    def moments(self, act: Activation, c: float, keys: tuple[str, ...] = MOMENT_KEYS
                ) -> dict[str, np.ndarray]:
        """The moments in ``keys`` (see :func:`scale_moments`)."""
        F, Fe = self.evaluate(act.fn, "phi", act.name)
        if "d2" in keys:
            D, De = self.evaluate(act.d1, "phi'", act.name)
        else:
            D, De = None, None
        return self.moments_from_values(F, Fe, D, De, c, keys)

    def moments_from_values(self, F: np.ndarray, Fe: np.ndarray | None,
                            D: np.ndarray | None, De: np.ndarray | None, c: float,
                            keys: tuple[str, ...] = MOMENT_KEYS) -> dict[str, np.ndarray]:
        s = self.s
        out: dict[str, np.ndarray] = {}
        if "mean" in keys:
            out["mean"] = self.integrate(F, Fe)
        if "e1" in keys:
            out["e1"] = self.integrate(F, Fe, lambda x: x) / s
        if "m2" in keys or "dm2" in keys:
            Fc2 = (F - c) ** 2
            Fec2 = None if Fe is None else (Fe - c) ** 2
            if "m2" in keys:
                out["m2"] = self.integrate(Fc2, Fec2)
            if "dm2" in keys:
                out["dm2"] = self.integrate(Fc2, Fec2, lambda x: x * x - 1.0) / (2.0 * s * s)
        if "d2" in keys:
            assert D is not None
            out["d2"] = self.integrate(D * D, None if De is None else De * De)
        return out


def rule_moments(act: Activation, s: np.ndarray, c: float) -> tuple[dict, tuple]:
    """1-D moments on the shared 16-node rule, checked against the 12-node rule.

    Returns the moments and (rule, F, Fe, D, De): phi and phi' on the rule's nodes.
    """
    rule = SampleRule(act, s, _NODES)
    F, Fe = rule.evaluate(act.fn, "phi", act.name)
    D, De = rule.evaluate(act.d1, "phi'", act.name)
    mom = rule.moments_from_values(F, Fe, D, De, c)
    check = SampleRule(act, s, _CHECK_NODES).moments(act, c, ("m2", "d2"))
    for key, what in (("m2", "E[phi_c^2]"), ("d2", "E[phi'^2]")):
        err = np.abs(mom[key] - check[key]) / np.maximum(np.abs(mom[key]), _TINY)
        if np.any(err > RULE_CHECK):
            i = int(np.argmax(err))
            raise ConvergenceError(
                f"the Gaussian quadrature rule does not resolve {act.name!r} at scale "
                f"s = {rule.s[i]:.6g} (12- and 16-node rules differ by {err[i]:.2g} in {what}); "
                f"phi bends on a scale far from Activation.scale = {act.scale:g}, or a kink "
                f"is not listed in Activation.kinks")
    return mom, (rule, F, Fe, D, De)


def scale_moments(act: Activation, s: np.ndarray, c: float,
                  keys: tuple[str, ...] = MOMENT_KEYS, check: bool = True
                  ) -> dict[str, np.ndarray]:
    """The 1-D moments in ``keys`` at the scales ``s`` (any shape) with centring ``c``: the
    implementation of :func:`rmt_deq.moments.scales.one_dimensional_moments`."""
    fam = relu_family(act)
    if fam is not None:     # phi = d + a x + g relu(x): every moment in closed form
        d, a, b = fam
        g = b - a
        dc = d - c
        full = {
            "mean": d + g * s * INV_SQRT_2PI + 0.0 * s,
            "e1": a + 0.5 * g + 0.0 * s,
            "m2": dc * dc + 2.0 * dc * g * s * INV_SQRT_2PI
            + s * s * (a * a + a * g + 0.5 * g * g),
            "dm2": 0.5 * (a * a + b * b) + dc * g * INV_SQRT_2PI / s,
            "d2": 0.5 * (a * a + b * b) + 0.0 * s,
        }
        return {k: np.asarray(full[k], float) for k in keys}
    if check:
        mom, _values = rule_moments(act, s.reshape(-1), c)
    else:
        mom = SampleRule(act, s.reshape(-1), _NODES).moments(act, c, keys)
    return {k: np.asarray(mom[k], float).reshape(s.shape) for k in keys}
