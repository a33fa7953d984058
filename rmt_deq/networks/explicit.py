"""Explicit (feed-forward) networks: description, sampled CK/NTK, exact infinite-width kernels.

The network with L hidden layers of width m (theory.md section 6)::

    h_0 = x,   h_l = sigma_l,c(W_l h_{l-1}) / sqrt(m),   f(x) = v^T h_L,

with sigma_l,c = sigma_l - E[sigma_l(tau_{l-1} xi)] centred at its own input scale and
tau_l^2 = E[sigma_l,c(tau_{l-1} xi)^2] (tau_0 the data scale).  W_1 is m x p, W_l (l >= 2)
m x m, v in R^m, all with unit entry variance.

Kernels (realization-wise, then averaged as in :mod:`rmt_deq.sampling.deq`):

* CK: H_L^T H_L;
* empirical NTK, one group per weight matrix: with the back-propagated preactivation
  gradients delta_L = D_L v/sqrt(m), delta_l = D_l W_{l+1}^T delta_{l+1}/sqrt(m)
  (D_l = diag sigma_l'), group "v" is H_L^T H_L and group "W<l>" is
  (delta_l^T delta_l) o (H_{l-1}^T H_{l-1}).

Exact infinite-width kernels by the layer recursion: K_0 = X^T X and, with (u_i, u_j)
centred Gaussian of covariance K_{l-1} restricted to {i, j},
K_l = E[sigma_l,c(u_i) sigma_l,c(u_j)], Kdot_l = E[sigma_l'(u_i) sigma_l'(u_j)]; then the
CK is K_L and the NTK groups are  v: K_L,  W<l>: K_{l-1} o Kdot_l o ... o Kdot_L.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from rmt_deq._validation import (as_data_matrix, check_groups, check_positive_finite, check_positive_int)
from rmt_deq.activations import Activation, get_activation
from rmt_deq.moments.scales import one_dimensional_moments
from rmt_deq.data.conventions import data_scale
from rmt_deq.networks._batched import Elementwise
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError, UnknownOptionError
from rmt_deq.networks.weights import check_dtype, check_family, weight_matrix

__all__ = ["ExplicitNetwork", "ExplicitScales", "ExplicitWeights", "ExplicitForward",
           "explicit_scales", "sample_explicit_weights", "explicit_forward"]


# ----------------------------------------------------------------------------------------
# description
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplicitNetwork:
    """An explicit network described by its activations, one spec string per hidden layer.

    Parameters
    ----------
    activations : sequence of str (or Activation with a registered spec name)
        sigma_1..sigma_L as spec strings (``"relu"``, ``"leaky_relu:0.1"``,
        ``"hard_tanh:1.2,0.8"``, ...); stored in canonical form, so the network
        round-trips through :meth:`to_dict` / :meth:`from_dict` (JSON-ready).

    Examples
    --------
    >>> net = ExplicitNetwork(["leaky_relu:0.2", "tanh"])
    >>> net.depth, ExplicitNetwork.from_dict(net.to_dict()) == net
    (2, True)
    """

    activations: tuple

    def __post_init__(self) -> None:
        acts = self.activations
        if isinstance(acts, (str, Activation)):
            acts = (acts,)
        try:
            acts = tuple(acts)
        except TypeError:
            raise InvalidParameterError(
                "activations must be a sequence of activation spec strings") from None
        if not acts:
            raise InvalidParameterError("an explicit network needs at least one layer")
        names = []
        for a in acts:
            if not isinstance(a, (str, Activation)):
                raise InvalidParameterError(
                    f"layer activations must be spec strings (JSON-serialisable), got "
                    f"{type(a).__name__}")
            name = get_activation(a).name
            try:
                get_activation(name)
            except Exception:  # noqa: BLE001 - not rebuildable from its name
                raise InvalidParameterError(
                    f"activation {name!r} cannot be rebuilt from its name; register it "
                    f"(rmt_deq.register_activation) to use it in an ExplicitNetwork") from None
            names.append(name)
        object.__setattr__(self, "activations", tuple(names))

    @property
    def depth(self) -> int:
        """L, the number of hidden layers."""
        return len(self.activations)

    @property
    def group_names(self) -> tuple[str, ...]:
        """NTK parameter groups: ("v", "W1", ..., "WL")."""
        return ("v",) + tuple(f"W{l}" for l in range(1, self.depth + 1))

    def to_dict(self) -> dict:
        """``{"activations": [...]}`` (JSON-serialisable)."""
        return {"activations": list(self.activations)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExplicitNetwork":
        """Inverse of :meth:`to_dict`; unknown keys are rejected."""
        if not isinstance(d, Mapping):
            raise InvalidParameterError("from_dict needs a mapping")
        unknown = sorted(set(d) - {"activations"})
        if unknown:
            raise UnknownOptionError(f"unknown ExplicitNetwork field(s) {unknown}")
        if "activations" not in d:
            raise InvalidParameterError("missing field 'activations'")
        return cls(tuple(d["activations"]))


def _as_network(network: Any) -> ExplicitNetwork:
    if isinstance(network, ExplicitNetwork):
        return network
    return ExplicitNetwork(network)


@dataclass(frozen=True)
class ExplicitScales:
    """Input scales and centrings of every layer.

    Attributes
    ----------
    tau : tuple of float, length L + 1
        tau_0 (data scale), tau_1..tau_L, tau_l^2 = E[sigma_l,c(tau_{l-1} xi)^2].
    centring : tuple of float, length L
        c_l = E[sigma_l(tau_{l-1} xi)].
    """

    tau: tuple
    centring: tuple


def explicit_scales(network: Any, tau0: float) -> ExplicitScales:
    """The scales tau_l and centrings c_l of ``network`` for data scale ``tau0``.

    Raises
    ------
    InvalidParameterError
        tau0 not positive, or a layer whose centred output vanishes (tau_l = 0).
    """
    net = _as_network(network)
    t = check_positive_finite(tau0, "tau0")
    taus, cs = [t], []
    for l, spec in enumerate(net.activations, start=1):
        c = float(one_dimensional_moments(spec, np.array([t]), keys=("mean",))["mean"][0])
        v = float(one_dimensional_moments(spec, np.array([t]), c, keys=("m2",))["m2"][0])
        if not v > 0:
            raise InvalidParameterError(
                f"layer {l} ({spec!r}) has a constant centred output at input scale "
                f"{t:.4g}: tau_{l} = 0")
        cs.append(c)
        t = math.sqrt(v)
        taus.append(t)
    return ExplicitScales(tau=tuple(taus), centring=tuple(cs))


# ----------------------------------------------------------------------------------------
# weights and the forward pass
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ExplicitWeights:
    """One draw of an explicit network's weights (unit entry variance).

    Attributes
    ----------
    W : tuple of ndarray
        W_1 (m x p), W_2..W_L (m x m).
    v : ndarray, shape (m,)
    family : str
        Family of the square layers W_2..W_L.  W_1 is Gaussian, or a Haar partial
        isometry for ``"orthogonal"`` (the symmetric family needs square matrices, so its
        W_1 is Gaussian).
    """

    W: tuple = field(repr=False)
    v: np.ndarray = field(repr=False)
    family: str = "gaussian"

    @property
    def m(self) -> int:
        return int(self.W[0].shape[0])

    @property
    def p(self) -> int:
        return int(self.W[0].shape[1])


def sample_explicit_weights(network: Any, m: int, p: int, *, family: str = "gaussian",
                            rng: Any = None, dtype: Any = "float64") -> ExplicitWeights:
    """Draw W_1..W_L and v (in that order, from one generator).

    Parameters
    ----------
    network : ExplicitNetwork or sequence of spec strings
    m, p : int
        Width and input dimension.
    family : {"gaussian", "orthogonal", "symmetric"}
    rng : int or numpy.random.Generator, optional
    dtype : {"float64", "float32"}
    """
    from rmt_deq._validation import as_rng

    net = _as_network(network)
    m = check_positive_int(m, "m")
    p = check_positive_int(p, "p")
    family = check_family(family)
    dt = check_dtype(dtype)
    gen = as_rng(rng)
    first = "orthogonal" if family == "orthogonal" else "gaussian"
    Ws = [weight_matrix(first, m, p, gen, dt)]
    for _ in range(1, net.depth):
        Ws.append(weight_matrix(family, m, m, gen, dt))
    v = gen.standard_normal(m, dtype=dt)
    return ExplicitWeights(W=tuple(Ws), v=v, family=family)


@dataclass(frozen=True, eq=False)
class ExplicitForward:
    """Hidden features of every layer for all samples.

    Attributes
    ----------
    H : tuple of ndarray, shape (m, n) each
        h_1..h_L (columns are samples); the CK Gram matrix is H[-1].T @ H[-1].
    delta : tuple of ndarray or None
        Preactivation gradients delta_1..delta_L of f = v^T h_L (when requested).
    scales : ExplicitScales
    """

    H: tuple = field(repr=False)
    delta: tuple | None = field(repr=False)
    scales: ExplicitScales


def _forward(Xd: np.ndarray, net: ExplicitNetwork, W: Sequence[np.ndarray], v: np.ndarray,
             scales: ExplicitScales, elems: Sequence[Elementwise], grads: bool
             ) -> tuple[list, list | None]:
    m = W[0].shape[0]
    dt = W[0].dtype
    inv = dt.type(1.0 / math.sqrt(m))
    H, D = [], []
    h = Xd
    for l in range(net.depth):
        pre = W[l] @ h
        out = np.empty_like(pre)
        elems[l].fn_into(pre, out)
        out -= dt.type(scales.centring[l])
        out *= inv
        if grads:
            D.append(elems[l].d1(pre))
        H.append(out)
        h = out
    if not grads:
        return H, None
    delta = [None] * net.depth
    d = D[-1] * (v * inv)[:, None]
    delta[-1] = d
    for l in range(net.depth - 2, -1, -1):
        d = (W[l + 1].T @ d) * D[l]
        d *= inv
        delta[l] = d
    return H, delta


def explicit_forward(X: Any, network: Any, weights: ExplicitWeights, *,
                     tau0: float | None = None, labels: Any = None,
                     gradients: bool = False) -> ExplicitForward:
    """Features h_1..h_L (and optionally the gradients delta_l) for all samples.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).
    network : ExplicitNetwork or sequence of spec strings
    weights : ExplicitWeights
    tau0 : float, optional
        The data scale at which sigma_1 is centred (default
        :func:`rmt_deq.data.conventions.data_scale`).
    labels : array_like, shape (n,), optional
        Class labels, used only for the default tau0.
    gradients : bool
        Also back-propagate delta_l = df/d(preactivation of layer l).
    """
    net = _as_network(network)
    Xa = as_data_matrix(X)
    if not isinstance(weights, ExplicitWeights) or len(weights.W) != net.depth:
        raise InvalidParameterError("weights must be ExplicitWeights for this network")
    if weights.p != Xa.shape[0]:
        raise ShapeMismatchError(
            f"X has p = {Xa.shape[0]} rows but W_1 is {weights.m} x {weights.p}")
    scales = explicit_scales(net, data_scale(Xa, labels, tau0=tau0).tau0)
    dt = weights.W[0].dtype
    elems = [Elementwise(get_activation(a), dt) for a in net.activations]
    H, delta = _forward(Xa.astype(dt), net, weights.W, weights.v, scales, elems, gradients)
    return ExplicitForward(H=tuple(H), delta=None if delta is None else tuple(delta),
                           scales=scales)


# ----------------------------------------------------------------------------------------
# sampled kernels
# ----------------------------------------------------------------------------------------


def _check_groups(net: ExplicitNetwork, groups: Any) -> tuple[str, ...]:
    return net.group_names if groups is None else check_groups(groups, net.group_names)


# ----------------------------------------------------------------------------------------
# exact infinite-width kernels
# ----------------------------------------------------------------------------------------


