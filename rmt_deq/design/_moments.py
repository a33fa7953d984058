"""Closed-form Gaussian moments of the design families' layer kinds, valid for floats and
for forward-mode dual numbers (:mod:`rmt_deq.design._dual`: a value and its gradient with
respect to the free parameters), for the analytic Jacobians of the design
(docs/theory.md §6.4, §6.7).

Every moment is at input variance q = s^2, xi ~ N(0, 1), and returned as
(g1, g2, g4, V0, h0) = (E[s']^2, E[s'']^2, E[(s_c^2)''], E[s_c^2], E[s'^2]); each is
written so that it neither cancels nor over/underflows where the result is a float64
number (checked against the sympy derivation in derivations/enn_design.py and mpmath in
tests/test_design.py).
"""
from __future__ import annotations

import math
from typing import Any

from scipy.special import gammainc as _gammainc

from rmt_deq.design._dual import Dual, dual_sqrt, value

__all__ = ["INV_SQRT_2PI", "moments_pwlinear", "moments_hermite", "moments_hardtanh",
           "moments_hardtanhlin"]

INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ----------------------------------------------------------------------------------------
# closed-form moments of the layer kinds (all at input variance q = s^2)
# returns (g1, g2, g4, V0, h0) = (E[s']^2, E[s'']^2, E[(s_c^2)''], E[s_c^2], E[s'^2])
# ----------------------------------------------------------------------------------------
def moments_pwlinear(a: Any, b: Any, q: Any) -> tuple:
    """sigma(t) = a t (t > 0), b t (t < 0): e1 = (a+b)/2, E[sigma''] = (a-b) pdf(0)/s,
    mean (a-b) s/sqrt(2 pi), E[sigma^2] = (a^2+b^2) q/2, E[sigma'^2] = (a^2+b^2)/2."""
    u, w = a + b, a - b
    sq = a * a + b * b
    ww = w * w
    g1 = u * u * 0.25
    g2 = ww / (2.0 * math.pi * q)
    g4 = sq - ww * (1.0 / math.pi)
    V0 = q * (sq * 0.5 - ww * (0.5 / math.pi))
    h0 = sq * 0.5
    return g1, g2, g4, V0, h0


def moments_hermite(a: Any, b: Any, c: Any, q: Any) -> tuple:
    """sigma(t) = a t + b (t^2 - q) + c (t^3 - 3 q t) at its own input variance q (mean 0):
    e1 = a, e2 = 2b, V0 = a^2 q + 2 b^2 q^2 + 6 c^2 q^3,
    g4/2 = a^2 + 4 b^2 q + 18 c^2 q^2 + 6 a c q, h0 = a^2 + 4 b^2 q + 18 c^2 q^2.

    Evaluated through the dimensionless B = b sqrt(q) and C = c q (V0 = q (a^2 + 2 B^2 +
    6 C^2), h0 = a^2 + 4 B^2 + 18 C^2): no power of q alone, so nothing overflows or
    underflows at data scales where the network's own quantities are float64 numbers."""
    aa = a * a
    g2 = 4.0 * (b * b)
    if isinstance(c, (int, float)) and c == 0:
        BB = (b * b) * q
        V0 = q * (aa + 2.0 * BB)
        h0 = aa + 4.0 * BB
        g4 = 2.0 * h0
    else:
        B = b * dual_sqrt(q)
        C = c * q
        BB, CC = B * B, C * C
        V0 = q * (aa + 2.0 * BB + 6.0 * CC)
        h0 = aa + 4.0 * BB + 18.0 * CC
        g4 = 2.0 * h0 + 12.0 * a * C
    return aa, g2, g4, V0, h0


def _clip_terms(z: Any) -> tuple:
    """Gaussian terms of a clip at z = c/s (xi ~ N(0, 1)), each evaluated without
    cancellation (value and, for a dual z, gradient)::

        P = P(|xi| < z) = erf(z/sqrt 2),          dP/dz = 2 pdf(z)
        Q = 1 - P = erfc(z/sqrt 2),               dQ/dz = -2 pdf(z)
        K = E[xi^2; |xi| < z] = P - 2 z pdf(z)     dK/dz = 2 z^2 pdf(z)
          = gammainc(3/2, z^2/2)  (P(chi^2_3 < z^2); P - 2 z pdf(z) loses every digit
          when z is small, ~z^3 from two terms ~z)
        zphi = z pdf(z)
    """
    zv = value(z)
    x = zv * (1.0 / math.sqrt(2.0))
    pdf = math.exp(-0.5 * zv * zv) * INV_SQRT_2PI
    P, Q, K = math.erf(x), math.erfc(x), float(_gammainc(1.5, 0.5 * zv * zv))
    zphi = zv * pdf
    if isinstance(z, Dual):
        g = z.g
        return (Dual(P, g * (2.0 * pdf)), Dual(Q, g * (-2.0 * pdf)),
                Dual(K, g * (2.0 * zv * zv * pdf)), Dual(zphi, g * ((1.0 - zv * zv) * pdf)))
    return P, Q, K, zphi


def moments_hardtanh(a: Any, c: Any, q: Any) -> tuple:
    """sigma(t) = a clip(t, -c, c) (odd, mean 0); z = c/s and P, Q, K of
    :func:`_clip_terms`: e1 = a P, V0 = a^2 q (K + z^2 Q), g4 = 2 a^2 K, h0 = a^2 P."""
    s = dual_sqrt(q)
    z = c / s
    P, Q, K, _ = _clip_terms(z)
    aa = a * a
    g1 = aa * P * P
    g2 = 0.0 * aa
    V0 = aa * q * (K + z * z * Q)
    g4 = 2.0 * aa * K
    h0 = aa * P
    return g1, g2, g4, V0, h0


def moments_hardtanhlin(a: Any, c: Any, b: Any, q: Any) -> tuple:
    """sigma(t) = a clip(t, -c, c) + b t (odd, mean 0); z = c/s, phi = pdf(z) and P, Q,
    K = P - 2 z phi of :func:`_clip_terms`.  Returns (g1, g2, g4, V0, h0, e1 e3, h2) with
    (Stein's lemma and sigma'' = a (delta(t + c) - delta(t - c)))::

        e1 = a P + b,   e3 = -2 a z phi / q,   h0 = a^2 P + 2 a b P + b^2,
        h2 = E[(sigma'^2)''] = -2 (a^2 + 2 a b) z phi / q,
        V0 = q (a^2 (K + z^2 Q) + 2 a b P + b^2),
        g4 = 2 h0 + 2 E[sigma sigma''] = 2 h0 - 4 a (a + b) z phi
           = 2 a^2 K + 4 a b (P - z phi) + 2 b^2.

    b = 0 is the hard tanh of :func:`moments_hardtanh`."""
    s = dual_sqrt(q)
    z = c / s
    P, Q, K, zpdf = _clip_terms(z)
    aa, ab = a * a, a * b
    e1 = a * P + b
    e3 = a * zpdf * (-2.0) / q
    h0 = (aa + 2.0 * ab) * P + b * b
    h2 = (aa + 2.0 * ab) * zpdf * (-2.0) / q
    V0 = q * (aa * (K + z * z * Q) + 2.0 * ab * P + b * b)
    g4 = 2.0 * aa * K + 4.0 * ab * (P - zpdf) + 2.0 * (b * b)
    return e1 * e1, 0.0 * aa, g4, V0, h0, e1 * e3, h2
