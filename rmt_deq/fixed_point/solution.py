"""The solution of the four-equation system (docs/theory.md §3.2): the result type."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping

from rmt_deq._io import json_ready
from rmt_deq._results import SolverReport, frozen_mapping
from rmt_deq.moments.result import GaussianMoments

__all__ = ["FixedPointSolution"]


@dataclass(frozen=True, eq=False)
class FixedPointSolution:
    """Solution of the four equations (docs/theory.md §3.2), with diagnostics.

    A solution is only returned when it converged: its residual met its tolerance (else
    :class:`~rmt_deq.errors.ConvergenceError`) and its estimated error is below
    :data:`rmt_deq.fixed_point.accuracy.ACCURACY` (else
    :class:`~rmt_deq.errors.PrecisionLossError`).  Frozen, with read-only mappings;
    compared by identity.

    Attributes
    ----------
    activation : str
        Canonical activation spec.
    sa, sb, tau0 : float
        Inputs: weight variances and the data scale tau0 = sqrt(tr C°/p).
    tau : float
        Fixed-point scale of the preactivations (sqrt of the diagonal of Sigma).
    alpha1, alpha2, alpha3, alpha4 : float
        Coefficients of the CK surrogate (alpha4 is the helper for the diagonal).
    g1, g2, g4 : float
        E[phi']^2, E[phi'']^2, E[(phi_c^2)''] at tau.
    centring : float
        E[phi(tau xi)], subtracted from phi to make phi_c.
    moments : GaussianMoments
        Every Gaussian moment at tau (e1, e2, e3, h0, h2, V0...).
    contraction : mapping
        ``tau_map`` = sa g4/2 (derivative of the tau map, must be < 1), ``alpha1`` = sa g1
        (< 1), ``deq_jacobian`` = sa h0 = sa E[phi'^2] (< 1 for the infinite-width NTK and the
        finite-width forward map to be stable; reported, not required by the CK)
        (docs/theory.md §3.3).
    error_estimate : mapping
        Estimated relative error of ``tau``, ``alpha1``..``alpha4`` due to the precision of
        the moments (propagated from the moment engine's error estimates; alpha2, alpha3
        relative to the larger of |alpha| and their size at
        :func:`rmt_deq.fixed_point.accuracy.g2_zero_level`); each is below
        :data:`~rmt_deq.fixed_point.accuracy.ACCURACY`.  The iteration's tolerance ``tol``
        comes on top.  Empty for ``method="mpmath"`` (its error is about 10^-dps).
    unique : bool
        Whether T(q) - q has a single sign change on the scanned range [0, q_scan].
    q_scan : float
        Upper end of the uniqueness scan (in q = tau^2; infinite when uniqueness is proved
        rather than scanned, 0 when not checked).
    method : str
        Moment engine used.
    report : SolverReport
        How the solve went: ``residual`` (max absolute residual of the four equations, the
        tau equation relative to tau^2; for ``method="mpmath"`` evaluated at ``dps + 10``
        digits), the ``tolerance`` it met, ``iterations`` (Newton iterations on q = tau^2;
        secant iterations for ``method="mpmath"``), ``history`` (the relative residual of
        the tau equation at each iteration) and ``message`` (with a warning when the scan
        found another root).
    """

    activation: str
    sa: float
    sb: float
    tau0: float
    tau: float
    alpha1: float
    alpha2: float
    alpha3: float
    alpha4: float
    g1: float
    g2: float
    g4: float
    centring: float
    moments: GaussianMoments = field(repr=False)
    contraction: Mapping[str, float]
    error_estimate: Mapping[str, float]
    unique: bool
    q_scan: float
    method: str
    report: SolverReport = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "contraction", frozen_mapping(self.contraction, arrays=False))
        object.__setattr__(self, "error_estimate",
                           frozen_mapping(self.error_estimate, arrays=False))

    @property
    def V0(self) -> float:
        """E[phi_c(tau xi)^2] = (tau^2 - sb tau0^2)/sa."""
        return float(self.moments.V0)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (strict: non-finite numbers, e.g. an infinite ``q_scan``,
        become None): the fields, ``moments`` as numbers and ``report`` as a dictionary."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["contraction"] = dict(self.contraction)
        d["error_estimate"] = dict(self.error_estimate)
        d["moments"] = self.moments.to_dict()
        d["report"] = self.report.to_dict()
        return json_ready(d)
