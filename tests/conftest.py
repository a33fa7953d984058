"""Shared fixtures and the list of activations every moment test runs over."""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from rmt_deq.activations import Activation

#: every registered activation (with representative parameters), plus one user callable
ACTIVATION_SPECS = [
    "relu", "leaky_relu:0.1", "hard_tanh:1,1", "hard_tanh:2,0.5", "tanh", "erf", "sigmoid",
    "swish", "silu", "gelu", "elu:1", "elu:0.5", "softplus", "quadratic:1,0.5",
    "polynomial:0.1,1,0.2,-0.1",
]


def user_sine() -> Activation:
    """A user callable with an mpmath twin and no analytic derivative (complex step used)."""
    return Activation.from_callable(np.sin, name="user_sine", mp_fn=mp.sin)


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(20240521)
