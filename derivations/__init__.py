"""Symbolic (sympy) derivations behind rmt_deq.

Installed as the package ``rmt_deq_derivations`` (from the repository's ``derivations/``
folder); each module also runs on its own and prints its results, either as
``python -m rmt_deq_derivations.stein`` or, in the repository, ``python derivations/stein.py``.
``rmt-deq derivations`` runs every module's checks and prints a pass/fail table.

In the order of the data flow (:data:`NAMES`):

stein            Stein/Hermite identities, the heat equation in tau^2 (docs/theory.md §3)
closed_moments   every closed-form raw Gaussian moment the package uses (relu, leaky relu,
                 hard tanh, quadratic, cubic, erf), compared with rmt_deq.moments.gaussian
ck_expansion     the second-order expansion of E[phi_c(u_i) phi_c(u_j)] (docs/theory.md §4)
four_equations   alpha1..alpha4 by coefficient matching, compared with the solver
ntk_expansion    the NTK surrogate coefficients (docs/theory.md §5) and the explicit-network
                 recursion, compared with rmt_deq.kernels
enn_design       the explicit-network layer recursion and the design families' moments
                 (docs/theory.md §6), compared with rmt_deq.design

Each module declares ``DERIVATION``, a :class:`~._common.Derivation` (name, what it proves,
``check()``).  :func:`registry` imports the modules (and so sympy) when it is called, not
when this package is imported, so that ``python -m rmt_deq_derivations.stein`` runs the
module once.
"""
from __future__ import annotations

import importlib

__all__ = ["NAMES", "registry", "get"]

#: the derivation modules, in the order of the data flow (each uses only earlier ones)
NAMES = ("stein", "closed_moments", "ck_expansion", "four_equations", "ntk_expansion",
         "enn_design")


def registry() -> tuple:
    """Every module's ``DERIVATION`` entry, in the order of :data:`NAMES` (imports sympy)."""
    return tuple(get(name) for name in NAMES)


def get(name: str):
    """The ``DERIVATION`` entry of one module of :data:`NAMES`.

    Raises
    ------
    rmt_deq.errors.UnknownOptionError
        ``name`` is not in :data:`NAMES` (the message lists them).
    """
    if name not in NAMES:
        from rmt_deq.errors import UnknownOptionError
        raise UnknownOptionError(f"unknown derivation {name!r}; choose from "
                                 f"{', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").DERIVATION


def __getattr__(attr: str):
    """``REGISTRY``: :func:`registry`, computed on first access."""
    if attr == "REGISTRY":
        return registry()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
