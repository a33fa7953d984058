"""A designed network written out as the source of a PyTorch ``nn.Module``.

:func:`torch_source` is text generation only: nothing here imports torch.  The module it
writes runs the forward pass of :meth:`rmt_deq.design.network.DesignedNetwork.forward`
(docs/theory.md §6.1)::

    h_0 = x,   h_l = (sigma_l(W_l h_{l-1}) - c_l) / sqrt(m),   f(x) = v^T h_L,

with the same unit-variance weights (W_1: m x p, W_2..W_L: m x m, v: m), the same
activations sigma_l written with torch operations in the same order of operations as the
package's evaluators, the same centrings c_l (those of the design data scale tau0), and
the same scaling (the preactivation W_l h_{l-1} is not rescaled; the centred output is
multiplied by 1/sqrt(m)).  A design puts all its free parameters in the activations: the
weights have unit variance at every layer, so the module draws them from N(0, 1).

Rows are samples in the module (the torch convention of ``nn.Linear``): it maps x of shape
(n, p) to h_L of shape (n, m), the transpose of the package's X (p x n) -> features
(m x n).  Every constant is written at full precision (``repr``).
"""
from __future__ import annotations

import keyword
from typing import Any

from rmt_deq.errors import InvalidParameterError
from rmt_deq.networks.layer_activations import DESIGNED_KINDS

__all__ = ["torch_source", "TORCH_KINDS"]

#: the layer kinds that have a torch expression (the built-in families' kinds)
TORCH_KINDS = DESIGNED_KINDS


def _horner(coeffs: tuple, var: str) -> str:
    """c0 + c1 u + ... as numpy's ``polynomial.polyval`` evaluates it (Horner's rule,
    highest degree first)."""
    expr = repr(float(coeffs[-1]))
    for c in reversed(coeffs[:-1]):
        expr = f"{float(c)!r} + ({expr}) * {var}"
    return expr


def _torch_expression(layer: Any, index: int) -> str:
    """sigma_l(u) (uncentred) as a torch expression in ``u``, in the evaluation order of
    the layer's activation (:mod:`rmt_deq.networks.layer_activations`)."""
    p = layer.params
    if layer.kind == "pwlinear":
        return f"torch.where(u > 0, {p['a']!r} * u, {p['b']!r} * u)"
    if layer.kind == "hermite":
        pieces = layer.activation.pieces
        if pieces is None or len(pieces) != 1:
            raise InvalidParameterError(
                f"layer {index}: Hermite activation {layer.activation.name!r} is not a single "
                f"polynomial; re-create the network from its design")
        return _horner(tuple(pieces[0].coeffs), "u")
    if layer.kind == "hardtanh":
        return f"{p['a']!r} * torch.clamp(u, -{p['c']!r}, {p['c']!r})"
    if layer.kind == "hardtanhlin":
        return f"{p['a']!r} * torch.clamp(u, -{p['c']!r}, {p['c']!r}) + {p['b']!r} * u"
    raise InvalidParameterError(
        f"layer {index} has activation {layer.activation.name!r} (kind {layer.kind!r}), "
        f"which has no torch expression: torch_source writes the built-in families' layer "
        f"kinds {TORCH_KINDS}; port a user family's sigma to torch by hand")


def torch_source(net: Any, class_name: str = "DesignedNetwork") -> str:
    """Python source of a self-contained PyTorch module of the designed network ``net``.

    Parameters
    ----------
    net : DesignedNetwork
    class_name : str
        Name of the ``nn.Module`` subclass (a Python identifier, not a keyword).

    Returns
    -------
    str
        Source that imports only ``math`` and ``torch``.  The class ``class_name(in_features,
        width, *, generator=None, dtype=torch.float64, device=None)`` holds ``widths`` (p,
        m, ..., m), the weights ``weights[l]`` (W_{l+1}, unit-variance Gaussian at init)
        and ``v``, the designed constants (``FAMILY``, ``PARAMS``, ``TAU0``, ``LAYERS``
        with each layer's kind, parameters, scales and centring); ``forward(x)`` maps
        x (n, p) to h_L (n, m) and ``readout(x)`` to f = h_L v (n,).

    Raises
    ------
    InvalidParameterError
        ``class_name`` is not an identifier; a layer without a torch expression (a user
        family's sigma, named in the message).
    """
    if not (isinstance(class_name, str) and class_name.isidentifier()
            and not keyword.iskeyword(class_name)):
        raise InvalidParameterError(
            f"class_name must be a Python identifier (not a keyword), got {class_name!r}")
    exprs = [_torch_expression(layer, l) for l, layer in enumerate(net.layers, start=1)]
    L = len(exprs)
    layers = "".join(
        f"    {{'kind': {layer.kind!r}, 'params': {dict(layer.params)!r},\n"
        f"     'tau_in': {layer.tau_in!r}, 'tau_out': {layer.tau_out!r}, "
        f"'centring': {layer.centring!r}}},\n" for layer in net.layers)
    sigmas = "".join(
        f"\n    @staticmethod\n"
        f"    def sigma_{l}(u):\n"
        f'        """sigma_{l}(u) of the {layer.kind} layer, before centring."""\n'
        f"        return {expr}\n"
        for l, (layer, expr) in enumerate(zip(net.layers, exprs), start=1))
    steps = "".join(
        f"        h = (self.sigma_{l}(h @ self.weights[{l - 1}].T) - "
        f"{layer.centring!r}) * self.scale\n"
        for l, layer in enumerate(net.layers, start=1))
    params = {k: float(v) for k, v in net.params.items()}
    return f'''"""Designed explicit network as a PyTorch module (family {net.family!r},
{L} hidden layer(s), designed at data scale tau0 = {net.tau0!r}).

Written by rmt_deq (DesignedNetwork.torch_source).  The forward pass is

    h_0 = x,   h_l = (sigma_l(W_l h_{{l-1}}) - c_l) / sqrt(m),   f(x) = v^T h_L,

with unit-variance weights W_1 (m x p), W_2..W_L (m x m), v (m), the designed activations
sigma_l and the centrings c_l of the design data scale.  Rows are samples: x has shape
(n, p); the package's X (p x n) is x.T.
"""
import math

import torch
from torch import nn

FAMILY = {net.family!r}
PARAMS = {params!r}
TAU0 = {net.tau0!r}
#: per layer: kind, parameters, input and output scales tau_(l-1), tau_l, centring c_l
LAYERS = (
{layers})


class {class_name}(nn.Module):
    """The designed network with width m: x (n, p) -> h_L (n, m).

    Parameters
    ----------
    in_features : int
        p, the data dimension.
    width : int
        m, the width of every hidden layer.
    generator : torch.Generator, optional
        Source of the initial weights (unit-variance Gaussian).
    dtype, device :
        Of the weights (default float64).
    """

    def __init__(self, in_features, width, *, generator=None, dtype=torch.float64,
                 device=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{{name}} must be a positive integer, got {{value!r}}")
        self.widths = (in_features,) + (width,) * {L}
        self.scale = 1.0 / math.sqrt(width)

        def draw(*shape):
            return nn.Parameter(torch.randn(*shape, generator=generator, dtype=dtype,
                                            device=device))

        self.weights = nn.ParameterList(
            [draw(self.widths[l + 1], self.widths[l]) for l in range({L})])
        self.v = draw(width)
{sigmas}
    def forward(self, x):
        """h_L, shape (n, m), of x, shape (n, p) (rows are samples)."""
        h = x
{steps}        return h

    def readout(self, x):
        """f(x) = v^T h_L for each row of x: shape (n,)."""
        return self.forward(x) @ self.v
'''
