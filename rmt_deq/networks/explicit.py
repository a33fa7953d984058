"""Explicit (feed-forward) networks: the one description, its weights and its forward pass.

The network with L hidden layers of width m (docs/theory.md §6.1)::

    h_0 = x,   h_l = sigma_l,c(W_l h_{l-1}) / sqrt(m),   f(x) = v^T h_L,

with sigma_l,c = sigma_l - E[sigma_l(tau_{l-1} xi)] centred at its own input scale and
tau_l^2 = E[sigma_l,c(tau_{l-1} xi)^2] (tau_0 the data scale).  W_1 is m x p, W_l (l >= 2)
m x m, v in R^m, all with unit entry variance.

:class:`ExplicitNetwork` is the description every route accepts: the sampler
(:mod:`rmt_deq.sampling.explicit`), the exact layer recursion (:mod:`rmt_deq.kernels.explicit`),
the surrogate (:mod:`rmt_deq.kernels.explicit_surrogate`), and the designer
(:mod:`rmt_deq.design`), whose result holds one.  Each layer (:class:`ExplicitLayer`) is an
activation -- a registry spec (``"relu"``, ``"leaky_relu:0.1"``), one of the parametrised
kinds of a design (:mod:`rmt_deq.networks.layer_activations`, with its parameters), or user
code -- and, when the network is pinned to a data scale, its input and output scales and
centring there.

At finite width (docs/theory.md §6.1), with the back-propagated preactivation gradients
delta_L = D_L v/sqrt(m), delta_l = D_l W_{l+1}^T delta_{l+1}/sqrt(m) (D_l = diag sigma_l'),
the NTK group "v" is H_L^T H_L and group "W<l>" is (delta_l^T delta_l) o (H_{l-1}^T H_{l-1}).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from rmt_deq._results import frozen_mapping
from rmt_deq._validation import (as_data_matrix, as_rng, check_groups, check_positive_finite,
                                 check_positive_int)
from rmt_deq.activations import Activation, get_activation
from rmt_deq.data.conventions import data_scale
from rmt_deq.errors import (InvalidParameterError, RmtDeqError, ShapeMismatchError,
                            UnknownOptionError)
from rmt_deq.moments.scales import one_dimensional_moments
from rmt_deq._xp import NUMPY, Backend
from rmt_deq.networks._batched import elementwise
from rmt_deq.networks.layer_activations import (DESIGNED_KINDS, check_layer_params,
                                                layer_activation)
from rmt_deq.networks.weights import check_dtype, check_family, weight_matrix

__all__ = ["LAYER_KINDS", "ExplicitLayer", "ExplicitNetwork", "as_explicit_network",
           "ExplicitScales", "explicit_scales", "ExplicitWeights", "sample_explicit_weights",
           "ExplicitForward",
           "explicit_forward", "elementwise_layers", "forward_pass"]

#: "activation": a registry spec; "custom": user code (no JSON form)
LAYER_KINDS = ("activation",) + DESIGNED_KINDS + ("custom",)


# ----------------------------------------------------------------------------------------
# the description
# ----------------------------------------------------------------------------------------
def _rebuilds(act: Activation) -> bool:
    """Whether ``get_activation(act.name)`` rebuilds the activation (a registry spec)."""
    try:
        return get_activation(act.name).name == act.name
    except RmtDeqError:
        return False


@dataclass(frozen=True, eq=False)
class ExplicitLayer:
    """One hidden layer: sigma_l and, at the network's data scale, its scales and centring.

    Attributes
    ----------
    activation : Activation
        sigma_l, uncentred (the network uses sigma_l - centring).
    kind : str
        How the layer is written down (:data:`LAYER_KINDS`): ``"activation"`` (a registry
        spec, ``activation.name``), a parametrised kind of a design (see
        :func:`rmt_deq.networks.layer_activations.layer_activation`), or ``"custom"``
        (user code: no JSON form).
    params : mapping of str to float
        The parameters of a parametrised or custom layer (read-only; empty otherwise).
    tau_in, tau_out : float or None
        tau_{l-1} and tau_l = sqrt(E[sigma_l,c(tau_{l-1} xi)^2]) when the network is pinned
        to a data scale (None otherwise).
    centring : float or None
        E[sigma_l(tau_{l-1} xi)] at that scale (None otherwise).
    """

    activation: Activation = field(repr=False)
    kind: str = "activation"
    params: Mapping[str, float] = field(default_factory=dict)
    tau_in: float | None = None
    tau_out: float | None = None
    centring: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.activation, Activation):
            raise InvalidParameterError(
                f"an ExplicitLayer's activation must be an Activation, got "
                f"{type(self.activation).__name__}")
        if self.kind not in LAYER_KINDS:
            raise UnknownOptionError(
                f"unknown layer kind {self.kind!r}; choose from {LAYER_KINDS}")
        params = dict(self.params)
        if self.kind == "activation" and params:
            raise InvalidParameterError("a layer given by its activation spec has no params")
        object.__setattr__(self, "params", frozen_mapping(
            {str(k): float(v) for k, v in params.items()}))
        scales = (self.tau_in, self.tau_out, self.centring)
        if all(s is None for s in scales):
            return
        if any(s is None for s in scales):
            raise InvalidParameterError("give all of tau_in, tau_out and centring, or none")
        vals = [float(s) for s in scales]
        if not (all(math.isfinite(v) for v in vals) and vals[0] > 0 and vals[1] > 0):
            raise InvalidParameterError(
                f"layer scales must be finite with tau_in, tau_out > 0, got tau_in "
                f"{vals[0]!r}, tau_out {vals[1]!r}, centring {vals[2]!r}")
        for name, v in zip(("tau_in", "tau_out", "centring"), vals):
            object.__setattr__(self, name, v)

    @property
    def pinned(self) -> bool:
        """Whether the layer carries its scales at a data scale."""
        return self.centring is not None

    @property
    def spec(self) -> str | None:
        """``activation.name`` (a registry spec for kind ``"activation"``, a full-precision
        label for a parametrised kind); None for a custom layer."""
        return None if self.kind == "custom" else self.activation.name

    def __call__(self, t: Any) -> np.ndarray:
        """The centred sigma_c(t) = sigma(t) - centring, elementwise (pinned layers)."""
        if self.centring is None:
            raise InvalidParameterError("the layer is not pinned to a data scale: it has no "
                                        "centring (ExplicitNetwork.at_scale(tau0))")
        return self.activation.fn(np.asarray(t, dtype=float)) - self.centring

    def derivative(self, t: Any) -> np.ndarray:
        """sigma'(t) (almost everywhere)."""
        return self.activation.d1(np.asarray(t, dtype=float))

    def with_scales(self, tau_in: float, tau_out: float, centring: float) -> "ExplicitLayer":
        """A copy pinned to the given scales."""
        return replace(self, tau_in=tau_in, tau_out=tau_out, centring=centring)

    def to_dict(self) -> dict:
        """JSON-ready: ``kind`` and ``params`` (``activation``: the spec, for kind
        ``"activation"``), and the scales when pinned.

        Raises
        ------
        InvalidParameterError
            A custom layer (its activation is code).
        """
        if self.kind == "custom" and not self.params:
            raise InvalidParameterError(
                f"layer activation {self.activation.name!r} is code, not a spec: it has no "
                f"JSON form; use a registry spec (rmt_deq.activations.register_activation) instead")
        d: dict = {"kind": self.kind}
        if self.kind == "activation":
            d["activation"] = self.activation.name
        else:
            d["params"] = {k: float(v) for k, v in self.params.items()}
        if self.pinned:
            d.update(tau_in=self.tau_in, tau_out=self.tau_out, centring=self.centring)
        return d

    def _key(self) -> tuple:
        act = self.activation.name if self.kind != "custom" else id(self.activation)
        return (self.kind, act, tuple(self.params.items()), self.tau_in, self.tau_out,
                self.centring)


