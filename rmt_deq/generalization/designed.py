"""The one adapter to the designed explicit network (docs/theory.md §6).

Everything this layer needs from :mod:`rmt_deq.design` goes through
:func:`designed_explicit`: the design of a shallow network whose CK surrogate equals the
DEQ's, its random features at width m, and its exact infinite-width CK.  When the design
package changes, only this function changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from rmt_deq._results import frozen_mapping
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.design.solve import design_for_deq
from rmt_deq.networks.explicit import ExplicitNetwork

__all__ = ["DesignedExplicit", "designed_explicit", "DEFAULT_FAMILIES"]

#: the design family per DEQ activation: an exact CK match with the fewest layers
#: (docs/theory.md §6.7); other activations use the general ``quadcubic2``
DEFAULT_FAMILIES = {"relu": "lrelu2", "tanh": "htanh1"}
_GENERAL_FAMILY = "quadcubic2"


@dataclass(frozen=True, eq=False)
class DesignedExplicit:
    """A designed explicit network, as this layer uses it.

    Attributes
    ----------
    family : str
    relative_residual : float
        Largest relative error of the four matched CK quantities (the designed network's
        CK surrogate equals the DEQ's to this accuracy).
    features : callable (X, width, rng, hidden_width=None) -> ndarray (m, n)
        h_L of a network with unit-variance Gaussian weights drawn from ``rng``; the
        layers below the last are ``hidden_width`` wide (default ``width``).
    exact_layers : callable (X) -> tuple of ndarray (n, n)
        The infinite-width kernels K_1, ..., K_L of the layers (K_L is the CK).
    gains : tuple of float
        g_l = E[sigma_l'(tau_{l-1} xi)]^2 of each layer at its input scale (the
        derivative of the layer's kernel map off the diagonal).
    first_layer : ExplicitNetwork
        The first layer alone, pinned to the data scale (its CK is K_1).
    record : mapping
        The design's JSON-ready record.
    """

    family: str
    relative_residual: float
    features: Callable[..., np.ndarray] = field(repr=False)
    exact_layers: Callable[[np.ndarray], tuple] = field(repr=False)
    gains: tuple
    first_layer: ExplicitNetwork = field(repr=False)
    record: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def depth(self) -> int:
        """L, the number of hidden layers."""
        return len(self.gains)

    def exact_ck(self, X: np.ndarray) -> np.ndarray:
        """The infinite-width CK K_L on X (p x n, columns are samples)."""
        return self.exact_layers(X)[-1]


def designed_explicit(activation: ActivationLike, sa: float, tau0: float,
                      sb: float | None = None, family: str | None = None) -> DesignedExplicit:
    """Design the explicit network matching the DEQ's CK at the data scale tau0.

    Raises
    ------
    InfeasibleDesignError
        The family cannot match this DEQ (from the design solver).
    """
    name = get_activation(activation).name
    fam = family if family is not None else DEFAULT_FAMILIES.get(name, _GENERAL_FAMILY)
    net = design_for_deq(activation, sa, tau0, sb, family=fam, target="ck")

    def features(X: np.ndarray, width: int, rng: Any,
                 hidden_width: int | None = None) -> np.ndarray:
        w = net.sample_weights(width, X.shape[0], rng, hidden_width=hidden_width)
        return np.asarray(net.forward(X, weights=w).features)

    def exact_layers(X: np.ndarray) -> tuple:
        k = net.exact_kernels(X, groups=("v",))
        return tuple(np.asarray(K) for K in k.info.layers[1:])

    return DesignedExplicit(family=fam, relative_residual=float(net.relative_residual),
                            features=features, exact_layers=exact_layers,
                            gains=tuple(float(c.moments.g1) for c in net.coefficients().layers),
                            first_layer=ExplicitNetwork(net.network.layers[:1]),
                            record=frozen_mapping(net.record(), arrays=False))
