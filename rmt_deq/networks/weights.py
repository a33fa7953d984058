"""Random weight families for finite-width networks (docs/theory.md §2).

Every family has unit entry variance, so that ``sqrt(sa/m) A`` has the scaling of the
theory whatever the family:

``"gaussian"``
    iid N(0, 1) entries (the family the infinite-width theory is derived for).
``"orthogonal"``
    ``sqrt(m) Q`` with Q Haar-distributed orthogonal (the QR factor of a Gaussian matrix
    with the signs of R's diagonal moved into Q, which makes Q exactly Haar).  For a
    rectangular rows x cols matrix Q is a Haar partial isometry (orthonormal columns if
    rows >= cols, orthonormal rows otherwise) scaled by sqrt(max(rows, cols)).
``"symmetric"``
    GOE, ``(W + W^T)/sqrt(2)`` with W iid N(0, 1): off-diagonal entries have variance 1
    (diagonal entries 2).  Square matrices only.

The families differ in their spectra: ``sqrt(sa/m) A`` has its eigenvalues in the disk of
radius sqrt(sa) (Gaussian, circular law), on the circle of radius sqrt(sa) (orthogonal) and
on the real segment [-2 sqrt(sa), 2 sqrt(sa)] (symmetric, semicircle law).  The last one
matters for the DEQ: the Jacobian sqrt(sa/m) A D of the forward map has a real spectrum
twice as wide, so the plain forward iteration contracts about twice as slowly (and not at
all when 2 sqrt(sa E[phi'^2]) >= 1), which is where Anderson acceleration pays
(:mod:`rmt_deq.networks.solver`).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from rmt_deq._validation import as_rng, check_choice, check_positive_int
from rmt_deq.errors import InvalidParameterError, UnknownOptionError

__all__ = ["WEIGHT_FAMILIES", "DTYPES", "check_dtype", "check_family", "weight_matrix"]

WEIGHT_FAMILIES = ("gaussian", "orthogonal", "symmetric")
DTYPES = ("float64", "float32")


def check_family(family: Any) -> str:
    """Return ``family`` if it is one of :data:`WEIGHT_FAMILIES`, else raise."""
    return check_choice(family, "weight family", WEIGHT_FAMILIES)


def check_dtype(dtype: Any) -> np.dtype:
    """Accept "float64"/"float32" (or the numpy types) and return the numpy dtype.

    Raises
    ------
    UnknownOptionError
        Any other dtype (the sampled kernels run in float64 or float32 only).
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise UnknownOptionError(f"unknown dtype {dtype!r}; choose one of {DTYPES}") from None
    if dt.name not in DTYPES:
        raise UnknownOptionError(f"unknown dtype {dtype!r}; choose one of {DTYPES}")
    return dt


def weight_matrix(family: str, rows: int, cols: int | None = None, rng: Any = None,
                  dtype: Any = "float64") -> np.ndarray:
    """Draw a rows x cols weight matrix with unit entry variance from ``family``.

    Parameters
    ----------
    family : {"gaussian", "orthogonal", "symmetric"}
        See the module docstring.
    rows : int
        Number of rows (the layer width m).
    cols : int, optional
        Number of columns (default ``rows``: a square matrix).
    rng : int or numpy.random.Generator, optional
        Seed or generator (same seed -> same matrix, bitwise).
    dtype : {"float64", "float32"}
        The Gaussian entries are drawn directly in this precision.

    Returns
    -------
    ndarray, shape (rows, cols), C-contiguous

    Raises
    ------
    UnknownOptionError
        Unknown family or dtype.
    InvalidParameterError
        Non-positive sizes, or ``"symmetric"`` for a non-square shape.
    """
    family = check_family(family)
    rows = check_positive_int(rows, "rows")
    cols = rows if cols is None else check_positive_int(cols, "cols")
    dt = check_dtype(dtype)
    gen = as_rng(rng)
    W = gen.standard_normal((rows, cols), dtype=dt)
    if family == "gaussian":
        return W
    if family == "symmetric":
        if rows != cols:
            raise InvalidParameterError(
                f"the symmetric (GOE) family needs a square matrix, got {rows} x {cols}")
        S = W + W.T
        S *= dt.type(1.0 / math.sqrt(2.0))
        return S
    # orthogonal: Haar (partial) isometry from the QR factorisation, sign-fixed
    tall = rows >= cols
    Q, R = np.linalg.qr(W if tall else W.T)
    signs = np.sign(np.diagonal(R)).astype(dt)
    signs[signs == 0] = 1
    Q *= signs[None, :]
    Q *= dt.type(math.sqrt(max(rows, cols)))
    return np.ascontiguousarray(Q if tall else Q.T)
