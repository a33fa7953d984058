"""Closed forms of the bivariate Gaussian expectations (docs/theory.md §2.2).

For a centred Gaussian pair (u, v) with standard deviations s_u, s_v and correlation
rho = cos t:

* the ReLU family, phi = d + a x + (b - a) relu(x) (relu, leaky_relu), through the
  arc-cosine kernel: E[relu(u) relu(v)] = s_u s_v (sin t + (pi - t) cos t) / (2 pi),
  E[u relu(v)] = Cov/2, E[relu'(u) relu'(v)] = (pi - t)/(2 pi);
* erf through the arcsine kernel: E[erf(u) erf(v)] =
  (2/pi) asin(2 S_uv / sqrt((1 + 2 S_uu)(1 + 2 S_vv))) and
  E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 S_uu)(1 + 2 S_vv) - 4 S_uv^2).

By linearity E[phi_c(u) phi_c(v)] = E[phi(u) phi(v)] - c (E[phi(u)] + E[phi(v)]) + c^2.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.errors import UnknownOptionError

__all__ = ["relu_family", "has_closed_form", "closed_pair_expectations", "INV_SQRT_2PI"]

#: 1 / sqrt(2 pi), the standard normal density at 0
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def relu_family(act: Activation) -> tuple[float, float, float] | None:
    """(d, a, b) with phi(x) = d + a x (x < 0), d + b x (x > 0) -- the ReLU family -- or
    None."""
    pcs = act.pieces
    if pcs is None or len(pcs) != 2 or pcs[0].hi != 0.0 or pcs[1].lo != 0.0:
        return None
    out = []
    for pc in pcs:
        c = list(pc.coeffs)
        while len(c) > 1 and c[-1] == 0.0:
            c.pop()
        if len(c) > 2:
            return None
        c = c + [0.0] * (2 - len(c))
        out.append(c)
    (d0, a), (d1, b) = out
    if d0 != d1:
        return None
    return float(d0), float(a), float(b)


def has_closed_form(activation: ActivationLike) -> bool:
    """Whether the bivariate expectations of phi have a closed form here (ReLU family, erf)."""
    act = get_activation(activation)
    return relu_family(act) is not None or act.closed_form == "erf"


def closed_pair_expectations(act: Activation, centring: float, su: np.ndarray,
                             sv: np.ndarray, rho: np.ndarray,
                             kinds: tuple[str, ...] = ("phi", "dphi"), xp: Any = np
                             ) -> dict[str, np.ndarray]:
    """Closed-form expectations of the ``kinds`` ("phi": E[phi_c(u) phi_c(v)] with
    phi_c = phi - ``centring``; "dphi": E[phi'(u) phi'(v)]), elementwise on broadcast
    arrays of the standard deviations su, sv and the correlation rho (clipped to [-1, 1]).
    The arrays may be of any array API namespace ``xp`` (the formulas use the standard's
    functions only).  Inputs are trusted; UnknownOptionError for an activation without
    closed forms."""
    acos, asin = (np.arccos, np.arcsin) if xp is np else (xp.acos, xp.asin)
    rho = xp.clip(rho, -1.0, 1.0)
    out: dict[str, np.ndarray] = {}
    fam = relu_family(act)
    if fam is not None:
        d, a, b = fam
        g = b - a
        theta = acos(rho)
        if "dphi" in kinds:
            out["dphi"] = a * a + a * g + (g * g / (2.0 * math.pi)) * (math.pi - theta)
        if "phi" in kinds:
            dc = d - float(centring)
            ss = su * sv
            # s_u s_v [ (a^2 + a g) rho + g^2 (sin t + (pi - t) rho) / (2 pi) ]
            arc = xp.sqrt((1.0 - rho) * (1.0 + rho))
            arc += (math.pi - theta) * rho
            val = ss * ((a * a + a * g) * rho + (g * g / (2.0 * math.pi)) * arc)
            if dc != 0.0:
                val += dc * dc + dc * g * (su + sv) * INV_SQRT_2PI
            out["phi"] = val
        return out
    if act.closed_form == "erf":
        prod = (1.0 + 2.0 * su * su) * (1.0 + 2.0 * sv * sv)
        cov = rho * su * sv
        if "dphi" in kinds:
            out["dphi"] = (4.0 / math.pi) / xp.sqrt(prod - 4.0 * cov * cov)
        if "phi" in kinds:
            c = float(centring)
            arg = xp.clip(2.0 * cov / xp.sqrt(prod), -1.0, 1.0)
            out["phi"] = (2.0 / math.pi) * asin(arg) + c * c   # E[erf] = 0
        return out
    raise UnknownOptionError(
        f"activation {act.name!r} has no closed-form bivariate expectation (closed forms: the "
        f"ReLU family and erf); use method='mehler' or 'quadrature'")

