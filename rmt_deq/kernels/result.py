"""One result type for every kernel the package computes: :class:`Kernel`.

Whatever the route (the exact infinite-width fixed point, a Monte-Carlo average over
finite-width networks, or the RMT surrogate) and whatever the network (a DEQ or an explicit
network), a kernel on n samples comes back as a :class:`Kernel`: the conjugate kernel
``ck`` and/or the neural tangent kernel ``ntk`` (with its parameter groups), the data scale
it was computed at, the Monte-Carlo error bars when it was sampled, the report of the solver
that produced it, and the route's own diagnostics in ``info``.  The arrays are read-only and
the mappings are read-only views, so a result can be shared without being copied.

Which matrix is which (docs/theory.md §2): for a DEQ, ``ck`` is G, the conjugate kernel of
z = phi_c(u)/sqrt(m), G_ij = E[phi_c(u_i) phi_c(u_j)] -- not the preactivation kernel
Sigma = sa G + sb X^T X, which exact results carry in ``info``; for an explicit network
``ck`` is K_L, the kernel of its last hidden layer.  ``ntk`` is the NTK of the readout
f = v^T z summed over the ``selected`` parameter groups ("v", "A", "B" for a DEQ; "v",
"W1".."WL" for an explicit network).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._results import SolverReport, frozen_mapping, readonly

__all__ = ["Kernel", "ROUTES", "NETWORKS"]

#: how a kernel was obtained
ROUTES = ("exact", "sampled", "surrogate")
#: which kind of network it belongs to
NETWORKS = ("deq", "explicit")


@dataclass(frozen=True, eq=False)
class Kernel:
    """A CK and/or NTK on n samples (columns of X, p x n), with how it was obtained.

    Attributes
    ----------
    route : {"exact", "sampled", "surrogate"}
        Exact infinite-width kernel, Monte-Carlo average over finite-width networks, or the
        RMT surrogate (docs/theory.md §2, §8, §4-5).
    network : {"deq", "explicit"}
    ck : ndarray, shape (n, n), or None
        The conjugate kernel (G for a DEQ, K_L for an explicit network), when computed.
    ntk : ndarray, shape (n, n), or None
        The NTK summed over ``selected``, when computed.
    groups : mapping of str to ndarray, shape (n, n)
        The NTK contribution of each selected parameter group (empty without an NTK).
    selected : tuple of str
        The groups summed into ``ntk``, in canonical order.
    tau0 : float
        The data scale sqrt(tr C°/p) the activations were centred at (docs/theory.md §1).
    tau0_source : str
        Where ``tau0`` came from ("given", "mixture statistics", "plug-in from labels", or
        the stated fallback without labels).
    error : mapping of str to float
        Monte-Carlo error bars (operator norm, at ``info.confidence``) of "ck", "ntk" and
        each group, for ``route="sampled"``; empty otherwise.
    error_relative : mapping of str to float
        The same error bars divided by the operator norm of the matrix they bound (inf
        when there is no bar, from a single realization); empty when ``error`` is.
    report : SolverReport or None
        How the route's solver converged (the kernel fixed point, the surrogate's
        four-equation solve), when there is one.
    solution : FixedPointSolution or None
        The four-equation solution of a DEQ (tau, the centring, alpha1..alpha4).
    info : object
        The route's own diagnostics (a frozen dataclass): e.g. Sigma and Gdot for an exact
        DEQ kernel, the sampling record for a sampled one, the coefficients and statistics
        of a surrogate.
    """

    route: str
    network: str
    ck: np.ndarray | None = field(default=None, repr=False)
    ntk: np.ndarray | None = field(default=None, repr=False)
    groups: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    selected: tuple = ()
    tau0: float = float("nan")
    tau0_source: str = ""
    error: Mapping[str, float] = field(default_factory=dict)
    error_relative: Mapping[str, float] = field(default_factory=dict)
    report: SolverReport | None = None
    solution: Any = field(default=None, repr=False)
    info: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {self.route!r}")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {self.network!r}")
        if self.ck is None and self.ntk is None:
            raise ValueError("a Kernel holds a ck, an ntk, or both")
        for name in ("ck", "ntk"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, readonly(value, dtype=float))
        object.__setattr__(self, "groups", frozen_mapping(self.groups))
        for name in ("error", "error_relative"):
            object.__setattr__(self, name, frozen_mapping(
                {k: float(v) for k, v in getattr(self, name).items()}))
        object.__setattr__(self, "selected", tuple(self.selected))
        object.__setattr__(self, "tau0", float(self.tau0))

    @property
    def n(self) -> int:
        """The number of samples."""
        return int((self.ck if self.ck is not None else self.ntk).shape[0])

    @property
    def kind(self) -> str:
        """"ntk" when there is an NTK, else "ck": what :attr:`matrix` is (and the key of its
        error bar in ``error``)."""
        return "ntk" if self.ntk is not None else "ck"

    @property
    def matrix(self) -> np.ndarray:
        """The NTK when there is one, else the CK (the kernel a job writes out)."""
        return self.ntk if self.ntk is not None else self.ck

    def replace(self, **changes: Any) -> "Kernel":
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self, arrays: bool = False) -> dict:
        """JSON-ready summary: route, network, selected groups, tau0 and its source, error
        bars, the solver report, the solution's scalars and the ``info``'s own summary
        (when it has a ``to_dict``); with ``arrays`` also the matrices as nested lists
        (large)."""
        d: dict[str, Any] = {
            "route": self.route, "network": self.network, "n": self.n,
            "kinds": [k for k in ("ck", "ntk") if getattr(self, k) is not None],
            "selected": list(self.selected), "tau0": self.tau0,
            "tau0_source": self.tau0_source, "error": dict(self.error),
            "error_relative": dict(self.error_relative),
            "report": None if self.report is None else self.report.to_dict(),
        }
        if self.solution is not None and hasattr(self.solution, "to_dict"):
            d["solution"] = self.solution.to_dict()
        if self.info is not None and hasattr(self.info, "to_dict"):
            d["info"] = self.info.to_dict()
        if arrays:
            d["ck"] = self.ck
            d["ntk"] = self.ntk
            d["groups"] = dict(self.groups)
        return json_ready(d)
