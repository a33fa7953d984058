"""The parametrised activations of designed explicit-network layers (docs/theory.md §6.7).

Each kind is a piecewise polynomial with exact pieces (so its Gaussian moments have closed
forms) and an mpmath version; :func:`layer_activation` builds sigma from the kind's
parameters.  They are not registered as activation specs: a layer records its kind and
parameters instead (:class:`rmt_deq.networks.explicit.ExplicitLayer`).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping, Sequence

import mpmath as mp
import numpy as np
from numpy.polynomial import polynomial as P

from rmt_deq.activations import Activation, PolyPiece, get_activation
from rmt_deq.errors import InvalidParameterError, UnknownOptionError

__all__ = ["LAYER_PARAMS", "DESIGNED_KINDS", "check_layer_params", "layer_activation"]

#: the parametrised layer kinds of a design, and the names of their parameters
LAYER_PARAMS = {"pwlinear": ("a", "b"), "hermite": ("a", "b", "c"), "hardtanh": ("a", "c"),
                "hardtanhlin": ("a", "c", "b")}
DESIGNED_KINDS = tuple(LAYER_PARAMS)
_INF = math.inf


def _mp_pieces(pieces: Sequence[PolyPiece]) -> tuple:
    """mpmath evaluators of a piecewise polynomial and of its derivative."""
    coeffs = [tuple(pc.coeffs) for pc in pieces]
    derivs = [tuple(P.polyder(np.array(c, float))) if len(c) > 1 else (0.0,) for c in coeffs]

    def poly(c: Sequence[float], x: Any) -> Any:
        return mp.polyval([mp.mpf(ci) for ci in reversed(list(c))], x)

    def pick(table: list, x: Any) -> Any:
        for pc, c in zip(pieces, table):
            if x <= pc.hi:
                return poly(c, x)
        return poly(table[-1], x)

    return (lambda x: pick(coeffs, x)), (lambda x: pick(derivs, x))


def _piecewise(name: str, pieces: list, fn: Any, d1: Any, odd: bool,
               params: tuple) -> Activation:
    mp_fn, mp_d1 = _mp_pieces(pieces)
    return Activation(name=name, fn=fn, d1=d1, mp_fn=mp_fn, mp_d1=mp_d1,
                      kinks=tuple(pc.hi for pc in pieces[:-1]), pieces=tuple(pieces), odd=odd,
                      params=params)


def _pwlinear(a: float, b: float) -> Activation:
    """sigma(t) = a t (t > 0), b t (t < 0)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        raise InvalidParameterError(f"piecewise-linear slopes must be finite, got {a!r}, {b!r}")
    return _piecewise(
        f"pwlinear:{a!r},{b!r}",
        [PolyPiece(-_INF, 0.0, (0.0, b)), PolyPiece(0.0, _INF, (0.0, a))],
        lambda x: np.where(x > 0, a * x, b * x),
        lambda x: np.where(x > 0, a, b) * np.ones_like(x), False, (a, b))


def _hermite(a: float, b: float, c: float, q: float) -> Activation:
    """a t + b (t^2 - q) + c (t^3 - 3 q t), q the input variance."""
    if c == 0.0:
        act = get_activation(f"polynomial:{-b * q!r},{a!r},{b!r}")
    else:
        act = get_activation(f"polynomial:{-b * q!r},{a - 3.0 * c * q!r},{b!r},{c!r}")
    return replace(act, name=f"hermite:{a!r},{b!r},{c!r},{q!r}")


def _hardtanh(a: float, c: float) -> Activation:
    """a clip(t, -c, c)."""
    if not (math.isfinite(c) and c > 0):
        raise InvalidParameterError(f"hard tanh clip level c must be > 0, got {c!r}")
    return replace(get_activation(f"hard_tanh:{a!r},{c!r}"), name=f"hardtanh:{a!r},{c!r}")


def _hardtanhlin(a: float, c: float, b: float) -> Activation:
    """a clip(t, -c, c) + b t (three linear pieces)."""
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c) and c > 0):
        raise InvalidParameterError(
            f"hard tanh + linear needs finite a, b and a clip level c > 0, got {a!r}, {c!r}, "
            f"{b!r}")
    return _piecewise(
        f"hardtanhlin:{a!r},{c!r},{b!r}",
        [PolyPiece(-_INF, -c, (-a * c, b)), PolyPiece(-c, c, (0.0, a + b)),
         PolyPiece(c, _INF, (a * c, b))],
        lambda x: a * np.clip(x, -c, c) + b * x,
        lambda x: np.where(np.abs(x) < c, a + b, b) * np.ones_like(x), True, (a, c, b))


def check_layer_params(kind: str, params: Mapping[str, Any]) -> dict:
    """The parameters of a ``kind`` layer as floats, in the kind's order (exactly its
    names, each a number; InvalidParameterError / UnknownOptionError otherwise)."""
    if kind not in LAYER_PARAMS:
        raise UnknownOptionError(f"unknown layer kind {kind!r}; choose from "
                                 f"{DESIGNED_KINDS + ('activation', 'custom')}")
    if not isinstance(params, Mapping):
        raise InvalidParameterError(f"the params of a {kind} layer must be a mapping "
                                    f"{LAYER_PARAMS[kind]} -> float, got {params!r}")
    names = LAYER_PARAMS[kind]
    if set(params) != set(names):
        raise InvalidParameterError(
            f"a {kind} layer has parameters {names}, got {sorted(map(str, params))}")
    out = {}
    for k in names:
        v = params[k]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise InvalidParameterError(f"{kind} parameter {k} must be a number, got {v!r}")
        out[k] = float(v)
    return out


def layer_activation(kind: str, params: Mapping[str, float], tau_in: float) -> Activation:
    """sigma (uncentred) of a parametrised layer of a design (docs/theory.md §6.7).

    Parameters
    ----------
    kind : {"pwlinear", "hermite", "hardtanh", "hardtanhlin"}
        ``"pwlinear"``: a t (t > 0), b t (t < 0) (params a, b); ``"hermite"``:
        a t + b (t^2 - tau_in^2) + c (t^3 - 3 tau_in^2 t) (params a, b, c); ``"hardtanh"``:
        a clip(t, -c, c) (params a, c); ``"hardtanhlin"``: a clip(t, -c, c) + b t
        (params a, c, b).
    params : mapping of str to float
        Exactly the kind's parameters.
    tau_in : float
        The layer's input scale (only the Hermite kind depends on it).

    Returns
    -------
    Activation
        Named ``"<kind>:<params at full precision>"``, with its exact pieces (closed-form
        moments) and mpmath versions.

    Raises
    ------
    UnknownOptionError
        Unknown kind.
    InvalidParameterError
        Missing, unknown or non-finite parameters; a clip level c <= 0.
    """
    p = check_layer_params(kind, params)
    if kind == "pwlinear":
        return _pwlinear(p["a"], p["b"])
    if kind == "hermite":
        return _hermite(p["a"], p["b"], p["c"], float(tau_in) * float(tau_in))
    if kind == "hardtanh":
        return _hardtanh(p["a"], p["c"])
    return _hardtanhlin(p["a"], p["c"], p["b"])


