"""What a returned four-equation solution guarantees: the error of tau and of each alpha,
propagated from the moment engine's error estimates, is below :data:`ACCURACY`.

alpha2 and alpha3 vanish for odd phi, so where E[phi''] is not resolved from zero they are
held to that accuracy relative to the value they take at g2 = :func:`g2_zero_level`.  A
solution that cannot be had to this accuracy raises
:class:`~rmt_deq.errors.PrecisionLossError` (the measured accuracy against mpmath:
docs/four_equations.md).
"""
from __future__ import annotations

import math

from rmt_deq.errors import PrecisionLossError

__all__ = ["ACCURACY", "ZERO_LEVEL", "g2_zero_level", "solution_errors", "check_accuracy"]

#: a solution whose estimated relative error (tau, alpha1..alpha4) exceeds this is not
#: returned (PrecisionLossError); the tests check every returned one against mpmath to
#: ten times this, for the error estimates themselves
ACCURACY = 1e-11

#: E[phi''] below ZERO_LEVEL x its rounding scale (|phi'(0)| + E[phi'^2]^(1/2))/tau counts as
#: zero when it is not resolved from zero (odd phi): alpha2, alpha3 are then held to an
#: absolute accuracy on the size they take at that level
ZERO_LEVEL = 1e-6

#: how far a moment moves when tau moves (by the heat equation, d/dtau E[h(tau xi)] =
#: tau E[h''(tau xi)]), in units of the relative change of tau: e2 scales like a power of
#: tau, g4 like |g4| + 2 h0 (a second-order term: the change of tau is of the order of the
#: rounding)
_DRIFT = 4.0
#: E[phi''] counts as resolved from zero when |e2| exceeds this multiple of its error
_RESOLVED = 2.0
#: the message points at the contraction limit when sa g exceeds this
_NEAR_LIMIT = 0.99


def g2_zero_level(d0: float, h0: float, tau: float) -> float:
    """The level of g2 = E[phi'']^2 at which alpha2, alpha3 count as zero (see
    :data:`ZERO_LEVEL`); ``d0`` = phi'(0), ``h0`` = E[phi'^2] at tau."""
    return (ZERO_LEVEL * (abs(d0) + math.sqrt(max(h0, 0.0))) / tau) ** 2


def solution_errors(fields: dict, d0: float) -> dict:
    """Relative errors of tau and the alphas propagated from the moments' error estimates
    (the precision of the moment engine; the iteration's own tolerance comes on top and is
    the caller's choice).  ``fields`` are the solution's fields (``moments`` with
    ``errors``, ``sa``, ``tau``, ``contraction``); ``d0`` = phi'(0).

    tau: the root moves by sa dV0 / (1 - sa g4/2); a moment moves with tau as the heat
    equation says (docs/theory.md §3.4), d/dtau E[h(tau xi)] = tau E[h''(tau xi)]: exactly
    tau e3 for e1, and taken as 4 |e2| for e2 (which scales like a power of tau, and
    vanishes identically for odd phi) and 4 (|g4| + 2 h0) for g4 (times the relative change
    of tau: a second-order term, since that change is of the order of the rounding);
    alpha1, alpha4 by sa dg / (1 - sa g); alpha2, alpha3 also through g2 = e2^2: relative
    to g2 when e2 is resolved from zero (|e2| > 2 de2), else relative to the larger of g2
    and :func:`g2_zero_level` (an absolute accuracy where E[phi''] vanishes, e.g. odd phi).
    """
    m = fields["moments"]
    E = m.errors
    sa, tau = fields["sa"], fields["tau"]
    q = tau * tau
    k1, k4 = fields["contraction"]["alpha1"], fields["contraction"]["tau_map"]
    e1, e2, g4, h0 = float(m.e1), float(m.e2), float(m.g4), float(m.h0)
    e3 = abs(float(m.e3))
    rel_tau = sa * float(E["V0"]) / (1.0 - k4) / (2.0 * q)
    shift = _DRIFT * rel_tau
    de1 = float(E["e1"]) + shift * q * e3
    de2 = float(E["e2"]) + shift * abs(e2)
    dg4 = float(E["g4"]) + shift * (abs(g4) + 2.0 * h0)
    rel_a1 = sa * (2.0 * abs(e1) * de1 + de1 * de1) / (1.0 - k1)
    rel_a4 = sa * dg4 / 2.0 / (1.0 - k4)
    dg2 = 2.0 * abs(e2) * de2 + de2 * de2
    g2_low = max(abs(e2) - de2, 0.0) ** 2
    size = g2_low if abs(e2) > _RESOLVED * de2 else max(g2_low, g2_zero_level(d0, h0, tau))
    rel_g2 = dg2 / size if size > 0 else (0.0 if dg2 == 0 else math.inf)
    out = {"tau": rel_tau, "alpha1": rel_a1, "alpha2": rel_g2 + 2.0 * rel_a4 + rel_a1,
           "alpha3": rel_g2 + 3.0 * rel_a1, "alpha4": rel_a4}
    return {k: (v if math.isfinite(v) else math.inf) for k, v in out.items()}


#: which moment drives the error of each output (for the message)
_DRIVER = {"tau": "V0 = E[phi_c^2]", "alpha1": "E[phi']", "alpha2": "E[phi'']",
           "alpha3": "E[phi'']", "alpha4": "g4 = E[(phi_c^2)'']"}


def check_accuracy(fields: dict, d0: float) -> dict:
    """The error estimate of the solution's ``fields`` (:func:`solution_errors`);
    PrecisionLossError past :data:`ACCURACY`."""
    est = solution_errors(fields, d0)
    name = fields["activation"]
    worst = max(est, key=est.get)
    if not est[worst] <= ACCURACY:
        k = max(fields["contraction"]["alpha1"], fields["contraction"]["tau_map"])
        near = (f" (amplified by 1/(1 - sa g) = {1 / (1 - k):.3g}: the fixed point is near "
                f"the contraction limit; a smaller sa helps)") if k > _NEAR_LIMIT else ""
        raise PrecisionLossError(
            f"{name!r} at sa = {fields['sa']:g}, tau0 = {fields['tau0']:g}: the estimated "
            f"relative error of {worst} is {est[worst]:.2g} (through {_DRIVER[worst]} at "
            f"tau = {fields['tau']:.3g}, engine {fields['method']}){near}, above the "
            f"guaranteed {ACCURACY:g}; the "
            f"moments lose their digits to rounding at this scale.  Rescale the data so that "
            f"tau0 is nearer 1 (X -> c X), or give the activation an analytic derivative= "
            f"and an mp_fn= (exact small-scale series), or use method='mpmath'")
    return est
