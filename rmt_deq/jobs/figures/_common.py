"""What the figure groups share: display names, the predicted spectrum of one sample, the
labels of the journal style."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rmt_deq.data.mixture import GaussianMixture, MixtureSample
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels.ck_surrogate import ck_surrogate_coefficients
from rmt_deq.kernels.ntk_surrogate import ntk_surrogate_coefficients
from rmt_deq.spectra.bulk import BulkSpectrum, kernel_bulk
from rmt_deq.spectra.model import gram_model_from_mixture
from rmt_deq.spectra.spikes import Spikes, isolated_eigenvalues

__all__ = ["display_name", "KIND_NAMES", "Prediction", "predict_spectrum", "seed_rule",
           "sorted_eigenvalues"]

#: how activations are written in the figures
_DISPLAY = {"relu": "ReLU", "tanh": "tanh", "gelu": "GELU", "swish": "swish", "erf": "erf",
            "leaky_relu:0.1": "leaky ReLU (slope 0.1)", "sigmoid": "sigmoid"}
#: the kernels, spelled out
KIND_NAMES = {"ck": "conjugate kernel (CK)", "ntk": "neural tangent kernel (NTK)"}


def display_name(activation: str) -> str:
    """The activation as written in a figure (e.g. "ReLU")."""
    return _DISPLAY.get(activation, activation)


def seed_rule(seed: int, offset: int | str) -> str | int:
    """The seed ``seed + offset`` as recorded in a manifest (an int, or the rule)."""
    if isinstance(offset, str):
        return f"{seed} + {offset}"
    return seed + offset


@dataclass(frozen=True)
class Prediction:
    """The four-equation solution and the predicted spectrum of one kernel on one sample."""

    solution: FixedPointSolution
    bulk: BulkSpectrum
    spikes: Spikes


def predict_spectrum(mixture: GaussianMixture, sample: MixtureSample, activation: Any,
                     sa: float, kind: str, solution: FixedPointSolution | None = None
                     ) -> Prediction:
    """The limiting bulk and isolated eigenvalues of the CK G (``kind="ck"``) or the NTK
    (all groups) of a DEQ on ``sample``, from the mixture statistics alone
    (docs/theory.md §7): the four equations at the sample's tau0, the surrogate's
    coefficients, :func:`rmt_deq.spectra.bulk.kernel_bulk` and
    :func:`rmt_deq.spectra.spikes.isolated_eigenvalues`."""
    stats = mixture.statistics(sample)
    sol = solution or solve_four_equations(activation, sa, stats.tau0)
    coef = (ck_surrogate_coefficients(sol, stats, form="G") if kind == "ck"
            else ntk_surrogate_coefficients(sol, stats))
    model = gram_model_from_mixture(mixture, sample)
    bulk = kernel_bulk(model, coef)
    return Prediction(sol, bulk, isolated_eigenvalues(model, coef, bulk=bulk))


def sorted_eigenvalues(matrix: Any) -> np.ndarray:
    """Eigenvalues of a symmetric matrix, ascending."""
    return np.linalg.eigvalsh(np.asarray(matrix, dtype=float))
