"""Exact infinite-width CK and NTK of explicit networks, by the layer recursion.

K_0 = X^T X and, with (u_i, u_j) centred Gaussian of covariance K_{l-1} restricted to
{i, j}, K_l = E[sigma_l,c(u_i) sigma_l,c(u_j)] and Kdot_l = E[sigma_l'(u_i) sigma_l'(u_j)];
the CK is K_L and the NTK groups are v: K_L and W<l>: K_{l-1} o Kdot_l o ... o Kdot_L
(docs/theory.md §6.1).  No fixed point: one pass of bivariate expectations per layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from rmt_deq._results import readonly
from rmt_deq._validation import as_data_matrix, check_choice, check_memory, memory_budget
from rmt_deq.data.conventions import data_scale
from rmt_deq.errors import InvalidParameterError
from rmt_deq.kernels.result import Kernel
from rmt_deq.moments.bivariate import DEFAULT_KMAX, DEFAULT_TOL, METHODS as PAIR_METHODS
from rmt_deq.moments.pairs import PairExpectations
from rmt_deq.networks.explicit import ExplicitNetwork, ExplicitScales, as_explicit_network, \
    explicit_scales

__all__ = ["ExactExplicitInfo", "exact_explicit_kernels"]

#: n x n arrays the recursion keeps besides the layers' (rho and its row blocks in the
#: bivariate engine, about 8 of them)
_ENGINE_ARRAYS = 8


@dataclass(frozen=True, eq=False)
class ExactExplicitInfo:
    """The layer recursion behind an exact explicit-network :class:`Kernel`.

    Attributes
    ----------
    layers : tuple of ndarray
        K_0 = X^T X, K_1, ..., K_L (read-only).
    derivatives : tuple of ndarray
        Kdot_1..Kdot_L, Kdot_l = E[sigma_l'(u_i) sigma_l'(u_j)] at covariance K_{l-1}.
    scales : ExplicitScales
        The input scales and centrings used (tau_0 = the kernel's tau0).
    network : ExplicitNetwork
    method : str
        The bivariate engine asked for.
    """

    layers: tuple = field(repr=False)
    derivatives: tuple = field(repr=False)
    scales: ExplicitScales
    network: ExplicitNetwork = field(repr=False)
    method: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(readonly(K) for K in self.layers))
        object.__setattr__(self, "derivatives", tuple(readonly(K) for K in self.derivatives))


def exact_explicit_kernels(X: Any, network: Any, *, tau0: float | None = None,
                           labels: Any = None, groups: Iterable[str] | None = None,
                           method: str = "auto", tol: float = DEFAULT_TOL,
                           kmax: int = DEFAULT_KMAX, workers: int | None = None,
                           max_memory: float | None = None) -> Kernel:
    """Exact infinite-width CK and NTK of h_l = sigma_l,c(W_l h_{l-1})/sqrt(m), f = v^T h_L.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples); every column nonzero.
    network : ExplicitNetwork, or sequence of name, Activation or callable
        sigma_1..sigma_L.
    tau0 : float, optional
        Data scale sqrt(tr C°/p) of the centrings (default
        :func:`rmt_deq.data.conventions.data_scale`: plug-in from ``labels``, else all
        samples as one class; recorded in ``tau0_source``).  The centrings are those of
        :func:`rmt_deq.networks.explicit.explicit_scales` (a network pinned to tau0 uses
        its own).
    labels : array_like, shape (n,), optional
        Class labels, used only for the default tau0.
    groups : iterable of {"v", "W1", ..., "WL"}, optional
        NTK groups summed into ``ntk`` (default: all).
    method : {"auto", "closed", "mehler", "quadrature"}
        Engine of the bivariate Gaussian expectations (:mod:`rmt_deq.moments.bivariate`).
    tol, kmax, workers :
        As in :class:`rmt_deq.moments.pairs.PairExpectations`.
    max_memory : float, optional
        Bytes the computation may use (default 2 GiB), checked up front.

    Returns
    -------
    Kernel
        ``route="exact"``, ``network="explicit"``: ``ck`` = K_L, ``ntk`` the sum of the
        selected groups, ``groups`` each of them; ``info`` an :class:`ExactExplicitInfo`
        (the layers K_0..K_L, Kdot_1..Kdot_L and the scales).

    Raises
    ------
    MemoryBudgetError
        The 3L + 3 kernel matrices and the engine's working set exceed ``max_memory``.
    InvalidParameterError
        A zero column of X, a vanishing preactivation variance, a bad tau0.
    UnknownOptionError
        Unknown method or group.
    """
    net = as_explicit_network(network)
    Xa = as_data_matrix(X)
    check_choice(method, "method", PAIR_METHODS)
    sel = net.check_groups(groups)
    n = Xa.shape[1]
    # kept: L + 1 layers, L derivatives, L + 1 groups, the running product
    arrays = 3 * net.depth + 3 + _ENGINE_ARRAYS
    check_memory(8.0 * arrays * n * n, memory_budget(max_memory),
                 f"the exact kernels of a {net.depth}-layer network (n = {n}: about {arrays} "
                 f"n x n float64 arrays)", "use fewer samples or raise max_memory")
    if np.any(np.sum(Xa * Xa, axis=0) <= 0):
        raise InvalidParameterError("X has a zero column; every sample must be nonzero")
    scale = data_scale(Xa, labels, tau0=tau0)
    scales = explicit_scales(net, scale.tau0)
    K = Xa.T @ Xa
    layers, dots = [K], []
    for l, act in enumerate(net.activations):
        var = np.diagonal(K).copy()
        if np.any(var <= 0):
            raise InvalidParameterError(
                f"layer {l + 1}: a sample's preactivation variance vanished")
        engine = PairExpectations(act, var, scales.centring[l], method=method, tol=tol,
                                  kmax=kmax, workers=workers)
        K, Kd = engine.evaluate(K)
        layers.append(K)
        dots.append(Kd)
    mats = {"v": layers[-1]}
    prod = np.ones_like(K)
    for l in range(net.depth, 0, -1):
        prod = prod * dots[l - 1]
        mats[f"W{l}"] = layers[l - 1] * prod
    chosen = {g: mats[g] for g in sel}
    info = ExactExplicitInfo(layers=tuple(layers), derivatives=tuple(dots), scales=scales,
                             network=net, method=method)
    return Kernel(route="exact", network="explicit", ck=layers[-1],
                  ntk=np.asarray(sum(chosen[g] for g in sel)), groups=chosen, selected=sel,
                  tau0=scale.tau0, tau0_source=scale.source, info=info)
