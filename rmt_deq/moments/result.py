"""The Gaussian moments of an activation at a scale tau, and their assembly from raw moments.

Every engine (closed forms, quadrature, series, mpmath, table) computes the *raw moments* of
:mod:`rmt_deq.moments.closed_forms` (Hermite-weighted averages of phi centred at phi(0));
:func:`moments_from_raw` turns them into the moments the four-equation system uses
(docs/theory.md §3.1), with Stein's lemma (docs/theory.md §3.4) giving the derivative
moments without differentiating a kinked phi.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._results import frozen_mapping, readonly

__all__ = ["GaussianMoments", "FIELDS", "moments_from_raw"]

#: the moment fields of :class:`GaussianMoments` (also the order of the table engine)
FIELDS = ("mean", "second", "V0", "e1", "e2", "e3", "h0", "h2", "g4")
_EPS = float(np.finfo(float).eps)


@dataclass(frozen=True, eq=False)
class GaussianMoments:
    """Gaussian moments of phi at scale tau (arrays of tau's shape, or floats).

    Frozen: array fields are read-only, ``errors`` is a read-only mapping.  Compared by
    identity (``eq=False``, as every result of the package).

    Attributes
    ----------
    tau : the scale (standard deviation of the preactivation)
    mean : E[phi(tau xi)], the centring constant of phi_c = phi - mean
    second : E[phi^2]
    V0 : E[phi_c^2] = second - mean^2
    e1, e2, e3 : E[phi'], E[phi''], E[phi''']
    h0 : E[phi'^2]
    h2 : E[(phi'^2)'']
    g4 : E[(phi_c^2)'']  (phi_c centred at this tau)
    method : the engine that produced them
    errors : mapping or None
        Estimated absolute error of each field above (same shapes), from the float64
        engines; ``None`` where no estimate was made (mpmath, or not requested).
    """

    tau: Any
    mean: Any
    second: Any
    V0: Any
    e1: Any
    e2: Any
    e3: Any
    h0: Any
    h2: Any
    g4: Any
    method: str
    errors: Mapping[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        arrays = [k for k, v in self.__dict__.items() if type(v) is np.ndarray]
        for name in arrays:
            object.__setattr__(self, name, readonly(getattr(self, name)))
        if self.errors is not None:
            # (scalar moments have scalar errors: no array to freeze)
            object.__setattr__(self, "errors", frozen_mapping(self.errors, arrays=bool(arrays)))

    @property
    def g1(self) -> Any:
        """E[phi']^2."""
        return self.e1 * self.e1

    @property
    def g2(self) -> Any:
        """E[phi'']^2."""
        return self.e2 * self.e2

    def to_dict(self) -> dict:
        """JSON-ready dictionary: tau, the moments, g1, g2 (numbers, or lists for arrays)
        and method; the error estimates are left out.  mpmath numbers become floats."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "errors"}
        d["g1"], d["g2"] = self.g1, self.g2
        return json_ready({k: v if isinstance(v, (str, np.ndarray)) else float(v)
                           for k, v in d.items()})


def moments_from_raw(raw: Mapping[str, Any], tau: Any, method: str) -> GaussianMoments:
    """Assemble :class:`GaussianMoments` from centred raw moments (floats, arrays or mpf).

    ``raw`` holds the raw moments of P = phi - p0 with ``p0 = raw["p0"]`` (0 when absent:
    the raw moments of phi itself), and optionally ``raw["err"]``, their absolute error
    estimates, which are propagated to the fields (``GaussianMoments.errors``).  The inputs
    are trusted (the engines' own output at a valid tau).
    """
    t = tau
    p0 = raw.get("p0", 0.0)
    mP = raw["phi"]
    mean = p0 + mP
    V0 = raw["phi2"] - mP * mP
    g4 = (raw["He2_phi2"] - 2.0 * mP * raw["He2_phi"]) / t ** 2
    errors = None
    if "err" in raw:
        e = raw["err"]
        amP, ahe2 = abs(mP), abs(raw["He2_phi"])
        e_mean = e["phi"] + _EPS * (abs(p0) + abs(mean))
        e_V0 = e["phi2"] + 2.0 * amP * e["phi"] + _EPS * (abs(raw["phi2"]) + mP * mP)
        errors = {
            "mean": e_mean, "V0": e_V0,
            "second": e_V0 + 2.0 * abs(mean) * e_mean,
            "e1": e["He1_phi"] / t, "e2": e["He2_phi"] / t ** 2, "e3": e["He3_phi"] / t ** 3,
            "h0": e["dphi2"], "h2": e["He2_dphi2"] / t ** 2,
            "g4": (e["He2_phi2"] + 2.0 * (amP * e["He2_phi"] + ahe2 * e["phi"])
                   + _EPS * (abs(raw["He2_phi2"]) + 2.0 * amP * ahe2)) / t ** 2,
        }
    return GaussianMoments(
        tau=t, mean=mean, second=V0 + mean * mean, V0=V0,
        e1=raw["He1_phi"] / t, e2=raw["He2_phi"] / t ** 2, e3=raw["He3_phi"] / t ** 3,
        h0=raw["dphi2"], h2=raw["He2_dphi2"] / t ** 2, g4=g4, method=method, errors=errors)
