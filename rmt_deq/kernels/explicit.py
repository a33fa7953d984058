"""Exact infinite-width CK and NTK of explicit networks, by the layer recursion.

K_0 = X^T X and, with (u_i, u_j) centred Gaussian of covariance K_{l-1} restricted to
{i, j}, K_l = E[sigma_l,c(u_i) sigma_l,c(u_j)] and Kdot_l = E[sigma_l'(u_i) sigma_l'(u_j)];
the CK is K_L and the NTK groups are v: K_L and W<l>: K_{l-1} o Kdot_l o ... o Kdot_L
(docs/theory.md §6).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from rmt_deq._validation import as_data_matrix, check_memory, memory_budget
from rmt_deq.moments.pairs import PairExpectations
from rmt_deq.data.conventions import data_scale
from rmt_deq.errors import InvalidParameterError
from rmt_deq.networks.explicit import (ExplicitNetwork, ExplicitScales, _as_network, _check_groups,
                                      explicit_scales)

__all__ = ["ExactExplicitKernels", "exact_explicit_kernels"]


@dataclass(frozen=True, eq=False)
class ExactExplicitKernels:
    """Infinite-width CK and NTK of an explicit network (layer recursion).

    Attributes
    ----------
    ck : ndarray, shape (n, n)
        K_L.
    layers : tuple of ndarray
        K_0 = X^T X, K_1, ..., K_L.
    derivatives : tuple of ndarray
        Kdot_1..Kdot_L, Kdot_l = E[sigma_l'(u_i) sigma_l'(u_j)] at covariance K_{l-1}.
    ntk_groups : dict of str -> ndarray
        "v": K_L; "W<l>": K_{l-1} o Kdot_l o ... o Kdot_L.
    scales : ExplicitScales
    network : ExplicitNetwork
    tau0_source : str
        Where tau0 = ``scales.tau[0]`` came from (:func:`rmt_deq.data.conventions.data_scale`).
    """

    ck: np.ndarray = field(repr=False)
    layers: tuple = field(repr=False)
    derivatives: tuple = field(repr=False)
    ntk_groups: Mapping[str, np.ndarray] = field(repr=False)
    scales: ExplicitScales
    network: ExplicitNetwork
    tau0_source: str = ""

    def ntk(self, groups: Iterable[str] | None = None) -> np.ndarray:
        """Sum of the selected NTK groups (default all)."""
        sel = _check_groups(self.network, groups)
        return sum(self.ntk_groups[g] for g in sel)


def exact_explicit_kernels(X: Any, network: Any, *, tau0: float | None = None,
                           labels: Any = None, method: str = "auto",
                           max_memory: float | None = None) -> ExactExplicitKernels:
    """Exact infinite-width CK and NTK of an explicit network by the layer recursion.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples); every column nonzero.
    network : ExplicitNetwork or sequence of spec strings
    tau0 : float, optional
        Data scale sqrt(tr C°/p) of the centring (default
        :func:`rmt_deq.data.conventions.data_scale`, recorded in ``tau0_source``).
    labels : array_like, shape (n,), optional
        Class labels, used only for the default tau0 (plug-in tr(C°)/p).
    method : {"auto", "closed", "mehler", "quadrature"}
        Engine of the bivariate Gaussian expectations (:mod:`rmt_deq.moments.bivariate`).
    max_memory : float, optional
        Bytes the computation may use (default 2 GiB), checked up front.

    Returns
    -------
    ExactExplicitKernels

    Raises
    ------
    MemoryBudgetError
        The 3L + 3 kernel matrices and the engine's working set exceed ``max_memory``.
    """
    net = _as_network(network)
    Xa = as_data_matrix(X)
    n = Xa.shape[1]
    # kept: L + 1 layers, L derivatives, L + 1 groups, the running product; plus the
    # engine's working set (rho and its row blocks, about 8 n x n arrays)
    arrays = 3 * net.depth + 3 + 8
    check_memory(8.0 * arrays * n * n, memory_budget(max_memory),
                 f"the exact kernels of a {net.depth}-layer network (n = {n}: about {arrays} "
                 f"n x n float64 arrays)", "use fewer samples or raise max_memory")
    if np.any(np.sum(Xa * Xa, axis=0) <= 0):
        raise InvalidParameterError("X has a zero column; every sample must be nonzero")
    scale = data_scale(Xa, labels, tau0=tau0)
    scales = explicit_scales(net, scale.tau0)
    K = Xa.T @ Xa
    layers, dots = [K], []
    for l, spec in enumerate(net.activations):
        var = np.diagonal(K).copy()
        if np.any(var <= 0):
            raise InvalidParameterError(
                f"layer {l + 1}: a sample's preactivation variance vanished")
        engine = PairExpectations(spec, var, scales.centring[l], method=method)
        K, Kd = engine.evaluate(K)
        layers.append(K)
        dots.append(Kd)
    groups = {"v": layers[-1]}
    prod = np.ones_like(K)
    for l in range(net.depth, 0, -1):
        prod = prod * dots[l - 1]
        groups[f"W{l}"] = layers[l - 1] * prod
    ordered = {g: groups[g] for g in net.group_names}
    return ExactExplicitKernels(ck=layers[-1], layers=tuple(layers), derivatives=tuple(dots),
                                ntk_groups=ordered, scales=scales, network=net,
                                tau0_source=scale.source)