def _as_layer(item: Any) -> ExplicitLayer:
    if isinstance(item, ExplicitLayer):
        return item
    if not (isinstance(item, (str, Activation)) or callable(item)):
        raise InvalidParameterError(
            f"layers must be activation spec strings, Activations, callables or "
            f"ExplicitLayers, got {type(item).__name__}")
    act = get_activation(item)
    return ExplicitLayer(act, "activation" if _rebuilds(act) else "custom")


@dataclass(frozen=True, eq=False)
class ExplicitNetwork:
    """An explicit network: its layers and, when pinned to a data scale, their scales.

    Parameters
    ----------
    layers : sequence of ExplicitLayer, spec strings, Activations or callables
        sigma_1..sigma_L; a single spec is one layer.  Specs are stored as Activations
        (``ExplicitNetwork(["leaky_relu:0.2", "tanh"])``).  The layers are either all
        pinned (each with tau_in, tau_out, centring, chained tau_in of layer l + 1 =
        tau_out of layer l) or none.

    Examples
    --------
    >>> net = ExplicitNetwork(["leaky_relu:0.2", "tanh"])
    >>> net.depth, ExplicitNetwork.from_dict(net.to_dict()) == net
    (2, True)
    """

    layers: tuple

    def __post_init__(self) -> None:
        items = self.layers
        if isinstance(items, (str, Activation, ExplicitLayer)) or callable(items):
            items = (items,)
        try:
            items = tuple(items)
        except TypeError:
            raise InvalidParameterError(
                f"layers must be a sequence of activations (one per layer), got "
                f"{items!r}") from None
        if not items:
            raise InvalidParameterError("an explicit network needs at least one layer")
        layers = tuple(_as_layer(x) for x in items)
        pinned = [layer.pinned for layer in layers]
        if any(pinned) and not all(pinned):
            raise InvalidParameterError("pin every layer to the data scale, or none")
        if all(pinned):
            for l in range(1, len(layers)):
                if layers[l].tau_in != layers[l - 1].tau_out:
                    raise InvalidParameterError(
                        f"layer {l + 1}'s input scale {layers[l].tau_in!r} is not layer "
                        f"{l}'s output scale {layers[l - 1].tau_out!r}")
        object.__setattr__(self, "layers", layers)

    @property
    def depth(self) -> int:
        """L, the number of hidden layers."""
        return len(self.layers)

    @property
    def activations(self) -> tuple:
        """sigma_1..sigma_L (uncentred Activations)."""
        return tuple(layer.activation for layer in self.layers)

    @property
    def group_names(self) -> tuple[str, ...]:
        """NTK parameter groups: ("v", "W1", ..., "WL")."""
        return ("v",) + tuple(f"W{l}" for l in range(1, self.depth + 1))

    def check_groups(self, groups: Iterable[str] | None) -> tuple[str, ...]:
        """A selection of NTK groups in canonical order (None: all)."""
        return self.group_names if groups is None else check_groups(groups, self.group_names)

    @property
    def pinned(self) -> bool:
        """Whether the layers carry their scales at a data scale."""
        return self.layers[0].pinned

    @property
    def tau0(self) -> float | None:
        """The data scale the network is pinned to (None if it is not)."""
        return self.layers[0].tau_in

    @property
    def scales(self) -> "ExplicitScales | None":
        """The pinned scales and centrings (None if not pinned)."""
        if not self.pinned:
            return None
        return ExplicitScales(tau=(self.tau0,) + tuple(l.tau_out for l in self.layers),
                              centring=tuple(l.centring for l in self.layers))

    def at_scale(self, tau0: float) -> "ExplicitNetwork":
        """The network pinned to data scale ``tau0`` (:func:`explicit_scales`)."""
        sc = explicit_scales(self, tau0)
        return ExplicitNetwork(tuple(
            layer.with_scales(sc.tau[l], sc.tau[l + 1], sc.centring[l])
            for l, layer in enumerate(self.layers)))

    def to_dict(self) -> dict:
        """``{"layers": [...]}`` (JSON-ready; each layer as :meth:`ExplicitLayer.to_dict`).

        Raises
        ------
        InvalidParameterError
            A layer whose activation is code (kind ``"custom"``).
        """
        for layer in self.layers:
            if layer.kind == "custom":
                raise InvalidParameterError(
                    f"layer activation {layer.activation.name!r} is code, not a spec: the "
                    f"network has no JSON form; use registry specs "
                    f"(rmt_deq.activations.register_activation) or the design record of its family")
        return {"layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExplicitNetwork":
        """Inverse of :meth:`to_dict` (parametrised layers are rebuilt from their
        parameters and stored input scale); unknown keys are rejected."""
        if not isinstance(d, Mapping):
            raise InvalidParameterError("from_dict needs a mapping")
        unknown = sorted(set(d) - {"layers"})
        if unknown:
            raise UnknownOptionError(f"unknown ExplicitNetwork field(s) {unknown}")
        if "layers" not in d or not isinstance(d["layers"], (list, tuple)):
            raise InvalidParameterError("missing field 'layers' (a list of layer records)")
        return cls(tuple(_layer_from_dict(rec, i) for i, rec in enumerate(d["layers"])))

    def _key(self) -> tuple:
        return tuple(layer._key() for layer in self.layers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExplicitNetwork):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


_SCALE_KEYS = ("tau_in", "tau_out", "centring")


def _layer_from_dict(rec: Any, i: int) -> ExplicitLayer:
    if not isinstance(rec, Mapping) or "kind" not in rec:
        raise InvalidParameterError(f"layers[{i}] must be a mapping with a 'kind'")
    kind = rec["kind"]
    body = ("activation",) if kind == "activation" else ("params",)
    unknown = sorted(set(rec) - {"kind", *body, *_SCALE_KEYS})
    missing = [k for k in body if k not in rec]
    if unknown or missing:
        raise InvalidParameterError(
            f"layers[{i}] of kind {kind!r} needs {['kind', *body]} (and the scales "
            f"{list(_SCALE_KEYS)} when pinned); unknown {unknown}, missing {missing}")
    scales = [rec.get(k) for k in _SCALE_KEYS]
    if kind == "activation":
        act = get_activation(rec["activation"])
        return ExplicitLayer(act, "activation", {}, *scales)
    if kind not in DESIGNED_KINDS:
        raise InvalidParameterError(
            f"layers[{i}] has kind {kind!r}, which has no JSON form; kinds: "
            f"{('activation',) + DESIGNED_KINDS}")
    if kind == "hermite" and scales[0] is None:
        raise InvalidParameterError(f"layers[{i}] is a Hermite layer: it needs its tau_in")
    tau_in = 1.0 if scales[0] is None else check_positive_finite(scales[0], "tau_in")
    params = check_layer_params(kind, rec["params"])
    return ExplicitLayer(layer_activation(kind, params, tau_in), kind, params, *scales)


def as_explicit_network(network: Any) -> ExplicitNetwork:
    """``network`` if it is an :class:`ExplicitNetwork`, else ``ExplicitNetwork(network)``."""
    return network if isinstance(network, ExplicitNetwork) else ExplicitNetwork(network)


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

    A network pinned to ``tau0`` itself gives its own scales; otherwise they are computed
    layer by layer (:func:`rmt_deq.moments.bivariate.one_dimensional_moments`).

    Raises
    ------
    InvalidParameterError
        tau0 not positive, or a layer whose centred output vanishes (tau_l = 0).
    """
    net = as_explicit_network(network)
    t = check_positive_finite(tau0, "tau0")
    if net.pinned and net.tau0 == t:
        return net.scales
    taus, cs = [t], []
    for l, act in enumerate(net.activations, start=1):
        c = float(one_dimensional_moments(act, np.array([t]), keys=("mean",))["mean"][0])
        v = float(one_dimensional_moments(act, np.array([t]), c, keys=("m2",))["m2"][0])
        if not v > 0:
            raise InvalidParameterError(
                f"layer {l} ({act.name!r}) has a constant centred output at input scale "
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
        W_1 (m_1 x p), W_l (m_l x m_{l-1}); m_l = m but for a hidden width.
    v : ndarray, shape (m_L,)
    family : str
        Family of the layers W_2..W_L.  W_1 is Gaussian, or a Haar partial isometry for
        ``"orthogonal"`` (the symmetric family needs square matrices, so its W_1 is
        Gaussian).
    """

    W: tuple = field(repr=False)
    v: np.ndarray = field(repr=False)
    family: str = "gaussian"

    @property
    def m(self) -> int:
        """The width m_L of the features h_L."""
        return int(self.W[-1].shape[0])

    @property
    def widths(self) -> tuple:
        """(m_1, ..., m_L)."""
        return tuple(int(W.shape[0]) for W in self.W)

    @property
    def p(self) -> int:
        return int(self.W[0].shape[1])


def sample_explicit_weights(network: Any, m: int, p: int, *, family: str = "gaussian",
                            rng: Any = None, dtype: Any = "float64",
                            hidden_width: int | None = None) -> ExplicitWeights:
    """Draw W_1..W_L and v (in that order, from one generator).

    Parameters
    ----------
    network : ExplicitNetwork or sequence of activations
    m, p : int
        Width of the features h_L and input dimension.
    family : {"gaussian", "orthogonal", "symmetric"}
    rng : int or numpy.random.Generator, optional
    dtype : {"float64", "float32"}
    hidden_width : int, optional
        Width m_1 = ... = m_{L-1} of the layers below the last (default m; the same seed
        gives the same weights with None or m).  The infinite-width kernels do not depend
        on it.

    Raises
    ------
    InvalidParameterError
        ``hidden_width`` other than m with the symmetric family (its layers are square).
    """
    net = as_explicit_network(network)
    m = check_positive_int(m, "m")
    p = check_positive_int(p, "p")
    family = check_family(family)
    dt = check_dtype(dtype)
    mh = m if hidden_width is None else check_positive_int(hidden_width, "hidden_width")
    if mh != m and family == "symmetric" and net.depth > 1:
        raise InvalidParameterError(
            f"the symmetric family draws square layers: hidden_width ({mh}) must equal the "
            f"width m ({m}); use the gaussian or orthogonal family for a wider hidden layer")
    gen = as_rng(rng)
    first = "orthogonal" if family == "orthogonal" else "gaussian"
    rows = [mh] * (net.depth - 1) + [m]
    Ws = [weight_matrix(first, rows[0], p, gen, dt)]
    for l in range(1, net.depth):
        Ws.append(weight_matrix(family, rows[l], rows[l - 1], gen, dt))
    v = gen.standard_normal(m, dtype=dt)
    return ExplicitWeights(W=tuple(Ws), v=v, family=family)


@dataclass(frozen=True, eq=False)
class ExplicitForward:
    """Hidden features of every layer for all samples.

    Attributes
    ----------
    H : tuple of ndarray, shape (m, n) each
        h_1..h_L (columns are samples).
    delta : tuple of ndarray or None
        Preactivation gradients delta_1..delta_L of f = v^T h_L (when requested).
    scales : ExplicitScales
    """

    H: tuple = field(repr=False)
    delta: tuple | None = field(repr=False)
    scales: ExplicitScales

    @property
    def features(self) -> np.ndarray:
        """h_L (m x n)."""
        return self.H[-1]

    @property
    def gram(self) -> np.ndarray:
        """The CK Gram matrix h_L^T h_L (n x n)."""
        return self.features.T @ self.features


def elementwise_layers(network: ExplicitNetwork, dtype: np.dtype,
                       backend: Backend = NUMPY) -> list:
    """Evaluators of sigma_l and sigma_l' in ``dtype`` (in place where a ufunc is known), the
    ``elems`` of :func:`forward_pass`, in the namespace of ``backend``
    (:func:`~rmt_deq.networks._batched.elementwise`)."""
    return [elementwise(act, dtype, backend) for act in network.activations]


def forward_pass(Xd: np.ndarray, W: Sequence[np.ndarray], v: np.ndarray | None,
                 scales: ExplicitScales, elems: Sequence[Any], gradients: bool
                 ) -> tuple[list, list | None]:
    """h_1..h_L and (with ``gradients``) delta_1..delta_L, for validated inputs.

    ``Xd`` (p x n) and ``W`` in one dtype, shapes checked by the caller; ``elems`` from
    :func:`elementwise_layers`, whose namespace the arrays are in; ``v`` is needed only for
    the gradients.
    """
    first = elems[0]
    inv = [first.scalar(1.0 / math.sqrt(Wl.shape[0])) for Wl in W]
    L = len(W)
    H, D = [], []
    h = Xd
    for l in range(L):
        pre = W[l] @ h
        out = first.xp.empty_like(pre)
        elems[l].fn_into(pre, out)
        out -= first.scalar(scales.centring[l])
        out *= inv[l]
        if gradients:
            D.append(elems[l].d1(pre))
        H.append(out)
        h = out
    if not gradients:
        return H, None
    delta = [None] * L
    d = D[-1] * (v * inv[-1])[:, None]
    delta[-1] = d
    for l in range(L - 2, -1, -1):
        d = (W[l + 1].T @ d) * D[l]
        d *= inv[l]
        delta[l] = d
    return H, delta


def _check_weights(weights: Any, net: ExplicitNetwork, p: int, gradients: bool
                   ) -> tuple[list, np.ndarray | None]:
    if isinstance(weights, ExplicitWeights):
        Ws, v = list(weights.W), weights.v
    elif isinstance(weights, (list, tuple)):
        if gradients:
            raise InvalidParameterError("gradients need the read-out v: pass ExplicitWeights")
        Ws, v = [np.asarray(W, dtype=float) for W in weights], None
    else:
        raise InvalidParameterError(
            "weights must be ExplicitWeights (sample_explicit_weights) or a sequence of the "
            "L weight matrices")
    if len(Ws) != net.depth:
        raise ShapeMismatchError(f"need {net.depth} weight matrices, got {len(Ws)}")
    rows = p
    for l, W in enumerate(Ws):
        if W.ndim != 2 or W.shape[1] != rows:
            raise ShapeMismatchError(f"W_{l + 1} must be m_{l + 1} x {rows}, got {W.shape}")
        rows = W.shape[0]
    if v is not None and v.shape != (rows,):
        raise ShapeMismatchError(f"v must have the width m_L = {rows} of W_L, got {v.shape}")
    return Ws, v


def explicit_forward(X: Any, network: Any, weights: Any, *, tau0: float | None = None,
                     labels: Any = None, gradients: bool = False) -> ExplicitForward:
    """Features h_1..h_L (and optionally the gradients delta_l) for all samples.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).
    network : ExplicitNetwork or sequence of activations
    weights : ExplicitWeights, or a sequence of the L weight matrices
        W_1 (m_1 x p), W_l (m_l x m_{l-1}) with unit-variance entries (the 1/sqrt(m_l)
        scalings are applied here); the gradients need ExplicitWeights (its v).
    tau0 : float, optional
        The data scale at which sigma_1 is centred (default
        :func:`rmt_deq.data.conventions.data_scale`); a network pinned to it uses its own
        centrings (:func:`explicit_scales`).
    labels : array_like, shape (n,), optional
        Class labels, used only for the default tau0.
    gradients : bool
        Also back-propagate delta_l = df/d(preactivation of layer l).
    """
    net = as_explicit_network(network)
    Xa = as_data_matrix(X)
    Ws, v = _check_weights(weights, net, Xa.shape[0], gradients)
    scales = explicit_scales(net, data_scale(Xa, labels, tau0=tau0).tau0)
    dt = Ws[0].dtype
    H, delta = forward_pass(Xa.astype(dt), Ws, v, scales, elementwise_layers(net, dt),
                            gradients)
    return ExplicitForward(H=tuple(H), delta=None if delta is None else tuple(delta),
                           scales=scales)
