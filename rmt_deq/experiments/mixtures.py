"""The two-class mixtures of the spectral measurements (docs/theory.md §1.1, §7).

Beside :func:`rmt_deq.data.mixture.default_mixture` (the convergence checks' data), the
spectral figures and acceptance measurements use a mixture with well-separated isolated
eigenvalues (:func:`spike_mixture`) and two covariance models for the bulk
(:func:`bulk_mixture`).  All are in the proportional regime: means of norm O(1), trace
differences O(sqrt p).
"""
from __future__ import annotations

import math

import numpy as np

from rmt_deq._validation import as_rng, check_choice, check_positive_int
from rmt_deq.data.mixture import GaussianMixture

__all__ = ["spike_mixture", "bulk_mixture", "BULK_COVARIANCES"]

#: the covariance models of :func:`bulk_mixture`
BULK_COVARIANCES = ("isotropic", "diagonal")


def _two_valued(p: int, high: float = 1.5, low: float = 0.5) -> np.ndarray:
    """Variance ``high`` on the first half of the coordinates, ``low + 2/sqrt(p)`` on the
    second (a shape difference O(1) per coordinate, a trace difference O(sqrt p))."""
    h = p // 2
    return np.concatenate([np.full(h, high), np.full(p - h, low + 2.0 / math.sqrt(p))])


def spike_mixture(p: int, seed: int = 0) -> GaussianMixture:
    """Two classes with well-separated spikes: orthogonal means of norms 2.5 and 4 (random
    directions from ``seed``), proportions 0.4/0.6, class 1 isotropic, class 2 with the
    two-valued diagonal covariance (1.5 / 0.5 + 2/sqrt(p) on the halves)."""
    p = check_positive_int(p, "p")
    q, _ = np.linalg.qr(as_rng(seed).standard_normal((p, 2)))
    means = np.vstack([2.5 * q[:, 0], 4.0 * q[:, 1]])
    covs = np.vstack([np.ones(p), _two_valued(p)])
    return GaussianMixture(means, covs, np.array([0.4, 0.6]))


def bulk_mixture(p: int, kind: str, seed: int = 0) -> GaussianMixture:
    """Two classes, means of norm 3 along random directions (from ``seed``), equal
    proportions.

    ``kind="isotropic"``: C_1 = I, C_2 = (1 + 2/sqrt(p)) I (a trace difference O(sqrt p)).
    ``kind="diagonal"``: C_1 = diag(linspace(0.4, 1.6, p)) (p distinct variances), C_2 the
    two-valued covariance of :func:`spike_mixture`.
    """
    p = check_positive_int(p, "p")
    check_choice(kind, "kind", BULK_COVARIANCES)
    means = as_rng(seed).standard_normal((2, p))
    means *= 3.0 / np.linalg.norm(means, axis=1, keepdims=True)
    if kind == "isotropic":
        covs = np.vstack([np.ones(p), np.full(p, 1.0 + 2.0 / math.sqrt(p))])
    else:
        covs = np.vstack([np.linspace(0.4, 1.6, p), _two_valued(p)])
    return GaussianMixture(means, covs, np.array([0.5, 0.5]))
