"""One-dimensional Gaussian moments at many scales at once (the diagonal of the exact
kernels, docs/theory.md §2.2, and the layer recursions of explicit networks).

The ReLU family has closed forms; other activations use a composite Gauss-Legendre rule
shared by all scales (:mod:`rmt_deq.moments._scale_rule`), checked against a 12-node rule
on the same panels.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rmt_deq._validation import as_positive_array
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.errors import UnknownOptionError
from rmt_deq.moments._engines import centred_raw
from rmt_deq.moments._scale_rule import MOMENT_KEYS, scale_moments

__all__ = ["one_dimensional_moments", "gaussian_mean", "MOMENT_KEYS"]

_SCALES = " (standard deviations)"


def gaussian_mean(activation: ActivationLike, s: Any) -> Any:
    """E[phi(s xi)], xi ~ N(0, 1), for each standard deviation s (closed form or quadrature).

    Parameters
    ----------
    activation : name, Activation or callable
    s : float or array_like of float, > 0

    Returns
    -------
    float or ndarray of the shape of ``s``
    """
    act = get_activation(activation)
    arr = as_positive_array(s, "s", _SCALES)
    raw, _ = centred_raw(act, arr, "auto", None)
    m = raw["p0"] + raw["phi"]          # back from phi - phi(0) to phi
    return float(np.asarray(m).reshape(-1)[0]) if arr.ndim == 0 else np.asarray(m).reshape(
        arr.shape)


def one_dimensional_moments(activation: ActivationLike, s: Any, centring: float = 0.0, *,
                            keys: tuple[str, ...] = MOMENT_KEYS, check: bool = True
                            ) -> dict[str, np.ndarray]:
    """The 1-D moments the kernel fixed point needs, vectorised over scales s.

    Parameters
    ----------
    activation : name, Activation or callable
    s : array_like of float, > 0
        Standard deviations.
    centring : float
        c in phi_c = phi - c.
    keys : tuple of str
        Which moments to return (a subset of ``MOMENT_KEYS``).
    check : bool
        Certify the quadrature against the 12-node rule (relative agreement
        :data:`rmt_deq.moments._scale_rule.RULE_CHECK` on E[phi_c^2] and E[phi'^2]);
        raises :class:`~rmt_deq.errors.ConvergenceError` if not.

    Returns
    -------
    dict of str -> ndarray of the shape of ``s``
        ``mean`` E[phi(s xi)], ``e1`` E[phi'(s xi)], ``m2`` E[phi_c^2],
        ``dm2`` d E[phi_c(sqrt(S) xi)^2] / dS = E[He_2(xi) phi_c(s xi)^2] / (2 s^2),
        ``d2`` E[phi'(s xi)^2].
    """
    act = get_activation(activation)
    s = as_positive_array(s, "s", _SCALES)
    keys = tuple(keys)
    unknown = [k for k in keys if k not in MOMENT_KEYS]
    if unknown:
        raise UnknownOptionError(f"unknown moment key(s) {unknown}; choose from {MOMENT_KEYS}")
    return scale_moments(act, s, float(centring), keys, check)
