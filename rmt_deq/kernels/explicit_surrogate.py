"""The CK and NTK surrogates of explicit networks, by the layer recursion (docs/theory.md §6).

The layer map is written once, generic over the scalar type (floats, or the forward-mode
dual numbers of the designer, :mod:`rmt_deq.design`): :func:`ck_layer_map` carries the CK
coefficients of K_{l-1} to those of K_l (docs/theory.md §6.2), :func:`kdot_layer_map`
multiplies a kernel's coefficients entrywise by Kdot_l (§6.3), and
:func:`layer_recursion` applies both to every layer and NTK group.  A kernel's coefficients
are the tuple (c1, d2, d3, theta_diag, c5, theta_slope) of
:class:`~rmt_deq.kernels.ntk_surrogate.NTKCoefficients`; a CK K_l has
(alpha1, alpha2, alpha3, tau_l^2, alpha5, alpha4) and X^T X has (1, 0, 0, tau0^2, 0, 1).

:func:`explicit_network_coefficients` feeds the recursion with the moments of each layer at
its input scale; :func:`explicit_ntk_surrogate` assembles the surrogate matrices of a data
set (docs/theory.md §5.1, §6.3) as a :class:`~rmt_deq.kernels.result.Kernel`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import reduce
from operator import add
from typing import Any, Iterable, Mapping, NamedTuple, Sequence


from rmt_deq._results import frozen_mapping
from rmt_deq._validation import check_bool, check_choice, check_positive_finite
from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.errors import InvalidParameterError
from rmt_deq.kernels.ntk_surrogate import NTKCoefficients, assemble_ntk_surrogate
from rmt_deq.kernels.result import Kernel
from rmt_deq.kernels.surrogate import T_CONVENTIONS, mixture_data, plugin_data
from rmt_deq.moments.gaussian import GaussianMoments, gaussian_moments
from rmt_deq.networks.explicit import as_explicit_network

__all__ = ["LayerMoments", "data_coefficients", "ck_layer_map", "kdot_layer_map",
           "layer_recursion", "ExplicitLayerCoefficients", "ExplicitNetworkCoefficients",
           "explicit_network_coefficients", "explicit_ntk_surrogate"]

_MOMENT_METHODS = ("auto", "closed", "quadrature", "mpmath")


# ----------------------------------------------------------------------------------------
# the layer map, generic over the scalar type
# ----------------------------------------------------------------------------------------
class LayerMoments(NamedTuple):
    """The moments of sigma_l at its input scale that the layer map uses.

    Each entry is a float or any number type with + and * (the designer's dual numbers):
    g1 = E[sigma']^2, g2 = E[sigma'']^2, g4 = E[(sigma_c^2)''], V0 = E[sigma_c^2],
    h0 = E[sigma'^2]; for the refinement e1e3 = E[sigma'] E[sigma'''] and
    h2 = E[(sigma'^2)''] (0 when not needed).
    """

    g1: Any
    g2: Any
    g4: Any
    V0: Any
    h0: Any
    e1e3: Any = 0.0
    h2: Any = 0.0


def data_coefficients(q0: Any) -> tuple:
    """The coefficients of K_0 = X^T X: (1, 0, 0, tau0^2, 0, 1), with q0 = tau0^2."""
    return (1.0, 0.0, 0.0, q0, 0.0, 1.0)


def ck_layer_map(K: Sequence[Any], m: LayerMoments) -> tuple:
    """CK coefficients of K_l from those of K_{l-1} (docs/theory.md §6.2)::

        alpha1 -> g1 alpha1,  alpha2 -> g1 alpha2 + g2 alpha4^2/4,
        alpha3 -> g1 alpha3 + g2 alpha1^2/2,  tau^2 -> V0,
        alpha5 -> g1 alpha5 + e1 e3 alpha1 alpha4/2,  alpha4 -> g4 alpha4/2.
    """
    a1, a2, a3, _, a5, a4 = K
    if _is_zero(a5) and _is_zero(m.e1e3):
        b5 = 0.0            # no refinement asked: skip the arithmetic (dual numbers)
    else:
        b5 = m.g1 * a5 + m.e1e3 * a1 * a4 * 0.5
    return (m.g1 * a1, m.g1 * a2 + m.g2 * (a4 * a4) * 0.25,
            m.g1 * a3 + m.g2 * (a1 * a1) * 0.5, m.V0, b5, m.g4 * a4 * 0.5)


def _is_zero(x: Any) -> bool:
    return isinstance(x, float) and x == 0.0


def kdot_layer_map(c: Sequence[Any], m: LayerMoments, K_prev: Sequence[Any]) -> tuple:
    """Coefficients of (a kernel with coefficients c) o Kdot_k, k the layer of ``m`` and
    K_prev = K_{k-1} (docs/theory.md §6.3)::

        c1 -> g1 c1,  d2 -> g1 d2,  d3 -> g1 d3 + g2 alpha1_{k-1} c1,
        theta_diag -> h0 theta_diag,  c5 -> g1 c5 + (e1 e3/2) alpha4_{k-1} c1,
        theta_slope -> h0 theta_slope + (h2/2) alpha4_{k-1} theta_diag.
    """
    pa1, pa4 = K_prev[0], K_prev[5]
    return (m.g1 * c[0], m.g1 * c[1], m.g1 * c[2] + m.g2 * pa1 * c[0], m.h0 * c[3],
            m.g1 * c[4] + m.e1e3 * 0.5 * pa4 * c[0], m.h0 * c[5] + m.h2 * 0.5 * pa4 * c[3])


def layer_recursion(moments: Sequence[LayerMoments], q0: Any,
                    groups: Sequence[str] | None = None) -> tuple[list, dict]:
    """The CK coefficients of K_0..K_L and the NTK coefficients of the selected groups.

    Parameters
    ----------
    moments : sequence of LayerMoments
        Layer l's moments at its input scale tau_{l-1} (tau_l^2 = that layer's V0).
    q0 : float or dual
        tau0^2.
    groups : sequence of {"v", "W1", ..., "WL"}, optional
        Default all.  Group v is K_L; group W_l is K_{l-1} o Kdot_l o ... o Kdot_L.

    Returns
    -------
    (Ks, coefficients)
        ``Ks[l]`` the coefficient tuple of K_l; ``coefficients[g]`` that of group g, in the
        order of ``groups``.
    """
    Ks = [data_coefficients(q0)]
    for m in moments:
        Ks.append(ck_layer_map(Ks[-1], m))
    L = len(moments)
    sel = ["v"] + [f"W{l}" for l in range(1, L + 1)] if groups is None else list(groups)
    out = {}
    for g in sel:
        if g == "v":
            out[g] = Ks[L]
            continue
        l = int(g[1:])
        c = Ks[l - 1]
        for k in range(l, L + 1):          # multiply by Kdot_k, k = l..L
            c = kdot_layer_map(c, moments[k - 1], Ks[k - 1])
        out[g] = c
    return Ks, out


# ----------------------------------------------------------------------------------------
# coefficients of a network
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplicitLayerCoefficients:
    """Layer l of an explicit network: moments of sigma_l at its input scale, CK coefficients.

    Attributes
    ----------
    activation : str
        The name of sigma_l (uncentred; the network uses sigma_l - centring).
    tau_in, tau_out : float
        tau_{l-1} and tau_l = sqrt(E[sigma_{l,c}(tau_{l-1} xi)^2]).
    centring : float
        E[sigma_l(tau_{l-1} xi)].
    alpha1, alpha2, alpha3, alpha4, alpha5 : float
        CK coefficients of K_l: off the diagonal alpha1 P + alpha2 delta_i delta_j
        + alpha3 P^2 + alpha5 P (delta_i + delta_j), on it tau_l^2 + alpha4 delta_i.
    moments : GaussianMoments
        All moments of sigma_l at tau_{l-1} (e1, e2, e3, h0, h2, g4, V0).
    """

    activation: str
    tau_in: float
    tau_out: float
    centring: float
    alpha1: float
    alpha2: float
    alpha3: float
    alpha4: float
    alpha5: float
    moments: GaussianMoments = field(repr=False)


@dataclass(frozen=True)
class ExplicitNetworkCoefficients:
    """Surrogate coefficients of an L-layer explicit network's CK and NTK.

    Attributes
    ----------
    layers : tuple of ExplicitLayerCoefficients
    tau0 : float
    ck : NTKCoefficients
        The CK K_L (label "v": it is also the readout group of the NTK).
    groups : mapping of str to NTKCoefficients
        "v" (readout, = ck) and "W1".."WL" (K_{l-1} o Kdot_l o ... o Kdot_L); read-only.
    total : NTKCoefficients
        Sum of all groups.
    """

    layers: tuple
    tau0: float
    ck: NTKCoefficients
    groups: Mapping[str, NTKCoefficients]
    total: NTKCoefficients

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", frozen_mapping(self.groups, arrays=False))

    @property
    def L(self) -> int:
        """Number of hidden layers."""
        return len(self.layers)

    @property
    def group_names(self) -> tuple:
        """("v", "W1", ..., "WL")."""
        return ("v",) + tuple(f"W{l}" for l in range(1, self.L + 1))


def _sum(parts: Sequence[NTKCoefficients], label: str) -> NTKCoefficients:
    return replace(reduce(add, parts), label=label)


def explicit_network_coefficients(network: Any, tau0: float, *,
                                  method: str = "auto") -> ExplicitNetworkCoefficients:
    """CK and NTK surrogate coefficients of h_l = sigma_l(W_l h_{l-1})/sqrt(m), f = v^T h_L.

    The moments of each sigma_l at its input scale tau_{l-1} (tau_l^2 = V0 of layer l) go
    through :func:`layer_recursion` (docs/theory.md §6.2-§6.3): the CK K_L, and the NTK
    group W_l = K_{l-1} o Kdot_l o ... o Kdot_L, equivalently Theta_l = K_l + Theta_{l-1} o
    Kdot_l.  Checked symbolically for L = 1, 2, 3 in derivations/ntk_expansion.py.

    Parameters
    ----------
    network : ExplicitNetwork, or sequence of name, Activation or callable
        sigma_1 .. sigma_L, uncentred (each is centred at its input scale tau_{l-1}).
    tau0 : float
        Data scale sqrt(tr C°/p) > 0.
    method : {"auto", "closed", "quadrature", "mpmath"}
        Moment engine (:func:`rmt_deq.moments.gaussian.gaussian_moments`).

    Returns
    -------
    ExplicitNetworkCoefficients

    Raises
    ------
    InvalidParameterError
        tau0 not finite and > 0, no layer, or a layer whose output is constant (tau_l = 0).
    """
    net = as_explicit_network(network)
    t0 = check_positive_finite(tau0, "tau0")
    check_choice(method, "method", _MOMENT_METHODS)
    moments, gms, taus = [], [], [t0]
    for l, act in enumerate(net.activations, start=1):
        tau = taus[-1]
        m = gaussian_moments(act, tau, method=method)
        V0 = float(m.V0)
        if not V0 > 0:
            raise InvalidParameterError(
                f"layer {l} ({act.name}) has E[sigma_c(tau xi)^2] = {V0:.3g} at tau = {tau:g}: "
                f"its output is constant and the next layer's scale is zero")
        moments.append(LayerMoments(float(m.g1), float(m.g2), float(m.g4), V0, float(m.h0),
                                    float(m.e1) * float(m.e3), float(m.h2)))
        gms.append(m)
        taus.append(math.sqrt(V0))
    Ks, coefs = layer_recursion(moments, t0 * t0)
    layers = tuple(
        ExplicitLayerCoefficients(
            activation=act.name, tau_in=taus[l], tau_out=taus[l + 1],
            centring=float(gms[l].mean), alpha1=Ks[l + 1][0], alpha2=Ks[l + 1][1],
            alpha3=Ks[l + 1][2], alpha4=Ks[l + 1][5], alpha5=Ks[l + 1][4], moments=gms[l])
        for l, act in enumerate(net.activations))
    groups = {g: NTKCoefficients(g, *c, tau0=t0) for g, c in coefs.items()}
    return ExplicitNetworkCoefficients(layers=layers, tau0=t0, ck=groups["v"], groups=groups,
                                       total=_sum(list(groups.values()), "total"))


# ----------------------------------------------------------------------------------------
# the surrogate of a data set
# ----------------------------------------------------------------------------------------
def explicit_ntk_surrogate(mixture: GaussianMixture | None, sample: MixtureSample | None,
                           network: Any, *, X: Any = None, labels: Any = None,
                           groups: Iterable[str] | None = None,
                           T_convention: str = "uncentred", refine: bool = False,
                           diag_estimator: str = "distribution_free",
                           method: str = "auto") -> Kernel:
    """NTK (and CK) surrogate of an explicit network, on a mixture sample or labelled data.

    Give either (mixture, sample) (exact statistics and psi) or ``mixture=None,
    sample=None`` with ``X=`` and ``labels=`` (plug-in statistics).  Every group's matrix is
    c1 X^T X + V D V^T + c0 I with its coefficients (docs/theory.md §5.1, §6.3).

    Parameters
    ----------
    mixture, sample : GaussianMixture, MixtureSample, or None
    network : ExplicitNetwork, or sequence of name, Activation or callable
        sigma_1 .. sigma_L (each centred at its input scale).
    X : array_like, shape (p, n), optional
        Labelled data for the plug-in route (columns are samples).
    labels : array_like, shape (n,), optional
    groups : iterable of {"v", "W1", ..., "WL"}, optional
        Groups summed into ``ntk`` (default: all).
    T_convention : {"uncentred", "centred"}
    refine : bool
        Add the second-order refinement (c5, theta_slope; docs/theory.md §5.3).
    diag_estimator : {"distribution_free", "gaussian"}
        Plug-in route only.
    method : {"auto", "closed", "quadrature", "mpmath"}
        Moment engine.

    Returns
    -------
    Kernel
        ``route="surrogate"``, ``network="explicit"``: ``ntk`` the sum of the selected
        groups, ``groups`` each selected group, ``ck`` the CK surrogate (group v); ``info``
        a :class:`~rmt_deq.kernels.surrogate.SurrogateDetails` whose ``network`` holds the
        :class:`ExplicitNetworkCoefficients` (all groups) at the statistics' tau0.
    """
    check_choice(T_convention, "T_convention", T_CONVENTIONS)
    refine = check_bool(refine, "refine")
    if (mixture is None) != (sample is None):
        raise InvalidParameterError("give both mixture and sample, or neither (then X, labels)")
    if mixture is not None:
        if X is not None or labels is not None:
            raise InvalidParameterError("give (mixture, sample) or (X, labels), not both")
        data = mixture_data(mixture, sample)
    else:
        if X is None or labels is None:
            raise InvalidParameterError("give (mixture, sample) or X= and labels=")
        data = plugin_data(X, labels, diag_estimator)
    net = as_explicit_network(network)
    sel = net.check_groups(groups)
    coefs_all = explicit_network_coefficients(net, data.statistics.tau0, method=method)
    coefs = {g: coefs_all.groups[g] for g in sel}
    coefs["total"] = _sum([coefs[g] for g in sel], "+".join(sel))
    return assemble_ntk_surrogate(data, coefs, sel, T_convention=T_convention, refine=refine,
                                  network="explicit", tau0=coefs_all.tau0,
                                  network_coefficients=coefs_all, ck=coefs_all.groups["v"])
