"""Shared fixtures and the list of activations every moment test runs over."""
from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys

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


#: the repository's derivations/ folder (sympy scripts the tests execute)
DERIVATIONS = pathlib.Path(__file__).resolve().parents[1] / "derivations"


def load_derivation(name: str):
    """Import derivations.<name> from the repository without touching sys.path."""
    if "derivations" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "derivations", DERIVATIONS / "__init__.py",
            submodule_search_locations=[str(DERIVATIONS)])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules["derivations"] = pkg
        spec.loader.exec_module(pkg)
    return importlib.import_module(f"derivations.{name}")
