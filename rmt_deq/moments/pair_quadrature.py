"""2-D quadrature of the bivariate Gaussian expectations (the engine of last resort, for
|rho| near 1 where the Mehler series would need too many terms).

Conditioned on x1: the inner integral over x2 (a Gaussian smoothing of f at width
s_v sqrt(1 - rho^2)) is split at the kinks of phi in v, the outer one at the kinks in u
and refined geometrically around the points where the smoothed function varies on the
scale sqrt(1 - rho^2)/|rho| (docs/theory.md §3.5).  Each value carries an error estimate
(the difference of a 12- and a 16-node rule on the same panels); |rho| = 1 reduces to a
1-D integral.  Inputs are trusted (a resolved Activation, scales > 0, |rho| <= 1).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from rmt_deq.activations import Activation
from rmt_deq.errors import ConvergenceError
from rmt_deq.moments._scale_rule import KIND_TEXT, gl_panels, kind_function, pdf, scale_points

__all__ = ["quad_pairs"]

_L_QUAD = 12.0          # xi range of the 2-D quadrature (pdf(12) ~ 5e-32)
_STEP_QUAD = 1.0        # uniform panel width in xi
_NODES, _CHECK_NODES = 16, 12   # nodes per panel of the rule, and of its error estimate


def _quad_1d_pair(act: Activation, f: Callable, su: float, sv: float, sign: float,
                  n_nodes: int) -> float:
    """E[f(su x) f(sign sv x)] for |rho| = 1."""
    L = _L_QUAD
    kinks = np.asarray(act.kinks, float)
    pts = np.concatenate([np.arange(-L, L + 0.5, _STEP_QUAD), kinks / su, sign * kinks / sv,
                          scale_points(act, su), scale_points(act, sv)])
    edges = np.unique(np.clip(pts, -L, L))
    x, w = gl_panels(edges, n_nodes)
    return float(np.sum(w * pdf(x) * f(su * x) * f(sign * sv * x)))


def _geometric_around(center: float, h: float, top: float) -> np.ndarray:
    """center +- h 2^j for j = -2, -1, ... while h 2^j <= top."""
    if not (h > 0 and math.isfinite(center)):
        return np.array([center]) if math.isfinite(center) else np.zeros(0)
    j_hi = int(math.floor(math.log2(top / h))) if top > h else -2
    off = h * 2.0 ** np.arange(-2, max(j_hi, -2) + 1)
    return np.concatenate([[center], center + off, center - off])


def _quad_2d_pair(act: Activation, f: Callable, su: float, sv: float, rho: float,
                  n_nodes: int) -> float:
    """E[f(su x1) f(sv (rho x1 + r x2))], r = sqrt(1 - rho^2) > 0, by nested Gauss-Legendre."""
    L = _L_QUAD
    r = math.sqrt((1.0 - rho) * (1.0 + rho))
    kinks = np.asarray(act.kinks, float)
    sig = sv * r                             # inner smoothing width, in v
    outer = [np.arange(-L, L + 0.5, _STEP_QUAD), kinks / su, scale_points(act, su)]
    if rho != 0.0:
        h = r / abs(rho)                     # scale of the smoothed f in x1
        for k in kinks:
            outer.append(_geometric_around(k / (sv * rho), h, 1.0))
        # smooth phi bends at |v| ~ scale: x1 ~ scale 2^j / (sv |rho|), and on scale h
        outer.append(scale_points(act, sv * abs(rho)))
        outer.append(_geometric_around(0.0, h, 1.0))
    edges1 = np.unique(np.clip(np.concatenate(outer), -L, L))
    x1, w1 = gl_panels(edges1, n_nodes)
    w1 = w1 * pdf(x1)
    m = sv * rho * x1                        # inner mean (in v) at each outer node
    base2 = np.arange(-L, L + 0.5, _STEP_QUAD)
    vpts = np.concatenate([kinks, act.scale * 2.0 ** np.arange(-5, 7),
                           -act.scale * 2.0 ** np.arange(-5, 7), [0.0]])
    inner_pts = (vpts[None, :] - m[:, None]) / sig
    edges2 = np.sort(np.concatenate(
        [np.broadcast_to(base2, (x1.size, base2.size)), np.clip(inner_pts, -L, L)], axis=1),
        axis=1)
    x2, w2 = gl_panels(edges2, n_nodes)
    w2 = w2 * pdf(x2)
    with np.errstate(all="ignore"):
        inner = np.sum(w2 * f(m[:, None] + sig * x2), axis=1)
        val = float(np.sum(w1 * f(su * x1) * inner))
    return val


def quad_pairs(act: Activation, kind: str, centring: float, su: np.ndarray, sv: np.ndarray,
                rho: np.ndarray, scale: np.ndarray, tol: float) -> np.ndarray:
    """E[f(u) f(v)] (f by ``kind``) by 2-D quadrature for flat arrays of pairs, each
    certified to ``tol * scale``: the difference of the 16- and the 12-node rule on the
    same panels is its error estimate (ConvergenceError past it)."""
    f = kind_function(act, kind, centring)
    out = np.empty(su.size)
    for i in range(su.size):
        a, b, p = float(su[i]), float(sv[i]), float(min(1.0, max(-1.0, rho[i])))
        if abs(p) >= 1.0:
            q16 = _quad_1d_pair(act, f, a, b, math.copysign(1.0, p), _NODES)
            q12 = _quad_1d_pair(act, f, a, b, math.copysign(1.0, p), _CHECK_NODES)
        else:
            q16 = _quad_2d_pair(act, f, a, b, p, _NODES)
            q12 = _quad_2d_pair(act, f, a, b, p, _CHECK_NODES)
        err = abs(q16 - q12)
        if not math.isfinite(q16) or err > tol * scale[i]:
            raise ConvergenceError(
                f"2-D quadrature of {KIND_TEXT[kind]} for {act.name!r} at s_u = {a:.6g}, "
                f"s_v = {b:.6g}, rho = {p:.17g}: error "
                f"estimate {err:.3g} exceeds the tolerance {tol * scale[i]:.3g}; loosen the "
                f"tolerance or check the activation's kinks/scale", [err])
        out[i] = q16
    return out
