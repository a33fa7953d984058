"""The layers of a designed network: built with their scales, and their moments.

A designed layer is an :class:`~rmt_deq.networks.explicit.ExplicitLayer` of a parametrised
kind (:mod:`rmt_deq.networks.layer_activations`) or of a user family (kind ``"custom"``),
pinned to its input scale tau_{l-1}: its output scale tau_l and its centring come from the
closed-form moments of :mod:`rmt_deq.design._moments` (quadrature for a user family), and
:func:`layer_moment_fn` gives the moments the design equations need as a function of the
input variance (docs/theory.md §6.2-§6.3, §6.7).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from rmt_deq.activations import Activation
from rmt_deq.design._moments import (INV_SQRT_2PI, moments_hardtanh, moments_hardtanhlin,
                                     moments_hermite, moments_pwlinear)
from rmt_deq.errors import InvalidParameterError, UnknownOptionError
from rmt_deq.moments.gaussian import gaussian_moments
from rmt_deq.networks.explicit import ExplicitLayer
from rmt_deq.networks.layer_activations import layer_activation

__all__ = ["LAYER_KINDS", "make_layer", "layer_moment_fn", "numeric_moments"]

#: the kinds of a designed layer (the parametrised kinds and a user family's)
LAYER_KINDS = ("pwlinear", "hermite", "hardtanh", "hardtanhlin", "custom")


def make_layer(kind: str, params: Mapping[str, float], tau_in: float, custom: Any = None,
               index: int = 0) -> ExplicitLayer:
    """A designed layer at input scale ``tau_in``, with its output scale and centring.

    Parameters
    ----------
    kind : {"pwlinear", "hermite", "hardtanh", "hardtanhlin", "custom"}
    params : mapping of str to float
        The kind's parameters (:func:`rmt_deq.networks.layer_activations.layer_activation`;
        a Hermite layer's ``c`` defaults to 0), or a user family's for layer ``index``.
    tau_in : float
    custom : ParametricFamily, optional
        The user family of a ``"custom"`` layer.
    index : int
        The layer's index in its family (custom layers).

    Raises
    ------
    UnknownOptionError
        Unknown kind.
    InvalidParameterError
        Bad parameters, or a layer whose centred output is constant at ``tau_in``.
    """
    q = tau_in * tau_in
    if kind == "pwlinear":
        a, b = float(params["a"]), float(params["b"])
        act = layer_activation(kind, {"a": a, "b": b}, tau_in)
        V0 = moments_pwlinear(a, b, q)[3]
        centring = (a - b) * tau_in * INV_SQRT_2PI
    elif kind == "hermite":
        a, b, c = float(params["a"]), float(params["b"]), float(params.get("c", 0.0))
        act = layer_activation(kind, {"a": a, "b": b, "c": c}, tau_in)
        V0 = moments_hermite(a, b, c, q)[3]
        centring = 0.0
    elif kind == "hardtanh":
        a, c = float(params["a"]), float(params["c"])
        act = layer_activation(kind, {"a": a, "c": c}, tau_in)       # checks c > 0
        V0 = moments_hardtanh(a, c, q)[3]
        centring = 0.0
    elif kind == "hardtanhlin":
        a, c, b = float(params["a"]), float(params["c"]), float(params["b"])
        act = layer_activation(kind, {"a": a, "c": c, "b": b}, tau_in)   # checks c > 0
        V0 = moments_hardtanhlin(a, c, b, q)[3]
        centring = 0.0
    elif kind == "custom":
        if custom is None:
            raise InvalidParameterError("a custom layer needs its ParametricFamily")
        theta = [float(params[k]) for k in custom.layer_param_names(index)]
        act = custom.activation(index, theta)
        gm = gaussian_moments(act, tau_in)
        V0, centring = float(gm.V0), float(gm.mean)
    else:
        raise UnknownOptionError(f"unknown layer kind {kind!r}; choose from {LAYER_KINDS}")
    V0 = float(V0)
    if not V0 > 0:
        raise InvalidParameterError(
            f"layer of kind {kind} with {dict(params)} has a constant output at scale "
            f"{tau_in:g} (E[sigma_c^2] = {V0:.3g})")
    return ExplicitLayer(act, kind, dict(params), float(tau_in), math.sqrt(V0),
                         float(centring))


def numeric_moments(act: Activation, q: float, refine: bool = False) -> tuple:
    """(g1, g2, g4, V0, h0) of ``act`` at input variance q by the package's moment engine,
    then (e1 e3, h2) with ``refine``."""
    gm = gaussian_moments(act, math.sqrt(float(q)))
    out = (float(gm.g1), float(gm.g2), float(gm.g4), float(gm.V0), float(gm.h0))
    if refine:
        out += (float(gm.e1) * float(gm.e3), float(gm.h2))
    return out


def layer_moment_fn(layer: ExplicitLayer, refine: bool = False) -> Callable[[Any], tuple]:
    """q -> (g1, g2, g4, V0, h0) of a designed layer at input variance q (then
    (e1 e3, h2) with ``refine``), closed-form for the parametrised kinds.

    Raises
    ------
    InvalidParameterError
        ``refine`` for a kind without closed-form refined moments (pwlinear, hermite).
    """
    p = layer.params
    if layer.kind == "hardtanhlin":
        return lambda q: moments_hardtanhlin(p["a"], p["c"], p["b"], q)
    if layer.kind == "custom":
        act = layer.activation
        return lambda q: numeric_moments(act, q, refine)
    if refine:
        if layer.kind == "hardtanh":
            return lambda q: moments_hardtanhlin(p["a"], p["c"], 0.0, q)
        raise InvalidParameterError(
            f"no refined NTK moments for a {layer.kind} layer (refine=True is for odd "
            f"families: htanh1, htanhlin2, or an odd ParametricFamily)")
    if layer.kind == "pwlinear":
        return lambda q: moments_pwlinear(p["a"], p["b"], q)
    if layer.kind == "hermite":
        c = p.get("c", 0.0)
        return lambda q: moments_hermite(p["a"], p["b"], c, q)
    if layer.kind == "hardtanh":
        return lambda q: moments_hardtanh(p["a"], p["c"], q)
    raise InvalidParameterError(
        f"a layer of kind {layer.kind!r} is not a designed layer; give the network's "
        f"design family")
