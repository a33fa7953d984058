"""Shared fixtures and the list of activations every moment test runs over."""
from __future__ import annotations

import functools
import importlib
import importlib.util
import json
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


def relu_pair_expectation(S: np.ndarray, c: float) -> np.ndarray:
    """E[(relu(u_i) - c)(relu(u_j) - c)], (u_i, u_j) ~ N(0, S): the arc-cosine closed form
    (an independent reference for the package's ReLU kernels)."""
    s = np.sqrt(np.diagonal(S))
    cos = np.clip(S / np.outer(s, s), -1.0, 1.0)
    th = np.arccos(cos)
    prod = np.outer(s, s) / (2 * np.pi) * (np.sin(th) + (np.pi - th) * cos)
    mean = s / np.sqrt(2 * np.pi)
    return prod - c * (mean[:, None] + mean[None, :]) + c * c


def user_sine() -> Activation:
    """A user callable with an mpmath twin and no analytic derivative (complex step used)."""
    return Activation.from_callable(np.sin, name="user_sine", mp_fn=mp.sin)


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(20240521)


#: the mpmath references the tests read (regenerate with
#: ``OPENBLAS_NUM_THREADS=1 python tests/reference/make_mpmath_references.py``)
REFERENCES = pathlib.Path(__file__).resolve().parent / "reference" / "mpmath_references.json"


@functools.lru_cache(maxsize=1)
def mpmath_references() -> dict:
    """The stored mpmath references (tests/reference/mpmath_references.json)."""
    with open(REFERENCES) as f:
        return json.load(f)


def reference_generator():
    """The generator script of the references, imported as a module (to recompute a few
    entries and prove that the stored file matches it)."""
    name = "make_mpmath_references"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REFERENCES.parent / "make_mpmath_references.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


#: the repository's derivations/ folder (sympy scripts the tests execute; installed as the
#: package rmt_deq_derivations)
DERIVATIONS = pathlib.Path(__file__).resolve().parents[1] / "derivations"


def load_derivation(name: str):
    """Import rmt_deq_derivations.<name> from the repository's derivations/ folder, with
    the loader that ``rmt-deq derivations`` uses."""
    from rmt_deq.jobs.derivations import load_derivations

    pkg = load_derivations()
    assert pathlib.Path(pkg.__file__).resolve().parent == DERIVATIONS, pkg.__file__
    return importlib.import_module(f"{pkg.__name__}.{name}")
